package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/nemesis"
)

// TestBucketFaultsAreRetriable puts a fault-injecting proxy between the
// agents and the S3 server. Two agents in zone a take produce load; one
// agent in zone b, with a read cache too small to keep anything for long,
// serves a consumer of zone b and a probe fetching random offsets, so it
// GETs from the bucket all the time. The proxy fails a fifth of object
// PUTs and GETs with 503 SlowDown and holds back some GETs past the hedge
// threshold; for two seconds in the middle it fails every object request.
//
// The agents' /metrics must show retries of PUTs and GETs and hedged
// GETs; what the retries cannot absorb (the outage) must reach clients as
// retriable error codes only, and no acknowledged record may be lost.
func TestBucketFaultsAreRetriable(t *testing.T) {
	requireServices(t)
	e := newEnv(t, "")
	proxy := startFaultProxy(t, e.s3.Endpoint, e.s3.Bucket)
	writers := []*agentProc{
		startAgent(t, e, "a0", agentOpts{zone: "a", endpoint: proxy.URL}),
		startAgent(t, e, "a1", agentOpts{zone: "a", endpoint: proxy.URL}),
	}
	reader := startAgent(t, e, "b0", agentOpts{zone: "b", endpoint: proxy.URL,
		extra: []string{"--cache-bytes", "1048576", "--cache-block-bytes", "262144"}})
	agents := []*agentProc{writers[0], writers[1], reader}
	waitForView(t, e.admin(), agents, 15*time.Second)
	const topic = "faults"
	const partitions = 4
	createTopic(t, e.admin(), writers[0].addr, topic, partitions)

	flaky := nemesis.BucketFaults{PutFail: 0.2, GetFail: 0.2, GetSlow: 0.08, Slowness: 400 * time.Millisecond}
	proxy.Set(flaky)
	led := newLedger()
	franz := startFranzProducers(t, led, addrs(writers), loadSpec{topic: topic, partitions: partitions, rate: 300, size: 1000, as: e.as(producerUser).withID("floe_az=a")})
	pr := newProbes()
	defer pr.stop()
	for i, a := range writers {
		pr.produceProbe(a.name, a.addr, tp{topic, int32(i)}, led, 50*time.Millisecond)
	}
	pr.fetchProbe("fetch-"+reader.name, reader.addr, topic, partitions, led.highest(topic), 20*time.Millisecond)
	tail := startTail(t, []string{reader.addr}, "floe_az=b", topic)

	time.Sleep(4 * time.Second)
	outageStart := time.Now()
	proxy.Set(nemesis.BucketFaults{Outage: true})
	t.Logf("outage: every object PUT and GET fails for 2s")
	time.Sleep(2 * time.Second)
	proxy.Set(flaky)
	outageEnd := time.Now()
	time.Sleep(3 * time.Second)
	proxy.Set(nemesis.BucketFaults{})
	time.Sleep(time.Second)
	pr.stop()
	franz.finish(t, 60*time.Second)
	end := time.Now()
	tail.stop()

	t.Logf("proxy: %d object PUTs and %d GETs failed with 503, %d GETs held back, %d requests forwarded",
		proxy.PutFailed.Load(), proxy.GetFailed.Load(), proxy.GetDelayed.Load(), proxy.Forwarded.Load())
	retriesPut := sumMetric(t, agents, "floe_objstore_retries_total", "op", "put")
	retriesGet := sumMetric(t, agents, "floe_objstore_retries_total", "op", "get")
	hedges := map[string]float64{}
	for _, o := range []string{"won", "lost", "failed"} {
		hedges[o] = sumMetric(t, agents, "floe_objstore_hedges_total", "outcome", o)
	}
	failedPuts := sumMetric(t, agents, "floe_objstore_requests_total", "op", "put", "result", "error")
	failedGets := sumMetric(t, agents, "floe_objstore_requests_total", "op", "get", "result", "error")
	gets := sumMetric(t, agents, "floe_objstore_requests_total", "op", "get")
	t.Logf("agents' /metrics: retries: %.0f PUT, %.0f GET; hedged GETs: %v; of %.0f GETs, %.0f PUTs and %.0f GETs failed after their retries",
		retriesPut, retriesGet, hedges, gets, failedPuts, failedGets)
	if retriesPut == 0 || retriesGet == 0 {
		t.Errorf("floe_objstore_retries_total: put %.0f, get %.0f; want both > 0", retriesPut, retriesGet)
	}
	if hedges["won"]+hedges["lost"]+hedges["failed"] == 0 {
		t.Errorf("floe_objstore_hedges_total: no hedged GET although %d GETs were held back", proxy.GetDelayed.Load())
	}

	// Clients saw retriable errors only, and the outage's did reach them.
	outageErrors := 0
	for _, name := range []string{writers[0].name, writers[1].name, "fetch-" + reader.name} {
		pr.mu.Lock()
		rs := pr.results[name]
		pr.mu.Unlock()
		all, during := summarize(rs, time.Time{}, end), summarize(rs, outageStart, outageEnd)
		t.Logf("probe %s: %v; during the outage: %v", name, all, during)
		if all.fatal > 0 || all.transport > 0 {
			t.Errorf("probe %s: %d non-retriable errors and %d dropped connections %v; want retriable error codes only", name, all.fatal, all.transport, all.codes)
		}
		outageErrors += during.retriable
	}
	if outageErrors == 0 {
		t.Errorf("no client request failed during the bucket outage: the retries cannot have absorbed 2s of failures")
	}
	tail.check(t)
	verifyLog(t, []string{reader.addr}, e.admin().withID("floe_az=b"), led, topic)
}

// highest returns a function giving, per partition of topic, one past the
// highest acknowledged offset.
func (l *ledger) highest(topic string) func(int32) int64 {
	return func(p int32) int64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		end := int64(0)
		for off := range l.ackedAt[tp{topic, p}] {
			end = max(end, off+1)
		}
		return end
	}
}

// tailConsumer reads every partition of a topic from 0 as records arrive
// and keeps the errors franz-go reports.
type tailConsumer struct {
	cl      *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}
	records atomic.Int64
	mu      sync.Mutex
	errs    map[string]int
	codes   map[int16]int
}

func startTail(t *testing.T, seeds []string, clientID, topic string) *tailConsumer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(clientID),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &tailConsumer{cl: cl, cancel: cancel, done: make(chan struct{}), errs: map[string]int{}, codes: map[int16]int{}}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() != nil {
					return
				}
				c.mu.Lock()
				c.errs[fmt.Sprintf("%s/%d: %v", topic, p, err)]++
				if ke, ok := err.(*kerr.Error); ok {
					c.codes[ke.Code]++
				} else {
					c.codes[-1]++
				}
				c.mu.Unlock()
			})
			c.records.Add(int64(fs.NumRecords()))
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *tailConsumer) stop() {
	c.cancel()
	<-c.done
	c.cl.Close()
}

// check reports what the consumer saw; every error must be a retriable
// Kafka error.
func (c *tailConsumer) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []string
	for e, n := range c.errs {
		errs = append(errs, fmt.Sprintf("%d× %s", n, e))
	}
	t.Logf("zone b consumer: %d records, errors returned to it: %s", c.records.Load(), strings.Join(errs, "; "))
	for code, n := range c.codes {
		if code < 0 || !retriable(code) {
			t.Errorf("zone b consumer: %d errors that are not retriable Kafka errors (code %d)", n, code)
		}
	}
}
