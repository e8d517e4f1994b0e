package agent_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// scrape reads one sample of the agent's /metrics (0 if absent).
func scrape(t *testing.T, a *agenttest.Agent, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + a.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// TestEarlyFlushKeepsIdempotentOrderUnderBucketFaults runs idempotent
// franz-go producers (5 requests in flight) against an agent whose long
// linger leaves every flush to the early-flush rule, with overlapping
// flushes, while the bucket fails PUTs, loses PUT acknowledgements (the
// object is written, the writer is told it is not) and holds PUTs past the
// flush timeout. Every acknowledged record must then be read back exactly
// once, each producer's records in each partition in the order sent. It
// runs with whole windows (no reserve), with the estimated reserve, and
// with a fixed reserve of two requests per window.
func TestEarlyFlushKeepsIdempotentOrderUnderBucketFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reserve int
	}{{"whole windows", 0}, {"estimated reserve", produce.ReserveEstimated}, {"reserve 2", 2}} {
		t.Run(tc.name, func(t *testing.T) { earlyFlushUnderFaults(t, tc.reserve) })
	}
}

func earlyFlushUnderFaults(t *testing.T, reserve int) {
	var fb *faulty.Bucket
	sp := &scriptedPuts{}
	a := agenttest.Start(t, agenttest.Options{
		Linger: 400 * time.Millisecond,
		Wrap: func(b objstore.Bucket) objstore.Bucket {
			fb = faulty.New(b)
			sp.Bucket = fb
			return sp
		},
		Config: func(cfg *agent.Config) {
			cfg.FlushMinInterval = 5 * time.Millisecond
			cfg.FlushTimeout = 300 * time.Millisecond
			cfg.FlushWindowReserve = reserve
		},
	})
	fb.SetLatency(faulty.Put, 15*time.Millisecond)
	const (
		topic      = "early"
		partitions = 4
		producers  = 3
		perProd    = 3000
	)
	createTopic(t, testutil.Dial(t, a.Addr()), topic, partitions)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Faults at fixed PUTs while the producers run: one fails, one is
	// stored but its acknowledgement is lost, one hangs past the flush
	// timeout. Each is armed when the PUT before it starts.
	script := map[int]func(){
		6:  func() { fb.FailNext(faulty.Put, 1, nil) },
		14: func() { fb.LoseNextPutAcks(1) },
		22: func() { fb.SetLatency(faulty.Put, time.Second) },
		23: func() { fb.SetLatency(faulty.Put, 15*time.Millisecond) },
	}
	sp.before = func(n int) {
		if f := script[n]; f != nil {
			f()
		}
	}

	acked, failed := produceSequences(t, ctx, a.Addr(), topic, partitions, producers, perProd, 10, 20*time.Millisecond)
	fb.Reset()
	if failed > 0 {
		t.Logf("%d records failed (not acknowledged)", failed)
	}
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged")
	}
	t.Logf("%d records acknowledged; %d PUTs failed by injection", len(acked), fb.Injected(faulty.Put))
	// The failed PUT, the lost acknowledgement and the timed-out PUT.
	if n := scrape(t, a, `floe_segment_flushes_total{result="put_error"}`); n < 3 {
		t.Fatalf("%v segments failed, want the 3 scripted faults (%d PUTs in all)", n, fb.Calls(faulty.Put))
	}

	// Read every partition back from the start.
	total := readBackExactlyOnce(t, ctx, a.Addr(), topic, acked)
	early := scrape(t, a, `floe_segment_flush_triggers_total{trigger="early"}`)
	lingered := scrape(t, a, `floe_segment_flush_triggers_total{trigger="linger"}`)
	t.Logf("read %d records; %v segments flushed early, %v at the linger", total, early, lingered)
	if early == 0 {
		t.Fatal("no segment was flushed early: the linger did all the flushing")
	}
}

// scriptedPuts calls before with the number of each PUT (from 1) before
// passing it on.
type scriptedPuts struct {
	objstore.Bucket
	mu     sync.Mutex
	n      int
	before func(n int)
}

func (b *scriptedPuts) Put(ctx context.Context, key string, data []byte) error {
	b.mu.Lock()
	b.n++
	if b.before != nil {
		b.before(b.n)
	}
	b.mu.Unlock()
	return b.Bucket.Put(ctx, key, data)
}

// TestLatencyTargetTopic: on an agent whose linger is long and whose early
// flush is off, a topic with floe.latency.target.ms is acknowledged on its
// target's linger while a topic without keeps waiting for the agent's.
func TestLatencyTargetTopic(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{
		Linger: time.Minute,
		Config: func(cfg *agent.Config) { cfg.DisableEarlyFlush = true },
	})
	c := testutil.Dial(t, a.Addr())
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	for _, name := range []string{"fast", "slow"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, -1
		if name == "fast" {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = "floe.latency.target.ms", kmsg.StringPtr("20")
			rt.Configs = append(rt.Configs, cfg)
		}
		req.Topics = append(req.Topics, rt)
	}
	for _, rt := range c.Do(req).(*kmsg.CreateTopicsResponse).Topics {
		if rt.ErrorCode != 0 {
			t.Fatalf("create %s: %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
	slow := testutil.Dial(t, a.Addr())
	slowDone := make(chan kmsg.Response, 1)
	go func() { slowDone <- slow.Do(produceRequest("slow", -1, batchSpec{records: 1})) }()
	fastDone := make(chan kmsg.Response, 1)
	go func() { fastDone <- c.Do(produceRequest("fast", -1, batchSpec{records: 3})) }()
	select {
	case resp := <-fastDone:
		if r := partitionResults(resp.(*kmsg.ProduceResponse))[0]; r.ErrorCode != 0 || r.BaseOffset != 0 {
			t.Fatalf("fast topic: error %d offset %d", r.ErrorCode, r.BaseOffset)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fast topic waited for the agent's linger")
	}
	select {
	case <-slowDone:
		t.Fatal("the slow topic was acknowledged before the agent's linger, with the fast one")
	case <-time.After(200 * time.Millisecond):
	}
	// Draining the agent flushes the agent's stream and answers it.
	go a.Close()
	select {
	case resp := <-slowDone:
		if r := partitionResults(resp.(*kmsg.ProduceResponse))[0]; r.ErrorCode != 0 {
			t.Fatalf("slow topic: error %d", r.ErrorCode)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the slow topic was never answered")
	}
}
