package metastoretest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// testConcurrency commits from many goroutines at once, as many agents do,
// and checks that the sequencer still hands out every offset exactly once.
func testConcurrency(t *testing.T, open func(t *testing.T) metastore.Store) {
	const (
		writers    = 8
		commits    = 50
		partitions = 3
	)
	s := open(t)
	topic := createTopic(t, s, "t", partitions)

	// written is one accepted batch, as its writer saw it.
	type written struct {
		partition       int32
		base, count     int64
		object          string
		byteOff, length int64
	}
	var (
		mu  sync.Mutex
		all []written
		wg  sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			producer := int64(5000 + w)
			var nextSeq [partitions]int32
			for i := range commits {
				// Two partitions per commit, two adjacent batches each,
				// every fourth one idempotent.
				var batches []metastore.BatchCommit
				for j := range 4 {
					p := int32((w + i + j/2) % partitions)
					count := int64(1 + (w+i+j)%3)
					b := batch(topic.ID, p, int64(j)*10, 10, count)
					if i%4 == 0 {
						b.ProducerID, b.BaseSequence = producer, nextSeq[p]
						nextSeq[p] += int32(count)
					}
					batches = append(batches, b)
				}
				c := segment(batches...)
				results, err := s.CommitSegment(t.Context(), c)
				if err != nil {
					t.Errorf("writer %d commit %d: %v", w, i, err)
					return
				}
				mu.Lock()
				for j, r := range results {
					if r.Err != nil || r.Duplicate {
						t.Errorf("writer %d commit %d batch %d: %+v", w, i, j, r)
						continue
					}
					b := batches[j]
					all = append(all, written{b.Partition, r.BaseOffset, b.OffsetCount, c.Object, b.ByteOffset, b.ByteLength})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for p := range int32(partitions) {
		var mine []written
		for _, b := range all {
			if b.partition == p {
				mine = append(mine, b)
			}
		}
		slices.SortFunc(mine, func(a, b written) int { return cmp.Compare(a.base, b.base) })
		var next int64
		for _, b := range mine {
			if b.base != next {
				t.Fatalf("partition %d: batch at %d, want %d (offsets not unique and contiguous)", p, b.base, next)
			}
			next += b.count
		}
		if o := offsets(t, s, topic.ID, p); o.HighWatermark != next {
			t.Fatalf("partition %d: high watermark %d, want %d", p, o.HighWatermark, next)
		}

		es := extents(t, s, topic.ID, p, 0, 0)
		var end int64
		for _, e := range es {
			if e.BaseOffset != end || e.EndOffset <= e.BaseOffset {
				t.Fatalf("partition %d: extent [%d, %d) after offset %d: extents overlap or leave a gap", p, e.BaseOffset, e.EndOffset, end)
			}
			end = e.EndOffset
		}
		if end != next {
			t.Fatalf("partition %d: extents end at %d, want %d", p, end, next)
		}
		// Every batch lies inside the extent holding its offsets.
		for _, b := range mine {
			i, _ := slices.BinarySearchFunc(es, b.base, func(e metastore.Extent, off int64) int {
				switch {
				case e.EndOffset <= off:
					return -1
				case e.BaseOffset > off:
					return 1
				}
				return 0
			})
			e := es[i]
			if b.base+b.count > e.EndOffset || e.Object != b.object ||
				b.byteOff < e.ByteOffset || b.byteOff+b.length > e.ByteOffset+e.ByteLength {
				t.Fatalf("partition %d: batch %+v not inside extent %+v", p, b, e)
			}
		}
	}
}

// testLifecycle checks cancellation and Close.
func testLifecycle(t *testing.T, open func(t *testing.T) metastore.Store) {
	t.Run("Cancelled", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 1)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.CommitSegment(ctx, segment(batch(topic.ID, 0, 0, 10, 1))); !errors.Is(err, context.Canceled) {
			t.Errorf("CommitSegment with cancelled context: %v, want %v", err, context.Canceled)
		}
		if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "u", Partitions: 1}); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateTopic with cancelled context: %v, want %v", err, context.Canceled)
		}
		if o := offsets(t, s, topic.ID, 0); o.HighWatermark != 0 {
			t.Errorf("high watermark %d after cancelled commit, want 0", o.HighWatermark)
		}
		if _, err := s.Topic(t.Context(), "u"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			t.Errorf("topic created with cancelled context: %v", err)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 1)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := t.Context()
		id := topic.ID
		calls := map[string]func() error{
			"CreateTopic": func() error {
				_, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "u", Partitions: 1})
				return err
			},
			"DeleteTopic":       func() error { _, err := s.DeleteTopic(ctx, "t"); return err },
			"CreatePartitions":  func() error { _, err := s.CreatePartitions(ctx, "t", 2); return err },
			"AlterTopicConfigs": func() error { _, err := s.AlterTopicConfigs(ctx, "t", nil); return err },
			"Topic":             func() error { _, err := s.Topic(ctx, "t"); return err },
			"Topics":            func() error { _, err := s.Topics(ctx); return err },
			"CommitSegment": func() error {
				_, err := s.CommitSegment(ctx, segment(batch(id, 0, 0, 10, 1)))
				return err
			},
			"Offsets":                func() error { _, err := s.Offsets(ctx, id, 0); return err },
			"Extents":                func() error { _, err := s.Extents(ctx, id, 0, 0, 0); return err },
			"ExtentAtTimestamp":      func() error { _, _, err := s.ExtentAtTimestamp(ctx, id, 0, 0); return err },
			"ExtentWithMaxTimestamp": func() error { _, _, err := s.ExtentWithMaxTimestamp(ctx, id, 0); return err },
			"InitProducerID":         func() error { _, _, err := s.InitProducerID(ctx, -1, -1); return err },
		}
		for name, call := range calls {
			wantErr(t, name+" after Close", call(), metastore.ErrClosed)
		}
	})

	t.Run("ClosedGroupStore", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 1)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := t.Context()
		calls := map[string]func() error{
			"CommitOffsets": func() error { return s.CommitOffsets(ctx, "g", []metastore.CommittedOffset{offset(a.ID, 0, 1)}) },
			"FetchOffsets":  func() error { _, err := s.FetchOffsets(ctx, "g"); return err },
			"DeleteOffsets": func() error {
				return s.DeleteOffsets(ctx, "g", []metastore.TopicPartition{{TopicID: a.ID}})
			},
			"ExpireOffsets": func() error { _, err := s.ExpireOffsets(ctx, "g", time.Now()); return err },
			"LoadGroup":     func() error { _, _, err := s.LoadGroup(ctx, "g"); return err },
			"SaveGroup":     func() error { _, err := s.SaveGroup(ctx, metastore.Group{Name: "g"}); return err },
			"ListGroups":    func() error { _, err := s.ListGroups(ctx); return err },
			"DeleteGroup":   func() error { return s.DeleteGroup(ctx, "g") },
		}
		for name, call := range calls {
			wantErr(t, name+" after Close", call(), metastore.ErrClosed)
		}
	})

	t.Run("ClosedTxnStore", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := t.Context()
		txn := metastore.Txn{TransactionalID: "tx", State: metastore.TxnEmpty}
		calls := map[string]func() error{
			"LoadTxn":   func() error { _, _, err := s.LoadTxn(ctx, "tx"); return err },
			"SaveTxn":   func() error { _, err := s.SaveTxn(ctx, txn); return err },
			"DeleteTxn": func() error { return s.DeleteTxn(ctx, "tx", 1) },
			"ListTxns":  func() error { _, err := s.ListTxns(ctx); return err },
			"EndTxn":    func() error { _, err := s.EndTxn(ctx, metastore.TxnEnd{Next: txn}); return err },
			"CommitTxnOffsets": func() error {
				return s.CommitTxnOffsets(ctx, "tx", 1, 0, "g", nil)
			},
			"AbortedTxns":     func() error { _, err := s.AbortedTxns(ctx, metastore.TopicID{}, 0, 0, 1); return err },
			"ActiveProducers": func() error { _, err := s.ActiveProducers(ctx, metastore.TopicID{}, 0); return err },
		}
		for name, call := range calls {
			wantErr(t, name+" after Close", call(), metastore.ErrClosed)
		}
	})

	t.Run("ClosedAgentRegistry", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := t.Context()
		calls := map[string]func() error{
			"Heartbeat":  func() error { _, err := s.Heartbeat(ctx, agent("a", -1), longTTL); return err },
			"LiveAgents": func() error { _, err := s.LiveAgents(ctx); return err },
			"Deregister": func() error { return s.Deregister(ctx, "a") },
		}
		for name, call := range calls {
			wantErr(t, name+" after Close", call(), metastore.ErrClosed)
		}
	})
}

