package embedded

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// TestExtentLogDifferential runs one random history of commits, retention
// and compaction-like replacements on eleven stores, one folding at every
// commit, one with a short extent log and one that (nearly) never folds,
// the first two again folding record by record, two folding in rounds
// (by record and by partition), two whose trims move at most one or
// three extents (a whole partition at least), so that a record stays
// after a trim with partitions still pending, and two trimmed by their
// goroutine, between and during the steps, and checks after every step
// that every read of every partition is the same on all of them.
func TestExtentLogDifferential(t *testing.T) {
	ctx := t.Context()
	limits := []foldLimits{{records: 1, extents: 1}, {records: 3, extents: 7}, {records: 1 << 30, extents: 1 << 30}, {records: 1, extents: 1}, {records: 3, extents: 7},
		{records: 2, extents: 6, roundRecords: 4, roundExtents: 9}, {records: 1, extents: 1 << 30, roundRecords: 5},
		{records: 1, extents: 1, budget: 1}, {records: 2, extents: 5, budget: 3}, {records: 1, extents: 1}, {records: 2, extents: 5, budget: 3}}
	byRecord := []bool{false, false, false, true, true, true, false, false, false, false, false} // true as in memory (folder.foldRecords)
	later := []bool{false, false, false, false, false, false, false, false, false, true, true}   // trimmed by the store's goroutine (trimlater.go)
	stores := make([]*Store, len(limits))
	clock := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for i, l := range limits {
		s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{Now: func() time.Time { return clock }, Rand: &counterReader{}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if later[i] {
			s.fold = l
		} else {
			s.setFold(l)
		}
		s.foldByRecord = byRecord[i]
		stores[i] = s
	}
	each := func(fn func(s *Store) (any, error)) any {
		t.Helper()
		var first any
		for i, s := range stores {
			got, err := fn(s)
			if err != nil {
				got = "error: " + err.Error()
			}
			if i == 0 {
				first = got
			} else if !reflect.DeepEqual(got, first) {
				t.Fatalf("store %d (limits %+v, by record %v, later %v) answers %+v, store 0 %+v", i, limits[i], byRecord[i], later[i], got, first)
			}
		}
		return first
	}
	const parts = 6
	topics := make([]metastore.Topic, 2)
	for i := range topics {
		topics[i] = each(func(s *Store) (any, error) {
			return s.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprint("t", i), Partitions: parts})
		}).(metastore.Topic)
	}
	check := func() {
		t.Helper()
		for _, tp := range topics {
			for p := range int32(parts) {
				each(func(s *Store) (any, error) { return s.Offsets(ctx, tp.ID, p) })
				for _, from := range []int64{-1, 0, 1, 5, 17, 40, 1000} {
					for _, limit := range []int{0, 1, 3} {
						each(func(s *Store) (any, error) { return s.Extents(ctx, tp.ID, p, from, limit) })
					}
				}
				for _, ts := range []int64{0, 10, 25} {
					each(func(s *Store) (any, error) {
						e, ok, err := s.ExtentAtTimestamp(ctx, tp.ID, p, ts)
						return fmt.Sprint(e, ok), err
					})
				}
				each(func(s *Store) (any, error) {
					e, ok, err := s.ExtentWithMaxTimestamp(ctx, tp.ID, p)
					return fmt.Sprint(e, ok), err
				})
			}
			each(func(s *Store) (any, error) { return s.PartitionUsage(ctx, tp.ID) })
		}
		each(func(s *Store) (any, error) { return s.ObjectUsage(ctx) })
		each(func(s *Store) (any, error) { return s.ListDeletable(ctx, clock.Add(time.Hour), 0) })
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for step := range 120 {
		clock = clock.Add(time.Second)
		switch r := rng.IntN(10); {
		case r < 7:
			c := metastore.SegmentCommit{Object: fmt.Sprint("segments/", step), Size: 1000}
			for range 1 + rng.IntN(8) {
				tp := topics[rng.IntN(len(topics))]
				c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: tp.ID, Partition: rng.Int32N(parts),
					ByteOffset: int64(len(c.Batches)) * 10, ByteLength: 10, OffsetCount: 1 + rng.Int64N(3),
					MaxTimestamp: rng.Int64N(30), ProducerID: -1})
			}
			each(func(s *Store) (any, error) { return s.CommitSegment(ctx, c) })
		case r < 8:
			tp := topics[rng.IntN(len(topics))]
			p := rng.Int32N(parts)
			o := each(func(s *Store) (any, error) { return s.Offsets(ctx, tp.ID, p) }).(metastore.PartitionOffsets)
			to := o.LogStartOffset + rng.Int64N(o.HighWatermark-o.LogStartOffset+1)
			each(func(s *Store) (any, error) { return s.AdvanceLogStart(ctx, tp.ID, p, to) })
		case r < 9:
			// Replace a partition's first two extents by one, as
			// compaction does.
			tp := topics[rng.IntN(len(topics))]
			p := rng.Int32N(parts)
			old := each(func(s *Store) (any, error) { return s.Extents(ctx, tp.ID, p, 0, 2) }).([]metastore.Extent)
			if len(old) < 2 || old[0].EndOffset != old[1].BaseOffset {
				continue
			}
			obj := fmt.Sprint("compacted/", step)
			refs := []metastore.ExtentRef{{BaseOffset: old[0].BaseOffset, Object: old[0].Object}, {BaseOffset: old[1].BaseOffset, Object: old[1].Object}}
			r := metastore.PartitionReplacement{TopicID: tp.ID, Partition: p, Old: refs, New: []metastore.Extent{{
				TopicID: tp.ID, Partition: p, BaseOffset: old[0].BaseOffset, EndOffset: old[1].EndOffset, Object: obj, ObjectSize: 20,
				ByteLength: 20, MaxTimestamp: max(old[0].MaxTimestamp, old[1].MaxTimestamp), CommittedAt: clock,
			}}}
			each(func(s *Store) (any, error) {
				err := s.ReplaceExtents(ctx, []metastore.PartitionReplacement{r})
				var conflict *metastore.ReplaceConflictError
				if errors.As(err, &conflict) {
					return "conflict", nil
				}
				return nil, err
			})
		default:
			// Delete and recreate a topic: its pending extents must go
			// with it, and the new incarnation starts empty.
			i := rng.IntN(len(topics))
			each(func(s *Store) (any, error) { return s.DeleteTopic(ctx, topics[i].Name) })
			topics[i] = each(func(s *Store) (any, error) {
				return s.CreateTopic(ctx, metastore.TopicSpec{Name: topics[i].Name, Partitions: parts})
			}).(metastore.Topic)
		}
		check()
	}
}

