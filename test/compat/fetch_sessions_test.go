package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// Fetch sessions (KIP-227) with real clients. franz-go opens a session
// by default; librdkafka (so kcat) sends every fetch without one
// (session id 0, epoch -1), up to its current releases.

// sessionRequests reads floe_fetch_session_requests_total by kind.
func sessionRequests(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "floe_fetch_session_requests_total":
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		case "floe_fetch_sessions":
			out["sessions"] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out
}

// TestFranzFetchSessions: a franz-go consumer of 64 partitions, fed in
// rounds while it polls, uses incremental fetches against Floe (one full
// fetch opens its session, every other fetch is incremental) and reads
// every record once, in order; the same consumer with sessions disabled
// sends only sessionless fetches and reads the same. The session is
// dropped when the client closes its connection.
func TestFranzFetchSessions(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	reg := a.Registry()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const partitions, rounds = 64, 5
	topic := "sessions"
	if _, err := newAdmin(t, a.Addr()).CreateTopics(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	want := map[int32][]string{}
	next := 0 // the next round
	produceRound := func() {
		t.Helper()
		var rs []*kgo.Record
		// Each round writes to a different quarter of the partitions,
		// so most partitions of each fetch have nothing new.
		for p := int32(next%4) * partitions / 4; p < int32(next%4+1)*partitions/4; p++ {
			v := fmt.Sprintf("round %d partition %d", next, p)
			want[p] = append(want[p], v)
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
		}
		next++
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for range rounds {
		produceRound()
	}

	// consume reads the topic from the start, producing another round
	// after each of its first polls (each wakes a waiting fetch), until
	// it has read every record.
	consume := func(opts ...kgo.Opt) {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.Addr()), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		got := map[int32][]string{}
		n, more := 0, rounds
		for {
			total := 0
			for _, vs := range want {
				total += len(vs)
			}
			if n == total && more == 0 {
				break
			}
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d: %v", n, total, err)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(len(got[r.Partition])) {
					t.Fatalf("%d: offset %d after %d records", r.Partition, r.Offset, len(got[r.Partition]))
				}
				got[r.Partition] = append(got[r.Partition], string(r.Value))
				n++
			})
			if more > 0 {
				produceRound()
				more--
			}
		}
		for p := range int32(partitions) {
			if strings.Join(got[p], ",") != strings.Join(want[p], ",") {
				t.Errorf("partition %d: got %q, want %q", p, got[p], want[p])
			}
		}
	}

	before := sessionRequests(t, reg)
	consume()
	after := sessionRequests(t, reg)
	full, incremental := after["full"]-before["full"], after["incremental"]-before["incremental"]
	t.Logf("franz-go with sessions: %v full, %v incremental, %v sessionless fetches", full, incremental, after["sessionless"]-before["sessionless"])
	if full < 1 || incremental < rounds || incremental < 3*full {
		t.Errorf("franz-go sent %v full and %v incremental fetches; want one full fetch per session and incremental ones after it", full, incremental)
	}
	if after["not_found"]+after["invalid_epoch"] != 0 {
		t.Errorf("session errors: %v not found, %v invalid epoch", after["not_found"], after["invalid_epoch"])
	}
	testutil.WaitFor(t, 10*time.Second, "the closed client's session dropped", func() bool { return sessionRequests(t, reg)["sessions"] == 0 })

	before = sessionRequests(t, reg)
	consume(kgo.DisableFetchSessions())
	after = sessionRequests(t, reg)
	if after["incremental"] != before["incremental"] || after["full"] != before["full"] || after["sessionless"] == before["sessionless"] {
		t.Errorf("franz-go without sessions: %v full, %v incremental, %v sessionless fetches; want only sessionless ones",
			after["full"]-before["full"], after["incremental"]-before["incremental"], after["sessionless"]-before["sessionless"])
	}
}

// TestKcatFetchSessions: kcat consumes as before sessions existed, with
// no session error; what librdkafka sends is logged.
func TestKcatFetchSessions(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := agenttest.Start(t, agenttest.Options{})
	reg := a.Registry()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopic(t, ctx, a.Addr(), "kcat-sessions", 4)
	var in strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
	}
	runCmd(t, ctx, in.String(), kcat, "-b", a.Addr(), "-P", "-t", "kcat-sessions", "-K:")
	got := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", "kcat-sessions", "-e", "-q", "-X", "fetch.wait.max.ms=100",
		"-o", "beginning", "-f", `%k:%s\n`)
	if n := strings.Count(got, "\n"); n != 100 {
		t.Fatalf("kcat consumed %d records, want 100:\n%s", n, got)
	}
	c := sessionRequests(t, reg)
	t.Logf("librdkafka: %v full, %v incremental, %v sessionless fetches", c["full"], c["incremental"], c["sessionless"])
	if c["not_found"]+c["invalid_epoch"] != 0 {
		t.Errorf("session errors: %v not found, %v invalid epoch", c["not_found"], c["invalid_epoch"])
	}
}
