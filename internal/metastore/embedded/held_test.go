package embedded

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// TestBatchAgreesWithOneByOne runs one random history of commits
// (idempotent producers among them, duplicates resent), reads, retention,
// replacements and topic deletions on two stores: a file applying each
// call alone, and a memory store applying them in random batches
// (Batch), as internal/control does, falling back to one by one when a
// batch fails. A batch holds its commits' partition states decoded across
// calls (heldStates) and trims the extent log once: every answer, and
// every read between batches, must be the same on both.
func TestBatchAgreesWithOneByOne(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { batchAgreesWithOneByOne(t, seed) })
	}
}

func batchAgreesWithOneByOne(t *testing.T, seed uint64) {
	ctx := t.Context()
	clock := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	rands := map[bool]*counterReader{false: {}, true: {}}
	open := func(memory bool) *Store {
		s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{Memory: memory, Now: func() time.Time { return clock }, Rand: rands[memory]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.setFold(foldLimits{records: 1 + int(seed%4), extents: 1 << 20})
		return s
	}
	alone, batched := open(false), open(true)
	answer := func(got any, err error) any {
		if err != nil {
			return "error: " + err.Error()
		}
		return got
	}
	type call struct {
		name string
		fn   func(ctx context.Context, s *Store) (any, error)
		want any
		at   time.Time // the clock when it was applied alone
	}
	var group []call
	const parts = 5
	topics := make([]metastore.Topic, 2)
	for i := range topics {
		tp, err := alone.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprint("t", i), Partitions: parts})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := batched.CreateTopic(ctx, metastore.TopicSpec{Name: tp.Name, Partitions: parts}); err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
	}
	// do applies a call to the one-by-one store now and queues it for the
	// batched one.
	do := func(name string, fn func(ctx context.Context, s *Store) (any, error)) any {
		want := answer(fn(ctx, alone))
		group = append(group, call{name: name, fn: fn, want: want, at: clock})
		return want
	}
	check := func() {
		t.Helper()
		for _, tp := range topics {
			for p := range int32(parts) {
				reads := map[string]func(s *Store) (any, error){
					"offsets": func(s *Store) (any, error) { return s.Offsets(ctx, tp.ID, p) },
					"extents": func(s *Store) (any, error) { return s.Extents(ctx, tp.ID, p, 0, 0) },
					"active":  func(s *Store) (any, error) { return s.ActiveProducers(ctx, tp.ID, p) },
					"usage":   func(s *Store) (any, error) { return s.PartitionUsage(ctx, tp.ID) },
					"maxstamp": func(s *Store) (any, error) {
						e, ok, err := s.ExtentWithMaxTimestamp(ctx, tp.ID, p)
						return fmt.Sprint(e, ok), err
					},
				}
				for what, read := range reads {
					if a, b := answer(read(alone)), answer(read(batched)); !reflect.DeepEqual(a, b) {
						t.Fatalf("%s of %s/%d: one by one %+v, batched %+v", what, tp.Name, p, a, b)
					}
				}
			}
		}
	}
	flush := func() {
		t.Helper()
		now := clock
		defer func() { clock = now }()
		got := make([]any, len(group))
		rand := *rands[true]
		err := batched.Batch(func(ctx context.Context) error {
			for i, c := range group {
				clock = c.at
				got[i] = answer(c.fn(ctx, batched))
			}
			return nil
		})
		if errors.Is(err, ErrBatchFailed) {
			*rands[true] = rand // the same random bytes again, as a journaled command has
			for i, c := range group {
				clock = c.at
				got[i] = answer(c.fn(ctx, batched))
			}
		} else if err != nil {
			t.Fatalf("batch: %v", err)
		}
		for i, c := range group {
			if !reflect.DeepEqual(got[i], c.want) {
				t.Fatalf("call %d of the batch (%s): batched %+v, one by one %+v", i, c.name, got[i], c.want)
			}
		}
		group = group[:0]
		clock = now
		check()
	}
	type seqKey struct {
		pid   int64
		topic int
		part  int32
	}
	next := map[seqKey]int32{}
	var last metastore.SegmentCommit
	rng := rand.New(rand.NewPCG(seed, 99))
	size := 1 + rng.IntN(8)
	for step := range 300 {
		clock = clock.Add(time.Second)
		switch r := rng.IntN(20); {
		case r < 13:
			c := metastore.SegmentCommit{Object: fmt.Sprint("segments/", step), Size: 1000}
			seen := map[seqKey]bool{}
			for range 1 + rng.IntN(6) {
				ti, p := rng.IntN(len(topics)), rng.Int32N(parts)
				b := metastore.BatchCommit{TopicID: topics[ti].ID, Partition: p, ByteOffset: int64(len(c.Batches)) * 10,
					ByteLength: 10, OffsetCount: 1 + rng.Int64N(3), MaxTimestamp: rng.Int64N(30), ProducerID: -1}
				if pid := rng.Int64N(4); pid > 0 {
					k := seqKey{pid, ti, p}
					if seen[k] {
						continue // one batch per producer and partition in a segment
					}
					seen[k] = true
					b.ProducerID, b.BaseSequence = pid, next[k]
					next[k] += int32(b.OffsetCount)
				}
				c.Batches = append(c.Batches, b)
			}
			if rng.IntN(8) == 0 && last.Object != "" {
				c = last // resent: its idempotent batches are duplicates
				c.Object += "-again"
			}
			last = c
			do("commit", func(ctx context.Context, s *Store) (any, error) { return s.CommitSegment(ctx, c) })
		case r < 15:
			tp, p := topics[rng.IntN(len(topics))], rng.Int32N(parts)
			do("read", func(ctx context.Context, s *Store) (any, error) {
				o, err := s.Offsets(ctx, tp.ID, p)
				if err != nil {
					return nil, err
				}
				es, err := s.Extents(ctx, tp.ID, p, 0, 0)
				return fmt.Sprint(o, es), err
			})
		case r < 17:
			tp, p := topics[rng.IntN(len(topics))], rng.Int32N(parts)
			o, err := alone.Offsets(ctx, tp.ID, p)
			if err != nil {
				t.Fatal(err)
			}
			to := o.LogStartOffset + rng.Int64N(o.HighWatermark-o.LogStartOffset+1)
			do("advance", func(ctx context.Context, s *Store) (any, error) { return s.AdvanceLogStart(ctx, tp.ID, p, to) })
		case r < 18:
			tp, p := topics[rng.IntN(len(topics))], rng.Int32N(parts)
			old, err := alone.Extents(ctx, tp.ID, p, 0, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(old) < 2 || old[0].EndOffset != old[1].BaseOffset {
				continue
			}
			refs := []metastore.ExtentRef{{BaseOffset: old[0].BaseOffset, Object: old[0].Object}, {BaseOffset: old[1].BaseOffset, Object: old[1].Object}}
			rp := metastore.PartitionReplacement{TopicID: tp.ID, Partition: p, Old: refs, New: []metastore.Extent{{
				TopicID: tp.ID, Partition: p, BaseOffset: old[0].BaseOffset, EndOffset: old[1].EndOffset, Object: fmt.Sprint("compacted/", step),
				ObjectSize: 20, ByteLength: 20, MaxTimestamp: max(old[0].MaxTimestamp, old[1].MaxTimestamp), CommittedAt: clock,
			}}}
			do("replace", func(ctx context.Context, s *Store) (any, error) {
				return nil, s.ReplaceExtents(ctx, []metastore.PartitionReplacement{rp})
			})
		case r < 19:
			if rng.IntN(3) > 0 {
				continue
			}
			// A call that fails inside a batch: the batch is applied again
			// one by one.
			do("create existing", func(ctx context.Context, s *Store) (any, error) {
				return s.CreateTopic(ctx, metastore.TopicSpec{Name: topics[0].Name, Partitions: parts})
			})
		default:
			i := rng.IntN(len(topics))
			name := topics[i].Name
			do("delete", func(ctx context.Context, s *Store) (any, error) { return s.DeleteTopic(ctx, name) })
			tp := do("create", func(ctx context.Context, s *Store) (any, error) {
				return s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: parts})
			})
			topics[i] = tp.(metastore.Topic)
			for k := range next {
				if k.topic == i {
					delete(next, k)
				}
			}
			last = metastore.SegmentCommit{}
		}
		if len(group) >= size {
			flush()
			size = 1 + rng.IntN(8)
		}
	}
	flush()
}