// TestFoldRounds checks the log's length commit by commit with rounds:
// it grows to the limit and its round, and the commit past them folds it
// back down to the limit, in one transaction.
func TestFoldRounds(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := (foldLimits{records: memoryFoldRecords, extents: memoryFoldExtents, roundRecords: defaultFoldRoundRecords, roundExtents: defaultFoldRoundExtents}); s.fold != want {
		t.Fatalf("a store in memory folds with limits %+v, want %+v", s.fold, want)
	}
	s.setFold(foldLimits{records: 4, extents: 1 << 20, roundRecords: 8, roundExtents: 1 << 20})
	ctx := t.Context()
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	var lengths []int
	for n := range 30 {
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%04d", n), Size: 300}
		for p := range 3 {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: int32(p), ByteOffset: int64(p) * 100, ByteLength: 100, OffsetCount: 1, ProducerID: -1})
		}
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
		tx, err := s.db.Begin(false)
		if err != nil {
			t.Fatal(err)
		}
		lengths = append(lengths, tx.Bucket([]byte(bucketExtentLog)).KeyN())
		tx.Rollback()
	}
	want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 4, 5, 6, 7, 8, 9, 10, 11, 12, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if !reflect.DeepEqual(lengths, want) {
		t.Fatalf("log lengths after each commit %v, want %v", lengths, want)
	}
	for p := range int32(3) {
		es, err := s.Extents(ctx, topic.ID, p, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 30 || es[29].BaseOffset != 29 {
			t.Fatalf("partition %d: %d extents after 30 commits", p, len(es))
		}
	}
}

// FuzzLogRecord feeds arbitrary extent log records to the decoder and to
// the reads of a partition: errors or extents, never a panic.
func FuzzLogRecord(f *testing.F) {
	e := metastore.Extent{TopicID: metastore.TopicID{1}, Partition: 2, BaseOffset: 3, EndOffset: 5, Object: "segments/x",
		ObjectSize: 100, ByteOffset: 10, ByteLength: 20, MaxTimestamp: 7, CommittedAt: time.Unix(0, 42).UTC()}
	e2 := e
	e2.Partition, e2.BaseOffset = 3, 0
	good, err := appendLogRecord(nil, []*metastore.Extent{&e, &e2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:extentLogFixed])
	f.Add([]byte{extentLogVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeLogRecord(logKey(1), v)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v is not errCorrupt", err)
			}
			return
		}
		for i := range r.n {
			e := r.extent(i)
			pk := partitionKey{id: e.TopicID, partition: e.Partition}
			lo, hi := r.find(pk.bytes())
			if lo < 0 || hi > r.n || lo > hi {
				t.Fatalf("find %s: [%d, %d) of %d", pk, lo, hi, r.n)
			}
		}
	})
}

// TestSeekEntry checks the fold's galloping search against the binary
// search of reads: from any entry below the partition, the same answer.
func TestSeekEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		var es []*metastore.Extent
		for p := range int32(40) {
			for k := range rng.IntN(4) { // 0 to 3 entries a partition
				es = append(es, &metastore.Extent{TopicID: metastore.TopicID{byte(round)}, Partition: p * 2, BaseOffset: int64(k), EndOffset: int64(k + 1), Object: "o"})
			}
		}
		v, err := appendLogRecord(nil, es)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeLogRecord(logKey(1), v)
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(-1); p <= 81; p++ { // partitions present, absent between them, before and after all
			pk := partitionKey{id: metastore.TopicID{byte(round)}, partition: max(p, 0)}.bytes()
			if p < 0 {
				pk = make([]byte, 20) // below every entry
			}
			want := searchEntries(&r, pk, false)
			for from := 0; from <= want; from++ {
				if got := seekEntry(&r, from, pk); got != want {
					t.Fatalf("round %d partition %d from %d: seekEntry %d, searchEntries %d (%d entries)", round, p, from, got, want, r.n)
				}
			}
		}
	}
}
