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
		// A poll's notice that saw the commit (high watermark 3, log
		// start 0): nothing is loaded yet, so nothing can be kept.
		{"polled", func(r *fetch.Reader, id metastore.TopicID) { r.InvalidateUnlessAt(id, 0, 3) }},
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

// countingStore counts the Offsets reads that reach the store.
type countingStore struct {
	metastore.ExtentReader
	offsets int
}

func (s *countingStore) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	s.offsets++
	return s.ExtentReader.Offsets(ctx, id, partition)
}

// A poll's notice (CommitNotice.Seen) keeps a tail that is already at
// what the poll saw, so a consumer at the live edge does not read the
// store again for a commit whose notice it already had; a tail behind
// what the poll saw (its commit's notice was lost) is dropped and read
// again.
func TestPolledNoticeKeepsAFreshTail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cs := &countingStore{ExtentReader: f.store}
	r := fetch.NewReader(cs, nil, cache.New(f.bucket, cache.Options{BlockSize: 512}, nil))
	read := func(what string, wantHWM int64, wantReads int) {
		t.Helper()
		p, err := r.Read(ctx, f.topic.ID, 0, 0, 1<<20, true, fetch.ReadUncommitted)
		if err != nil {
			t.Fatal(err)
		}
		if p.HighWatermark != wantHWM || cs.offsets != wantReads {
			t.Fatalf("%s: high watermark %d after %d store reads, want %d after %d", what, p.HighWatermark, cs.offsets, wantHWM, wantReads)
		}
	}

	f.write(t, 0, 3)
	read("first read", 3, 1)
	r.InvalidateUnlessAt(f.topic.ID, 0, 3)
	read("after a poll that saw what is cached", 3, 1)

	f.write(t, 10, 2) // its notice never reaches r
	read("before the poll", 3, 1)
	r.InvalidateUnlessAt(f.topic.ID, 0, 5)
	read("after a poll that saw the commit", 5, 2)

	r.Invalidate(f.topic.ID, 0)
	read("after a commit's notice", 5, 3)
}
