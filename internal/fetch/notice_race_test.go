package fetch_test

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
)

// hookStore calls afterOffsets once, after the store answered Offsets
// and before the reader uses the answer: the moment a commit and its
// notice can land between the reader's store read and its cache put.
type hookStore struct {
	metastore.ExtentReader
	afterOffsets func()
}

func (s *hookStore) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	offs, err := s.ExtentReader.Offsets(ctx, id, partition)
	if hook := s.afterOffsets; hook != nil {
		s.afterOffsets = nil
		hook()
	}
	return offs, err
}

// The race of issue 14, made deterministic: on a partition's first read
// (nothing cached yet), a commit and its notice land after the reader
// read the offsets and before it cached them. The reader answers what it
// read, but must not keep it: the next read has to see the commit. Before
// commit 86fee43 the cache did not record the partition on its first
// miss, so the notice found nothing to invalidate, the stale tail (high
// watermark 0) was cached at version 0, and a consumer of the quiet
// partition waited for a commit that had already happened.
func TestNoticeBetweenFirstOffsetsAndPutIsNotLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		notice func(r *fetch.Reader, id metastore.TopicID)
	}{
		{"partition", func(r *fetch.Reader, id metastore.TopicID) { r.Invalidate(id, 0) }},
		{"everything", func(r *fetch.Reader, _ metastore.TopicID) { r.InvalidateAll() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			hs := &hookStore{ExtentReader: f.store}
			r := fetch.NewReader(hs, nil, cache.New(f.bucket, cache.Options{BlockSize: 512}, nil))
			// f.write announces its commit to f.reader, the fixture's own
			// reader; r gets the notice from the hook, right after.
			hs.afterOffsets = func() {
				f.write(t, 0, 3)
				tc.notice(r, f.topic.ID)
			}

			first, err := r.Read(ctx, f.topic.ID, 0, 0, 1<<20, true, fetch.ReadUncommitted)
			if err != nil {
				t.Fatal(err)
			}
			if first.HighWatermark != 0 || len(first.Records) != 0 {
				t.Fatalf("first read: hwm %d, %d bytes; the hook should have run after its offsets were read", first.HighWatermark, len(first.Records))
			}

			again, err := r.Read(ctx, f.topic.ID, 0, 0, 1<<20, true, fetch.ReadUncommitted)
			if err != nil {
				t.Fatal(err)
			}
			if again.HighWatermark != 3 || len(again.Records) == 0 {
				t.Fatalf("read after the notice: hwm %d, %d bytes; want hwm 3 and the batch at 0 (the notice was lost)", again.HighWatermark, len(again.Records))
			}
			if got := baseOffsets(t, again.Records); len(got) != 1 || got[0] != 0 {
				t.Fatalf("read after the notice: batches %v, want [0]", got)
			}
		})
	}
}
