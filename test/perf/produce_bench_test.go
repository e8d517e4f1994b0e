// Package perf holds benchmarks that print figures (latency percentiles,
// object-store requests per second) instead of asserting speeds, because
// the machines that run them are shared and noisy. Results and the command
// that produced them are kept in docs/benchmarks.md.
package perf

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// BenchmarkProduceLatency produces 1 KiB records at a fixed rate for a few
// seconds with an idempotent franz-go producer and reports produce latency
// percentiles (measured from the intended send time, so a stall is not
// hidden) and bucket PUTs per second, at the default 250 ms linger, for
// 1 and 1,000 partitions. Each b.N iteration is one full run.
//
// clientLinger is the producer's own linger. With idempotence a client
// keeps at most 5 requests in flight per agent; sent back to back (client
// linger 0) they fill early in the agent's linger window and the records
// after them wait for the next segment, so latency rises to about 1.5×
// the agent linger. A client linger of agent linger / 5 spreads them.
func BenchmarkProduceLatency(b *testing.B) {
	for _, clientLinger := range []time.Duration{0, 50 * time.Millisecond} {
		for _, partitions := range []int32{1, 1000} {
			b.Run(fmt.Sprintf("partitions=%d/client-linger=%v", partitions, clientLinger), func(b *testing.B) {
				for range b.N {
					runProduce(b, partitions, 250*time.Millisecond, clientLinger, 2000, 5*time.Second)
				}
			})
		}
	}
}

func runProduce(b *testing.B, partitions int32, linger, clientLinger time.Duration, perSecond int, duration time.Duration) {
	var fb *faulty.Bucket
	a := agenttest.Start(b, agenttest.Options{
		Linger: linger,
		Wrap:   func(bk objstore.Bucket) objstore.Bucket { fb = faulty.New(bk); return fb },
	})
	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(clientLinger), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, "perf"); err != nil {
		b.Fatal(err)
	}
	// Warm up: metadata, producer id.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "perf", Value: []byte("warm")}).FirstErr(); err != nil {
		b.Fatal(err)
	}

	value := make([]byte, 1024)
	total := int(duration.Seconds() * float64(perSecond))
	interval := time.Second / time.Duration(perSecond)
	latencies := make([]time.Duration, total)
	var wg sync.WaitGroup
	wg.Add(total)
	putsBefore := fb.Calls(faulty.Put)
	start := time.Now()
	for i := range total {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		r := &kgo.Record{Topic: "perf", Partition: int32(i) % partitions, Value: value}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			latencies[i] = time.Since(intended)
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	puts := fb.Calls(faulty.Put) - putsBefore

	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	b.ReportMetric(float64(pct(0.50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64(puts)/elapsed.Seconds(), "PUT/s")
	b.Logf("partitions=%d linger=%v client-linger=%v rate=%d/s records=%d: p50 %v p90 %v p99 %v max %v; %d PUTs in %v = %.2f PUT/s",
		partitions, linger, clientLinger, perSecond, total, pct(0.5), pct(0.9), pct(0.99), latencies[len(latencies)-1],
		puts, elapsed.Round(time.Millisecond), float64(puts)/elapsed.Seconds())
}
