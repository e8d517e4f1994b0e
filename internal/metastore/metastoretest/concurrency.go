package metastoretest

import (
	"cmp"
	"context"
	"errors"
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
