package compat

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestShareGroupMembersJoiningAtOnce: four members join one after another
// while the first is already fetching, and accept every record. Each
// record is delivered once, with delivery count 1: nothing is released,
// no lock expires, no member leaves. (Before the fix, the first member's
// assignment changed three times between two of its heartbeats, each
// change moved its epoch on, and its next heartbeat was fenced: franz-go
// then dropped its share sessions with the acknowledgements not yet
// sent, and those records came back after their lock timeout, some to
// the member that had already processed them.)
func TestShareGroupMembersJoiningAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := agenttest.Start(t, shareAgentOptions(20*time.Second, 5))
	const topic, group, partitions, n = "share-join", "sg", 8, 200_000
	createTopic(t, ctx, a.Addr(), topic, partitions)
	produceSpread(t, ctx, a.Addr(), topic, partitions, n)

	type delivery struct {
		member int
		count  int32
	}
	var mu sync.Mutex
	seen := map[[2]int64][]delivery{}
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range 4 {
		cl := shareConsumer(t, a.Addr(), group, topic)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 600 && ctx.Err() == nil; j++ {
				select {
				case <-done:
					return
				default:
				}
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				fs := cl.PollRecords(pctx, 10_000)
				pcancel()
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					k := [2]int64{int64(r.Partition), r.Offset}
					seen[k] = append(seen[k], delivery{i, r.DeliveryCount()})
					r.Ack(kgo.AckAccept)
				})
				if len(seen) >= n {
					once.Do(func() { close(done) })
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("received %d distinct records of %d", len(seen), n)
	}
	bad := 0
	for k, ds := range seen {
		if len(ds) > 1 || ds[0].count != 1 {
			if bad++; bad <= 10 {
				t.Errorf("partition %d offset %d: deliveries (member, count) %v", k[0], k[1], ds)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d records delivered more than once or with a delivery count above 1", bad)
	}
}
