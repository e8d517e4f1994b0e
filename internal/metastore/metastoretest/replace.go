package metastoretest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/metastore"
)

// refs names stored extents for a replacement.
func refs(es ...metastore.Extent) []metastore.ExtentRef {
	out := make([]metastore.ExtentRef, len(es))
	for i, e := range es {
		out[i] = metastore.ExtentRef{BaseOffset: e.BaseOffset, Object: e.Object}
	}
	return out
}

// newExtent is an extent [base, end) at bytes [at, at+n) of object.
func newExtent(object string, size, at, n, base, end int64) metastore.Extent {
	return metastore.Extent{BaseOffset: base, EndOffset: end, Object: object, ObjectSize: size,
		ByteOffset: at, ByteLength: n, MaxTimestamp: 1_700_000_000_000}
}

// testReplace checks ReplaceExtents.
func testReplace(t *testing.T, open func(t *testing.T) jobStore) {
	t.Run("Swap", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		topic := createTopic(t, s, "t", 2)
		var segs []metastore.SegmentCommit
		for range 3 {
			seg := segment(batch(topic.ID, 0, 0, 100, 10), batch(topic.ID, 1, 100, 20, 1))
			commitOK(t, s, seg)
			segs = append(segs, seg)
		}
		old := extents(t, s, topic.ID, 0, 0, 0)
		if len(old) != 3 {
			t.Fatalf("%d extents, want 3", len(old))
		}
		notices := make(chan metastore.CommitNotice, 16)
		stop := s.WatchCommits(func(n metastore.CommitNotice) { notices <- n })
		defer stop()

		// The last two become one extent in a new object.
		merged := "compacted/" + uuid.NewString()
		err := s.ReplaceExtents(ctx, []metastore.PartitionReplacement{{
			TopicID: topic.ID, Partition: 0, Old: refs(old[1:]...),
			New: []metastore.Extent{newExtent(merged, 500, 50, 200, 10, 30)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		waitNotice(t, notices, topic.ID, 0)
		got := extents(t, s, topic.ID, 0, 0, 0)
		if len(got) != 2 || got[0] != old[0] || got[1].Object != merged || got[1].BaseOffset != 10 || got[1].EndOffset != 30 ||
			got[1].ByteOffset != 50 || got[1].ByteLength != 200 || got[1].TopicID != topic.ID || got[1].Partition != 0 {
			t.Fatalf("extents after swap: %+v", got)
		}
		// CommittedAt defaults to the latest of the old extents.
		if !got[1].CommittedAt.Equal(old[2].CommittedAt) {
			t.Errorf("new extent committed at %v, want the old %v", got[1].CommittedAt, old[2].CommittedAt)
		}
		if offs := offsets(t, s, topic.ID, 0); offs.HighWatermark != 30 || offs.LogStartOffset != 0 {
			t.Errorf("offsets changed by a swap: %+v", offs)
		}
		// The replaced objects still hold partition 1's extents.
		if d := deletable(t, s); len(d) != 0 {
			t.Fatalf("deletable %v; partition 1 still refers to every segment", d)
		}
		known, err := s.KnownObjects(ctx, []string{merged, segs[0].Object, "segments/never"})
		if err != nil || !known[merged] || !known[segs[0].Object] || known["segments/never"] {
			t.Fatalf("KnownObjects = %v, %v", known, err)
		}

		// Replaying the same swap conflicts: the old extents are gone.
		err = s.ReplaceExtents(ctx, []metastore.PartitionReplacement{{
			TopicID: topic.ID, Partition: 0, Old: refs(old[1:]...),
			New: []metastore.Extent{newExtent("compacted/other", 500, 0, 200, 10, 30)},
		}})
		var conflict *metastore.ReplaceConflictError
		if !errors.Is(err, metastore.ErrExtentsChanged) || !errors.As(err, &conflict) || len(conflict.Partitions) != 1 {
			t.Fatalf("second swap of the same extents: %v, want a conflict on one partition", err)
		}

		// Both partitions at once into one new object: the segments lose
		// their last references.
		p1 := extents(t, s, topic.ID, 1, 0, 0)
		all := "compacted/" + uuid.NewString()
		err = s.ReplaceExtents(ctx, []metastore.PartitionReplacement{
			{TopicID: topic.ID, Partition: 1, Old: refs(p1...), New: []metastore.Extent{newExtent(all, 400, 300, 60, 0, 3)}},
			{TopicID: topic.ID, Partition: 0, Old: refs(got...), New: []metastore.Extent{
				newExtent(all, 400, 0, 100, 0, 10), newExtent(all, 400, 100, 200, 10, 30),
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{merged, segs[0].Object, segs[1].Object, segs[2].Object}
		slices.Sort(want)
		if d := deletable(t, s); !slices.Equal(d, want) {
			t.Fatalf("deletable = %v, want %v", d, want)
		}
		u, err := s.ObjectUsage(ctx)
		if err != nil || u.ReferencedObjects != 1 || u.ReferencedBytes != 400 || u.UnreferencedObjects != 4 || u.UnreferencedBytes != 500+3*120 {
			t.Fatalf("ObjectUsage = %+v, %v", u, err)
		}
		// New extents may not revive an unreferenced object.
		err = s.ReplaceExtents(ctx, []metastore.PartitionReplacement{{
			TopicID: topic.ID, Partition: 1, Old: refs(extents(t, s, topic.ID, 1, 0, 0)...),
			New: []metastore.Extent{newExtent(merged, 500, 0, 60, 0, 3)},
		}})
		wantErr(t, "swap into an unreferenced object", err, metastore.ErrInvalidReplacement)
	})

	t.Run("Conflicts", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		topic := createTopic(t, s, "t", 2)
		for range 3 {
			commitOK(t, s, segment(batch(topic.ID, 0, 0, 100, 10), batch(topic.ID, 1, 100, 20, 1)))
		}
		p0, p1 := extents(t, s, topic.ID, 0, 0, 0), extents(t, s, topic.ID, 1, 0, 0)
		// Retention took the first extent of partition 0.
		if _, err := s.AdvanceLogStart(ctx, topic.ID, 0, 10); err != nil {
			t.Fatal(err)
		}
		obj := "compacted/" + uuid.NewString()
		err := s.ReplaceExtents(ctx, []metastore.PartitionReplacement{
			{TopicID: topic.ID, Partition: 0, Old: refs(p0...), New: []metastore.Extent{newExtent(obj, 400, 0, 300, 0, 30)}},
			{TopicID: topic.ID, Partition: 1, Old: refs(p1...), New: []metastore.Extent{newExtent(obj, 400, 300, 60, 0, 3)}},
		})
		var conflict *metastore.ReplaceConflictError
		if !errors.As(err, &conflict) || !slices.Equal(conflict.Partitions, []metastore.TopicPartition{{TopicID: topic.ID, Partition: 0}}) {
			t.Fatalf("swap after retention: %v, want a conflict naming partition 0", err)
		}
		// All or nothing: partition 1 is untouched, obj unknown.
		if got := extents(t, s, topic.ID, 1, 0, 0); !slices.Equal(got, p1) {
			t.Fatalf("partition 1 changed by a failed swap: %+v", got)
		}
		if known, _ := s.KnownObjects(ctx, []string{obj}); known[obj] {
			t.Fatal("a failed swap registered its object")
		}
		// Names that differ from the store's, or a gap: conflicts.
		for name, old := range map[string][]metastore.ExtentRef{
			"wrong object": {{BaseOffset: p1[0].BaseOffset, Object: "segments/other"}},
			"wrong base":   {{BaseOffset: 1, Object: p1[0].Object}},
			"not adjacent": refs(p1[0], p1[2]),
		} {
			err := s.ReplaceExtents(ctx, []metastore.PartitionReplacement{{TopicID: topic.ID, Partition: 1, Old: old,
				New: []metastore.Extent{newExtent(obj, 400, 0, 60, old[0].BaseOffset, old[0].BaseOffset+1)}}})
			if !errors.Is(err, metastore.ErrExtentsChanged) {
				t.Errorf("%s: %v, want ErrExtentsChanged", name, err)
			}
		}
		// Malformed replacements.
		for name, r := range map[string]metastore.PartitionReplacement{
			"short":       {TopicID: topic.ID, Partition: 1, Old: refs(p1...), New: []metastore.Extent{newExtent(obj, 400, 0, 60, 0, 2)}},
			"gap":         {TopicID: topic.ID, Partition: 1, Old: refs(p1...), New: []metastore.Extent{newExtent(obj, 400, 0, 20, 0, 1), newExtent(obj, 400, 20, 20, 2, 3)}},
			"late start":  {TopicID: topic.ID, Partition: 1, Old: refs(p1...), New: []metastore.Extent{newExtent(obj, 400, 0, 60, 1, 3)}},
			"past object": {TopicID: topic.ID, Partition: 1, Old: refs(p1...), New: []metastore.Extent{newExtent(obj, 40, 0, 60, 0, 3)}},
			"no old":      {TopicID: topic.ID, Partition: 1, New: []metastore.Extent{newExtent(obj, 400, 0, 60, 0, 3)}},
			"no new":      {TopicID: topic.ID, Partition: 1, Old: refs(p1...)},
		} {
			err := s.ReplaceExtents(ctx, []metastore.PartitionReplacement{r})
			if !errors.Is(err, metastore.ErrInvalidReplacement) {
				t.Errorf("%s: %v, want ErrInvalidReplacement", name, err)
			}
		}
		// A deleted topic's extents are gone too.
		if _, err := s.DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		err = s.ReplaceExtents(ctx, []metastore.PartitionReplacement{{TopicID: topic.ID, Partition: 1, Old: refs(p1...),
			New: []metastore.Extent{newExtent(obj, 400, 0, 60, 0, 3)}}})
		wantErr(t, "swap in a deleted topic", err, metastore.ErrExtentsChanged)
	})
}

// testLedger checks the object ledger: which objects are deletable, since
// when, and forgetting them.
func testLedger(t *testing.T, open func(t *testing.T) jobStore) {
	t.Run("Ledger", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		keep := createTopic(t, s, "keep", 1)
		gone := createTopic(t, s, "gone", 1)
		shared := segment(batch(keep.ID, 0, 0, 10, 1), batch(gone.ID, 0, 10, 10, 1))
		own := segment(batch(gone.ID, 0, 0, 30, 1))
		commitOK(t, s, shared)
		commitOK(t, s, own)
		if err := s.ForgetObject(ctx, own.Object); !errors.Is(err, metastore.ErrObjectReferenced) {
			t.Fatalf("ForgetObject of a referenced object: %v, want ErrObjectReferenced", err)
		}
		before := time.Now().Add(-clockSlack)
		if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if d := deletable(t, s); !slices.Equal(d, []string{own.Object}) {
			t.Fatalf("deletable after DeleteTopic = %v, want only %s", d, own.Object)
		}
		objs, err := s.ListDeletable(ctx, time.Now().Add(clockSlack), 0)
		if err != nil || len(objs) != 1 || objs[0].Size != 30 {
			t.Fatalf("ListDeletable = %+v, %v", objs, err)
		}
		recent(t, "Since", objs[0].Since)
		// Not unreferenced before that.
		if objs, err := s.ListDeletable(ctx, before, 0); err != nil || len(objs) != 0 {
			t.Fatalf("ListDeletable(an hour ago) = %+v, %v; want none", objs, err)
		}
		if err := s.ForgetObject(ctx, own.Object); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetObject(ctx, "segments/never-known"); err != nil {
			t.Fatalf("ForgetObject of an unknown object: %v", err)
		}
		if d := deletable(t, s); len(d) != 0 {
			t.Fatalf("deletable after ForgetObject = %v", d)
		}
		if known, _ := s.KnownObjects(ctx, []string{own.Object, shared.Object}); known[own.Object] || !known[shared.Object] {
			t.Fatalf("KnownObjects after forgetting %s: %v", own.Object, known)
		}
		// Limit and order: oldest first.
		if _, err := s.AdvanceLogStart(ctx, keep.ID, 0, metastore.LogStartHighWatermark); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		for range 3 {
			seg := segment(batch(keep.ID, 0, 0, 10, 1))
			commitOK(t, s, seg)
			time.Sleep(5 * time.Millisecond)
			if _, err := s.AdvanceLogStart(ctx, keep.ID, 0, metastore.LogStartHighWatermark); err != nil {
				t.Fatal(err)
			}
		}
		objs, err = s.ListDeletable(ctx, time.Now().Add(clockSlack), 2)
		if err != nil || len(objs) != 2 || objs[0].Key != shared.Object || objs[1].Since.Before(objs[0].Since) {
			t.Fatalf("ListDeletable(limit 2) = %+v, %v; want the shared segment first", objs, err)
		}
	})
}
