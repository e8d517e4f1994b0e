package txncoord_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/txncoord"
)

// TestConcurrentCoordinators runs producer instances on two coordinators
// of one store at once, over two transactional ids, with short timeouts
// and both timeout loops running: instances fence each other, ends race
// timeouts and each other. Every answer must be one Kafka gives for such
// races (never a store failure), and once everything has timed out, no
// partition may be left with an open transaction.
func TestConcurrentCoordinators(t *testing.T) {
	s := openStore(t)
	opts := txncoord.Options{AbortInterval: 5 * time.Millisecond, MaxConflicts: 50}
	coords := []*txncoord.Coordinator{
		newCoordinator(t, s, newBucket(), nil, opts),
		newCoordinator(t, s, newBucket(), nil, opts),
	}
	out := createTopic(t, s, "out", 4)
	ids := []string{"x", "y"}
	allowed := map[int16]bool{
		0: true, kerr.ProducerFenced.Code: true, kerr.InvalidProducerEpoch.Code: true, kerr.InvalidTxnState.Code: true,
		kerr.InvalidProducerIDMapping.Code: true,
	}
	const workers, rounds = 6, 25
	var countMu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			ctx := context.Background()
			check := func(what string, code int16) bool {
				countMu.Lock()
				counts[what+" "+name(code)]++
				countMu.Unlock()
				if !allowed[code] {
					t.Errorf("worker %d: %s: %s", w, what, name(code))
				}
				return code == 0
			}
			for range rounds {
				id := ids[rng.IntN(len(ids))]
				c := coords[rng.IntN(len(coords))]
				r := c.InitProducerID(ctx, txn.InitProducerIDRequest{Version: 4, TransactionalID: id, TimeoutMs: 20, ProducerID: -1, ProducerEpoch: -1})
				if !check("InitProducerId", r.Err) {
					continue
				}
				pid, epoch := r.ProducerID, r.ProducerEpoch
				seqs := map[int32]int32{}
				for range 1 + rng.IntN(3) {
					c := coords[rng.IntN(len(coords))]
					p := tp(out, int32(rng.IntN(4)))
					if !check("AddPartitions", addPartitions(c, ctx, id, pid, epoch, p)) {
						break
					}
					if res := produce(t, s, p, pid, epoch, seqs[p.Partition], 2); res.Err == nil {
						seqs[p.Partition] += 2
					}
					v := int16(3)
					if rng.IntN(2) == 0 {
						v = 5
					}
					e := c.EndTxn(ctx, txn.EndTxnRequest{Version: v, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: rng.IntN(2) == 0})
					if !check("EndTxn", e.Err) {
						break
					}
					if v == 5 {
						if e.ProducerID != pid {
							break
						}
						epoch, seqs = e.ProducerEpoch, map[int32]int32{}
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("answers: %v", counts)

	// Everything left open times out.
	time.Sleep(30 * time.Millisecond)
	for _, c := range coords {
		c.Scan(t.Context())
	}
	for _, d := range coords[0].Describe(t.Context(), ids) {
		if d.Err == 0 && d.State == string(metastore.TxnOngoing) {
			t.Fatalf("still ongoing after the timeouts: %+v", d)
		}
	}
	for p := range int32(4) {
		if o := offsets(t, s, tp(out, p)); o.LastStableOffset != o.HighWatermark {
			t.Fatalf("partition %d: last stable offset %d below the high watermark %d", p, o.LastStableOffset, o.HighWatermark)
		}
	}
}
