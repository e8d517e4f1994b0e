package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/inspect"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestGroupsShareGroups: `floe groups` shows a share group after a
// member accepted, rejected and released records: through the Kafka
// protocol its state, member, start offsets and lag; through the admin
// API (the metadata store) the in-flight records by state as well, and
// offline from the store; the agent's /metrics count what happened.
func TestGroupsShareGroups(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
		c.Shares.Group.HeartbeatInterval = time.Second
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("queue"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 2, 1, nil, "queue"); err != nil {
		t.Fatal(err)
	}
	produce := func(n int) {
		t.Helper()
		for i := range n {
			if err := prod.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(10) // offsets 0-4 of each partition

	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID("worker"), kgo.ConsumeTopics("queue"),
		kgo.ShareGroup("jobs"), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// Partition 1: offset 1 rejected, 2 released; everything else accepted.
	got := 0
	for i := 0; i < 30 && got < 10; i++ {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			got++
			switch {
			case r.Partition == 1 && r.Offset == 1:
				r.Ack(kgo.AckReject)
			case r.Partition == 1 && r.Offset == 2:
				r.Ack(kgo.AckRelease)
			default:
				r.Ack(kgo.AckAccept)
			}
		})
		pcancel()
	}
	if got < 10 {
		t.Fatalf("consumed %d records of 10", got)
	}
	if err := cons.FlushAcks(ctx); err != nil {
		t.Fatalf("FlushAcks: %v", err)
	}
	produce(10) // offsets 5-9, not consumed

	var out, errOut bytes.Buffer
	if err := run([]string{"groups", "--brokers", a.Addr()}, &out, &errOut); err != nil {
		t.Fatalf("floe groups: %v\n%s", err, errOut.String())
	}
	t.Logf("\n%s", out.String())
	text := squeeze(out.String())
	// Partition 0: all five accepted, start 5, lag 5. Partition 1: 0
	// accepted, 1 rejected, 2 released, 3-4 accepted: start 2, lag 10-2-2.
	for _, want := range []string{
		"SHARE GROUP STATE MEMBERS TOPIC PARTITION START END LAG AVAILABLE ACQUIRED ACKNOWLEDGED ARCHIVED MAX DELIVERIES PENDING BY DELIVERIES MEMBER",
		"jobs Stable 1 queue 0 5 10 5 - - - - - - worker/",
		"jobs Stable 1 queue 1 2 10 6 - - - - - - worker/",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("floe groups --brokers lacks %q", want)
		}
	}

	out.Reset()
	if err := run([]string{"groups", "--admin", a.AdminAddr(), "--json", "jobs"}, &out, &errOut); err != nil {
		t.Fatalf("floe groups --admin: %v\n%s", err, errOut.String())
	}
	var rows []inspect.GroupRow
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r inspect.GroupRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		rows = append(rows, r)
	}
	// The agent coordinates the group and leads its share partitions:
	// its memory gives the state, the member and the live in-flight
	// records (the consumer may be acquiring offsets 5-9 meanwhile).
	want := []inspect.GroupRow{
		{Group: "jobs", Type: "share", Protocol: "share", State: "Stable", Members: 1, Topic: "queue", Partition: 0, Committed: 5, End: 10, Lag: 5},
		{Group: "jobs", Type: "share", Protocol: "share", State: "Stable", Members: 1, Topic: "queue", Partition: 1, Committed: 2, End: 10, Lag: 6},
	}
	if len(rows) != len(want) {
		t.Fatalf("--admin --json: %d rows %+v, want %d", len(rows), rows, len(want))
	}
	for i := range want {
		g, w := rows[i], want[i]
		f := g.InFlight
		switch {
		case f == nil || !f.Live:
			t.Errorf("row %d in flight %+v, want live counts", i, f)
		case i == 0 && (f.Acknowledged != 0 || f.Archived != 0 || f.Available+f.Acquired > 5):
			t.Errorf("partition 0 in flight %+v: want nothing finished, at most 5-9 in flight", f)
		case i == 1 && (f.Acknowledged != 2 || f.Archived != 0 || f.MaxDeliveryCount < 2 || f.Available+f.Acquired < 1):
			// Offset 2 was released once: its delivery count is 2 when
			// the consumer has it again, 1 otherwise.
			if !(f.Acknowledged == 2 && f.MaxDeliveryCount >= 1 && f.Available >= 1) {
				t.Errorf("partition 1 in flight %+v: want 3-4 acknowledged, offset 2 released (available, or acquired again with delivery count 2)", f)
			}
		}
		// The member assigned the partition, from the coordinator's
		// stored membership record, as --brokers names it.
		if !strings.HasPrefix(g.Member, "worker/") {
			t.Errorf("row %d member %q, want worker/<member id>", i, g.Member)
		}
		// Every record neither acknowledged nor archived is counted once
		// by its delivery count.
		if f != nil {
			var pending int64
			for _, n := range f.Pending {
				pending += n
			}
			if pending != f.Available+f.Acquired {
				t.Errorf("row %d pending by delivery count %v, %d records; want available + acquired, %d", i, f.Pending, pending, f.Available+f.Acquired)
			}
		}
		g.InFlight, g.Member = nil, ""
		if g != w {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}

	// The agent's /metrics count the acknowledgements: 8 accepted, 1
	// rejected (and archived), at least 1 released.
	resp, err := http.Get("http://" + a.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(body)
	for _, want := range []string{"floe_share_records_acknowledged_total 8", "floe_share_records_rejected_total 1", "floe_share_records_archived_total 1"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "floe_share"))
		}
	}
	for _, name := range []string{"floe_share_records_released_total", "floe_share_records_acquired_total", "floe_share_records_in_flight", "floe_share_lock_expiries_total", "floe_share_sessions"} {
		if !strings.Contains(metrics, "\n"+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	t.Logf("\n%s", grepLines(metrics, "floe_share"))

	// Offline, from the stopped agent's metadata store: the same rows,
	// with the state and member of the stored membership record (the
	// agent stops before the consumer, which has not left).
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"groups", "--metastore", "embedded://" + filepath.Join(a.Dir, "metadata.db"), "jobs"}, &out, &errOut); err != nil {
		t.Fatalf("floe groups --metastore: %v\n%s", err, errOut.String())
	}
	t.Logf("\n%s", out.String())
	text = squeeze(out.String())
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`jobs Stable 1 queue 0 5 10 5 [0-5] 0 0 0 [01] (-|1:[1-5]) worker/\S+`),
		regexp.MustCompile(`jobs Stable 1 queue 1 2 10 6 [1-8] 0 2 0 [12] [0-9:,]+ worker/\S+`),
	} {
		if !want.MatchString(text) {
			t.Errorf("floe groups --metastore lacks %s", want)
		}
	}
	cons.Close()
}

func squeeze(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}
