package jobs_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestCompactionWithProducersAndConsumers compacts a topic while two
// agents, both with the jobs role, take produce requests and serve
// consumers on the same partitions: every consumer sees every record
// exactly once, in order, at the offset it was acknowledged at.
func TestCompactionWithProducersAndConsumers(t *testing.T) {
	const partitions = 2
	a := agenttest.Start(t, agenttest.Options{Jobs: true, Linger: 5 * time.Millisecond})
	b := agenttest.StartPeer(t, a, agenttest.Options{Jobs: true, Linger: 5 * time.Millisecond})
	addrs := []string{a.Addr(), b.Addr()}
	createTopic(t, admin(t, a.Addr()), "live", partitions, nil)

	// Producers: one per partition, through different agents; each record
	// is acknowledged before the next five are sent, so each send is a
	// segment of its own. They stop after sends sends (or 60s): a fixed
	// count, so that the objects compaction leaves (a few per partition
	// at the live edge) are compared with enough segments however loaded
	// the machine is.
	const sends = 150
	ctx, stop := context.WithTimeout(t.Context(), 60*time.Second)
	defer stop()
	acked := make([][]int64, partitions) // acked[p][seq] = offset
	var wg sync.WaitGroup
	for p := range int32(partitions) {
		wg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs[p%2]), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			seq := 0
			for ctx.Err() == nil && seq < 5*sends {
				var rs []*kgo.Record
				for range 5 {
					rs = append(rs, &kgo.Record{Topic: "live", Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, seq)})
					seq++
				}
				if err := cl.ProduceSync(context.WithoutCancel(ctx), rs...).FirstErr(); err != nil {
					t.Errorf("produce: %v", err)
					return
				}
				for _, r := range rs {
					acked[p] = append(acked[p], r.Offset)
				}
			}
		})
	}

	// Consumers, one per agent, reading both partitions from offset 0
	// while compaction runs, until they have what was acknowledged.
	type seen struct {
		offset int64
		value  string
	}
	got := make([][][]seen, len(addrs)) // got[consumer][partition]
	var cwg sync.WaitGroup
	producersDone := make(chan struct{})
	for c, addr := range addrs {
		got[c] = make([][]seen, partitions)
		cwg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"live": {0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0)}}),
				kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(64<<10))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			deadline := time.Now().Add(90 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case <-producersDone:
					complete := true
					for p := range partitions {
						if len(got[c][p]) < len(acked[p]) {
							complete = false
						}
					}
					if complete {
						return
					}
				default:
				}
				fctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				fs := cl.PollFetches(fctx)
				cancel()
				fs.EachRecord(func(r *kgo.Record) {
					got[c][r.Partition] = append(got[c][r.Partition], seen{r.Offset, string(r.Value)})
				})
			}
			t.Errorf("consumer %d: timed out", c)
		})
	}
	wg.Wait()
	close(producersDone)
	cwg.Wait()

	for p := range partitions {
		if len(acked[p]) < 50 {
			t.Fatalf("partition %d: only %d records acknowledged", p, len(acked[p]))
		}
		for c := range addrs {
			g := got[c][p]
			if len(g) != len(acked[p]) {
				t.Errorf("consumer %d, partition %d: %d records, %d acknowledged", c, p, len(g), len(acked[p]))
			}
			for i := range min(len(g), len(acked[p])) {
				want := seen{acked[p][i], fmt.Sprintf("%d-%d", p, i)}
				if g[i] != want {
					t.Fatalf("consumer %d, partition %d, record %d: got %+v, want %+v (lost, duplicated or reordered)", c, p, i, g[i], want)
				}
			}
		}
	}
	// Compaction did happen meanwhile, and catches up once producers stop.
	tp, err := a.Store.Topic(t.Context(), "live")
	if err != nil {
		t.Fatal(err)
	}
	segments := (len(acked[0]) + len(acked[1])) / 5
	var objects int
	waitFor(t, 20*time.Second, "compaction to catch up", func() bool {
		objects = len(topicObjects(t, a.Store, tp))
		return objects*10 <= segments
	})
	t.Logf("%d records in about %d produce segments; the topic now references %d objects", len(acked[0])+len(acked[1]), segments, objects)
	checkReferencedPresent(t, a.Store, a.Bucket)
}
