package embedded

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// A store loaded from a snapshot carries on its extent log where the
// snapshot's store was: a snapshot holds keys and values, not bbolt's
// bucket sequences, and a log numbered from 1 again wrote over live
// records (compaction then found "pending extents" missing).
func TestSnapshotContinuesExtentLog(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	open := func(path string) *Store {
		s, err := Open(path, Options{Now: func() time.Time { return clock }, Rand: &counterReader{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.setFold(foldLimits{records: 4, extents: 1 << 30})
		return s
	}
	a := open(filepath.Join(t.TempDir(), "a.db"))
	topic, err := a.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(s *Store, i int) {
		t.Helper()
		c := metastore.SegmentCommit{Object: fmt.Sprint("segments/", i), Size: 100}
		for p := range int32(2) {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: p,
				ByteOffset: int64(p) * 10, ByteLength: 10, OffsetCount: 2, MaxTimestamp: int64(i), ProducerID: -1})
		}
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	for i := range 7 {
		commit(a, i)
	}
	bPath := loadSnapshot(t, a)
	b := open(bPath)
	for i := 7; i < 20; i++ {
		commit(a, i)
		commit(b, i)
	}
	// Folds of every partition (AdvanceLogStart folds first) and the
	// reads after them agree.
	for _, s := range []*Store{a, b} {
		for p := range int32(2) {
			if _, err := s.AdvanceLogStart(ctx, topic.ID, p, 4); err != nil {
				t.Fatalf("advance log start of partition %d: %v", p, err)
			}
		}
	}
	for p := range int32(2) {
		ea, errA := a.Extents(ctx, topic.ID, p, 0, 0)
		eb, errB := b.Extents(ctx, topic.ID, p, 0, 0)
		if errA != nil || errB != nil || !reflect.DeepEqual(ea, eb) || len(ea) != 18 {
			t.Fatalf("partition %d: %d extents (%v) from the original store, %d (%v) from the loaded one", p, len(ea), errA, len(eb), errB)
		}
	}
}

// loadSnapshot writes a snapshot of s into a new file, as the control
// plane loads one from the bucket (keys and values only), and returns
// the file's path.
func loadSnapshot(t *testing.T, s *Store) string {
	t.Helper()
	snap, err := s.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	path := filepath.Join(t.TempDir(), "b.db")
	l, err := NewLoader(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.ForEach(func(bucket, k, v []byte) error { return l.Put(bucket, k, v) }); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(true); err != nil {
		t.Fatal(err)
	}
	return path
}
