package fetch_test

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// An offset past the cached high watermark may exist: another agent
// committed it and this agent has not had the notice yet (a client learned
// the offset from that agent: a produce acknowledgement, ListOffsets, a
// committed group offset). The reader must ask the store before it
// answers OFFSET_OUT_OF_RANGE, which makes consumers reset their position.
func TestOffsetPastStaleTailIsReadFromTheStore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.write(t, 0, 3)
	if r, err := f.reader.Read(ctx, f.topic.ID, 0, 3, 1<<20, true, fetch.ReadUncommitted); err != nil || r.HighWatermark != 3 {
		t.Fatalf("at the end: hwm %d, %v", r.HighWatermark, err)
	}

	// Offsets 3..6 committed elsewhere: no Invalidate.
	sb := segment.NewBuilder()
	var recs []recordbatch.Record
	for i := range 4 {
		recs = append(recs, recordbatch.Record{Value: []byte{byte(i)}})
	}
	sb.Add(f.topic.ID, "t", 0, recordbatch.Build(recordbatch.BuildOptions{}, recs...))
	obj, pls := sb.Build()
	key := segment.NewKey()
	if err := f.bucket.Put(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CommitSegment(ctx, metastore.SegmentCommit{Object: key, Size: int64(len(obj)), Batches: []metastore.BatchCommit{{
		TopicID: f.topic.ID, ByteOffset: pls[0].ByteOffset, ByteLength: pls[0].ByteLength, OffsetCount: 4, ProducerID: -1,
	}}}); err != nil {
		t.Fatal(err)
	}

	r, err := f.reader.Read(ctx, f.topic.ID, 0, 5, 1<<20, true, fetch.ReadUncommitted)
	if err != nil {
		t.Fatalf("read offset 5, committed but past the cached high watermark 3: %v", err)
	}
	if got := baseOffsets(t, r.Records); len(got) != 1 || got[0] != 3 || r.HighWatermark != 7 {
		t.Fatalf("read offset 5: batches %v, hwm %d; want [3], 7", got, r.HighWatermark)
	}
	// Really out of range, as the store confirms.
	if _, err := f.reader.Read(ctx, f.topic.ID, 0, 9, 1<<20, true, fetch.ReadUncommitted); err != fetch.ErrOffsetOutOfRange {
		t.Fatalf("read offset 9 of 7: %v, want ErrOffsetOutOfRange", err)
	}
}