// testTxnConcurrency ends transactions while their producers go on
// committing transactional batches to the same partitions, round after
// round: every batch of a transaction is committed before its marker, or
// refused; none is ever committed after it. The ends race with the
// commits at random moments, so some rounds end before any batch, some in
// the middle of a stream.
func testTxnConcurrency(t *testing.T, s txnStore) {
	const (
		rounds     = 20
		producers  = 2
		partitions = 3
		maxBatches = 40
	)
	topic := createTopic(t, s, "t", partitions)
	var parts []metastore.TopicPartition
	for p := range int32(partitions) {
		parts = append(parts, tp(topic.ID, p))
	}
	type written struct{ base, count int64 }
	var (
		versions [producers]int64
		seqs     [producers][partitions]int32
		// lastMarker is the marker offset of the previous round.
		lastMarker [producers][partitions]int64
	)
	for i := range producers {
		for p := range partitions {
			lastMarker[i][p] = -1
		}
	}
	var batches, emptyStreams, streams int
	defer func() {
		t.Logf("%d rounds: %d transactional batches committed; %d of %d streams ended before their first batch",
			rounds, batches, emptyStreams, streams)
	}()
	for round := range rounds {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		txns := make([]metastore.Txn, producers)
		for i := range producers {
			txn := ongoing(fmt.Sprintf("tx-%d", i), int64(8000+i), 0, versions[i], parts)
			txn.Version = saveTxn(t, s, txn)
			txns[i] = txn
		}
		var (
			wg       sync.WaitGroup
			accepted [producers][partitions][]written
			results  [producers]metastore.TxnEndResult
			delays   [producers]time.Duration
		)
		for i := range producers {
			delays[i] = time.Duration(rng.IntN(3000)) * time.Microsecond
		}
		for i := range producers {
			for p := range int32(partitions) {
				wg.Go(func() {
					for k := range maxBatches {
						count := int64(1 + k%3)
						b := txnBatch(topic.ID, p, txns[i].ProducerID, 0, seqs[i][p], count)
						c := segment(b)
						if k%4 == 1 { // now and then with another producer's plain batch
							c = segment(b, batch(topic.ID, p, 10, 10, 1))
						}
						r, err := s.CommitSegment(t.Context(), c)
						if err != nil {
							t.Errorf("round %d producer %d partition %d: %v", round, i, p, err)
							return
						}
						switch {
						case r[0].Err == nil && !r[0].Duplicate:
							accepted[i][p] = append(accepted[i][p], written{r[0].BaseOffset, count})
							seqs[i][p] += int32(count)
						case errors.Is(r[0].Err, metastore.ErrInvalidTxnState):
							return // the transaction ended
						default:
							t.Errorf("round %d producer %d partition %d batch %d: %+v", round, i, p, k, r[0])
							return
						}
					}
				})
			}
			wg.Go(func() {
				time.Sleep(delays[i])
				commit := (round+i)%2 == 0
				e := metastore.TxnEnd{
					Next: ended(txns[i], commit), ProducerID: txns[i].ProducerID, Commit: commit,
					Markers: markers(txns[i].ProducerID, 0, parts...),
				}
				r, err := s.EndTxn(t.Context(), e)
				if err != nil {
					t.Errorf("round %d producer %d: EndTxn: %v", round, i, err)
				}
				results[i] = r
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := range producers {
			versions[i] = results[i].Version
			commit := (round+i)%2 == 0
			for p := range int32(partitions) {
				marker := results[i].MarkerOffsets[p]
				ws := accepted[i][p]
				streams++
				batches += len(ws)
				if len(ws) == 0 {
					emptyStreams++
				}
				for _, w := range ws {
					if w.base+w.count > marker || w.base <= lastMarker[i][p] {
						t.Fatalf("round %d producer %d partition %d: batch [%d, %d) outside its transaction (%d, %d)",
							round, i, p, w.base, w.base+w.count, lastMarker[i][p], marker)
					}
				}
				lastMarker[i][p] = marker
				got := abortedTxns(t, s, topic.ID, p, marker, marker+1)
				got = slices.DeleteFunc(got, func(a metastore.AbortedTxn) bool { return a.ProducerID != txns[i].ProducerID })
				var want []metastore.AbortedTxn
				if !commit && len(ws) > 0 {
					want = []metastore.AbortedTxn{{ProducerID: txns[i].ProducerID, FirstOffset: ws[0].base, LastOffset: marker}}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("round %d producer %d partition %d: aborted entries %+v, want %+v", round, i, p, got, want)
				}
			}
		}
		for p := range int32(partitions) {
			if o := offsets(t, s, topic.ID, p); o.LastStableOffset != o.HighWatermark {
				t.Fatalf("round %d partition %d: %+v with every transaction ended", round, p, o)
			}
		}
	}
}
