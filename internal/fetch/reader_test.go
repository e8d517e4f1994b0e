package fetch_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

type fixture struct {
	store  *embedded.Store
	reader *fetch.Reader
	bucket *localdir.Bucket
	topic  metastore.Topic
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := embedded.Open(filepath.Join(dir, "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b, err := localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := store.CreateTopic(context.Background(), metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := fetch.NewReader(store, nil, cache.New(b, cache.Options{BlockSize: 512}, nil))
	return &fixture{store: store, reader: r, bucket: b, topic: topic}
}

// write stores one segment holding one batch per element of records
// (records[i] records each, timestamps from ts), as the write path does,
// and invalidates the reader's cache as a commit notice would.
func (f *fixture) write(t *testing.T, ts int64, records ...int) {
	t.Helper()
	sb := segment.NewBuilder()
	for i, n := range records {
		var recs []recordbatch.Record
		for j := range n {
			recs = append(recs, recordbatch.Record{Value: []byte{byte(i), byte(j)}, Timestamp: ts + int64(j)})
		}
		sb.Add(f.topic.ID, "t", 0, recordbatch.Build(recordbatch.BuildOptions{FirstTimestamp: ts}, recs...))
	}
	obj, placements := sb.Build()
	key := segment.NewKey()
	if err := f.bucket.Put(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
	c := metastore.SegmentCommit{Object: key, Size: int64(len(obj))}
	for i, pl := range placements {
		h, _ := recordbatch.ParseHeader(obj[pl.ByteOffset : pl.ByteOffset+pl.ByteLength])
		c.Batches = append(c.Batches, metastore.BatchCommit{
			TopicID: pl.TopicID, Partition: pl.Partition, ByteOffset: pl.ByteOffset, ByteLength: pl.ByteLength,
			OffsetCount: int64(records[i]), MaxTimestamp: h.MaxTimestamp, ProducerID: -1,
		})
	}
	if _, err := f.store.CommitSegment(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	f.reader.Invalidate(f.topic.ID, 0)
}

func baseOffsets(t *testing.T, data []byte) []int64 {
	t.Helper()
	batches, err := recordbatch.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, b := range batches {
		h, err := recordbatch.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.BaseOffset)
	}
	return out
}

func TestReadAcrossManyExtents(t *testing.T) {
	f := newFixture(t)
	// More segments than one metadata lookup returns.
	for i := range 150 {
		f.write(t, int64(i*10), 2)
	}
	res, err := f.reader.Read(context.Background(), f.topic.ID, 0, 37, 1<<20, true, fetch.ReadUncommitted)
	if err != nil {
		t.Fatal(err)
	}
	got := baseOffsets(t, res.Records)
	if len(got) != 132 || got[0] != 36 || got[len(got)-1] != 298 {
		t.Fatalf("read from 37: %d batches from %d to %d, want 132 from 36 to 298", len(got), got[0], got[len(got)-1])
	}
	if res.HighWatermark != 300 {
		t.Fatalf("hwm %d", res.HighWatermark)
	}
}

func TestReadLimits(t *testing.T) {
	f := newFixture(t)
	f.write(t, 0, 5, 5, 5)
	ctx := context.Background()
	one, _ := f.reader.Read(ctx, f.topic.ID, 0, 0, 1, true, fetch.ReadUncommitted)
	if got := baseOffsets(t, one.Records); len(got) != 1 {
		t.Fatalf("maxBytes 1 with atLeastOne: %v batches, want 1", got)
	}
	none, _ := f.reader.Read(ctx, f.topic.ID, 0, 0, 1, false, fetch.ReadUncommitted)
	if len(none.Records) != 0 {
		t.Fatalf("maxBytes 1 without atLeastOne: %d bytes, want none", len(none.Records))
	}
	if _, err := f.reader.Read(ctx, f.topic.ID, 0, 16, 1<<20, true, fetch.ReadUncommitted); err != fetch.ErrOffsetOutOfRange {
		t.Fatalf("beyond hwm: %v", err)
	}
	at, err := f.reader.Read(ctx, f.topic.ID, 0, 15, 1<<20, true, fetch.ReadUncommitted)
	if err != nil || len(at.Records) != 0 || at.HighWatermark != 15 {
		t.Fatalf("at hwm: %v %d bytes hwm %d", err, len(at.Records), at.HighWatermark)
	}
}

// A commit after the cache was filled must be visible once invalidated,
// and the cache must not serve a stale tail past it.
func TestCachedTailFollowsCommits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.write(t, 0, 3)
	if r, _ := f.reader.Read(ctx, f.topic.ID, 0, 3, 1<<20, true, fetch.ReadUncommitted); r.HighWatermark != 3 {
		t.Fatalf("hwm %d", r.HighWatermark)
	}
	f.write(t, 0, 4) // invalidates
	r, err := f.reader.Read(ctx, f.topic.ID, 0, 3, 1<<20, true, fetch.ReadUncommitted)
	if err != nil || r.HighWatermark != 7 {
		t.Fatalf("after second commit: hwm %d err %v", r.HighWatermark, err)
	}
	if got := baseOffsets(t, r.Records); len(got) != 1 || got[0] != 3 {
		t.Fatalf("batches %v, want [3]", got)
	}
	// InvalidateAll works for notices that name no partition.
	sb := segment.NewBuilder()
	sb.Add(f.topic.ID, "t", 0, recordbatch.Build(recordbatch.BuildOptions{}, recordbatch.Record{Value: []byte("x")}))
	obj, pls := sb.Build()
	f.bucket.Put(ctx, "segments/manual", obj)
	f.store.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/manual", Size: int64(len(obj)), Batches: []metastore.BatchCommit{{
		TopicID: f.topic.ID, ByteOffset: pls[0].ByteOffset, ByteLength: pls[0].ByteLength, OffsetCount: 1, ProducerID: -1,
	}}})
	if r, _ := f.reader.Read(ctx, f.topic.ID, 0, 7, 1<<20, true, fetch.ReadUncommitted); r.HighWatermark != 7 {
		t.Fatalf("without invalidation the cached tail should still say 7, got %d", r.HighWatermark)
	}
	f.reader.InvalidateAll()
	if r, _ := f.reader.Read(ctx, f.topic.ID, 0, 7, 1<<20, true, fetch.ReadUncommitted); r.HighWatermark != 8 || len(r.Records) == 0 {
		t.Fatalf("after InvalidateAll: hwm %d, %d bytes", r.HighWatermark, len(r.Records))
	}
}

func TestTimestampLookups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.write(t, 1000, 3)    // 1000..1002, offsets 0..2
	f.write(t, 5000, 2)    // 5000..5001, offsets 3..4
	f.write(t, 2000, 3, 1) // 2000..2002 (5..7), 2000 (8)
	for ts, want := range map[int64]int64{0: 0, 1001: 1, 1003: 3, 5001: 4, 5002: -1} {
		off, _, found, err := f.reader.OffsetForTimestamp(ctx, f.topic.ID, 0, ts)
		if err != nil || off != want || found != (want >= 0) {
			t.Errorf("timestamp %d: offset %d found %v err %v, want %d", ts, off, found, err, want)
		}
	}
	off, ts, found, err := f.reader.OffsetOfMaxTimestamp(ctx, f.topic.ID, 0)
	if err != nil || !found || off != 4 || ts != 5001 {
		t.Fatalf("max timestamp: offset %d ts %d found %v err %v, want 4 at 5001", off, ts, found, err)
	}
}
