package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestGroupsCommand: `floe groups` prints a group's committed offsets, end
// offsets and lag, and the agent exports the same lag as metrics.
func TestGroupsCommand(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.LagInterval = 100 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("lagged"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, "lagged"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r := &kgo.Record{Partition: int32(i % 2), Value: []byte("x")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "lagged", Partition: 0, At: 3, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 5, LeaderEpoch: -1})
	if resp, err := admin.CommitOffsets(ctx, "lag-group", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	var out, errOut bytes.Buffer
	if err := run([]string{"groups", "--brokers", a.Addr()}, &out, &errOut); err != nil {
		t.Fatalf("floe groups: %v\n%s", err, errOut.String())
	}
	t.Logf("\n%s", out.String())
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{"lag-group Empty 0 lagged 0 3 5 2", "lag-group Empty 0 lagged 1 5 5 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + a.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `floe_group_lag{group="lag-group",partition="0",topic="lagged"} 2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lag metric:\n%s", grepLines(string(body), "floe_group"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
