package agent_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// Consumers at the live edge read what the agent just wrote from its
// block cache (write-through), with read-ahead on: 1 or 10 franz-go
// consumers reading every record of a producer, as it is produced, cause
// no bucket GET at all. A regression that makes live-edge reads touch
// the bucket (it happened once: a commit notice that woke readers before
// the object was cached) fails here.
func TestLiveEdgeConsumersMakeNoGets(t *testing.T) {
	for _, consumers := range []int{1, 10} {
		t.Run(strconv.Itoa(consumers)+" consumers", func(t *testing.T) {
			var counter *faulty.Bucket
			a := agenttest.Start(t, agenttest.Options{
				Wrap: func(b objstore.Bucket) objstore.Bucket { counter = faulty.New(b); return counter },
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const topic, partitions, rounds, perRound = "edge", 4, 20, 25
			admin, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			if _, err := kadm.NewClient(admin).CreateTopic(ctx, partitions, -1, nil, topic); err != nil {
				t.Fatal(err)
			}

			// Consumers wait at offset 0 of the empty partitions: the
			// live edge.
			offsets := map[int32]kgo.Offset{}
			for p := range int32(partitions) {
				offsets[p] = kgo.NewOffset().At(0)
			}
			var wg sync.WaitGroup
			errs := make(chan error, consumers)
			for i := range consumers {
				cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()),
					kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
					kgo.FetchMaxWait(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				wg.Go(func() {
					got := 0
					for got < rounds*perRound {
						fs := cl.PollFetches(ctx)
						if err := ctx.Err(); err != nil {
							errs <- fmt.Errorf("consumer %d: %d of %d records: %w", i, got, rounds*perRound, err)
							return
						}
						fs.EachError(func(_ string, _ int32, err error) { errs <- fmt.Errorf("consumer %d: %w", i, err) })
						got += fs.NumRecords()
					}
				})
			}

			// The producer writes in rounds, each a few segments, while
			// the consumers read.
			prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			for r := range rounds {
				for i := range perRound {
					prod.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "round %d record %d %0200d", r, i, 0)}, nil)
				}
				if err := prod.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if puts := counter.Calls(faulty.Put); puts < rounds {
				t.Fatalf("%d PUTs for %d flushed rounds: the records did not go through the bucket", puts, rounds)
			}
			if gets := counter.Calls(faulty.Get); gets != 0 {
				t.Fatalf("%d bucket GETs for %d consumers at the live edge; want 0", gets, consumers)
			}
		})
	}
}
