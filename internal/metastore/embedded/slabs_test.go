package embedded

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// TestSlabsKeepReadersState folds extents into the partitions' slabs
// while a reader holds an older state: every key and value that reader
// sees stays as it was (a slab's handed-out part is never written
// again), the new state holds every extent, and deleting the topic
// forgets its slabs.
func TestSlabsKeepReadersState(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.setFold(foldLimits{records: 2, extents: 1 << 20}) // fold all but the last two commits
	ctx := t.Context()
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(n int) {
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%04d", n), Size: 400}
		for p := range 4 {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: int32(p), ByteOffset: int64(p) * 100, ByteLength: 100, OffsetCount: 1, ProducerID: -1})
		}
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for n := range 50 {
		commit(n)
	}
	old, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	type kvPair struct{ k, v []byte }
	var seen []kvPair
	if err := old.Bucket([]byte(bucketExtents)).ForEach(func(k, v []byte) error {
		seen = append(seen, kvPair{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 4*40 {
		t.Fatalf("%d extents folded after 50 commits to 4 partitions", len(seen))
	}
	for n := 50; n < 400; n++ { // past a slab or two of each partition
		commit(n)
	}
	i := 0
	if err := old.Bucket([]byte(bucketExtents)).ForEach(func(k, v []byte) error {
		if i >= len(seen) || !bytes.Equal(k, seen[i].k) || !bytes.Equal(v, seen[i].v) {
			return fmt.Errorf("extent %d of the old state changed: %x %x", i, k, v)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != len(seen) {
		t.Fatalf("old state: %d extents, %d before", i, len(seen))
	}
	for p := range int32(4) {
		es, err := s.Extents(ctx, topic.ID, p, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 400 {
			t.Fatalf("partition %d: %d extents, want 400", p, len(es))
		}
		for j, e := range es {
			if e.BaseOffset != int64(j) || e.Object != fmt.Sprintf("segments/%04d", j) || e.ByteOffset != int64(p)*100 {
				t.Fatalf("partition %d, extent %d: %+v", p, j, e)
			}
		}
	}
	if len(s.slabs.tail) != 4 {
		t.Errorf("%d partitions with a slab, want 4", len(s.slabs.tail))
	}
	if _, err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if len(s.slabs.tail) != 0 {
		t.Errorf("%d partitions with a slab after the topic's deletion", len(s.slabs.tail))
	}
}
