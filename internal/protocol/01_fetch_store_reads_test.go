package protocol_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// readCounter counts the metadata store reads a fetch can make for
// offsets, extents and aborted transactions. Topic reads are not counted
// here (their cache is another change's).
type readCounter struct {
	metastore.Store
	reads atomic.Int64
}

func (s *readCounter) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	s.reads.Add(1)
	return s.Store.Offsets(ctx, id, partition)
}

func (s *readCounter) Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error) {
	s.reads.Add(1)
	return s.Store.Extents(ctx, id, partition, from, limit)
}

func (s *readCounter) ExtentAtTimestamp(ctx context.Context, id metastore.TopicID, partition int32, ts int64) (metastore.Extent, bool, error) {
	s.reads.Add(1)
	return s.Store.ExtentAtTimestamp(ctx, id, partition, ts)
}

func (s *readCounter) ExtentWithMaxTimestamp(ctx context.Context, id metastore.TopicID, partition int32) (metastore.Extent, bool, error) {
	s.reads.Add(1)
	return s.Store.ExtentWithMaxTimestamp(ctx, id, partition)
}

func (s *readCounter) AbortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error) {
	s.reads.Add(1)
	return s.Store.AbortedTxns(ctx, id, partition, from, to)
}

// fetchTwo fetches t/0 and t/1 from the given offsets, without waiting.
func fetchTwo(off0, off1 int64, maxBytes int32, iso int8) *kmsg.FetchRequest {
	req := fetchRequest("t", 0, off0)
	rp := req.Topics[0].Partitions[0]
	rp.Partition, rp.FetchOffset = 1, off1
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	req.MaxBytes, req.IsolationLevel = maxBytes, iso
	return req
}

// TestFetchStoreReadsAtSteadyState: once a partition's tail is cached,
// fetches read no offsets or extents from the metadata store until a
// commit touches it, however many there are: at the live edge, at either
// isolation level, and for a partition answered with offsets only because
// the response was already full. A commit costs one reload of the
// partitions it touched, shared by every fetch that follows.
func TestFetchStoreReadsAtSteadyState(t *testing.T) {
	counter := &readCounter{}
	a := agenttest.Start(t, agenttest.Options{WrapStore: func(s metastore.Store) metastore.Store {
		counter.Store = s
		return counter
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 2)
	f.produce("t", 0, 3, 1000)
	f.produce("t", 1, 3, 1000)

	const fetches = 20
	for _, tc := range []struct {
		name string
		req  *kmsg.FetchRequest
		// records is whether t/0 answers records (t/1 never does: at
		// the live edge, or after a full response).
		records bool
	}{
		{"live edge", fetchTwo(3, 3, 1<<20, 0), false},
		{"live edge read_committed", fetchTwo(3, 3, 1<<20, 1), false},
		{"response full after the first partition", fetchTwo(0, 0, 1, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warm := do[*kmsg.FetchResponse](f, 12, tc.req) // fills the caches
			expectCode(t, "warm-up", warm.Topics[0].Partitions[0].ErrorCode, 0)
			before := counter.reads.Load()
			for range fetches {
				resp := do[*kmsg.FetchResponse](f, 12, tc.req)
				for _, p := range resp.Topics[0].Partitions {
					expectCode(t, "fetch", p.ErrorCode, 0)
					if p.HighWatermark != 3 {
						t.Fatalf("partition %d: high watermark %d, want 3", p.Partition, p.HighWatermark)
					}
					if got := len(p.RecordBatches) > 0; got != (tc.records && p.Partition == 0) {
						t.Fatalf("partition %d: records %v", p.Partition, got)
					}
				}
			}
			if n := counter.reads.Load() - before; n != 0 {
				t.Errorf("%d store reads for %d fetches at steady state, want 0", n, fetches)
			}
		})
	}

	// One commit on t/0: the fetches that follow reload t/0 once
	// (offsets and extents), together; t/1 is not read again.
	f.produce("t", 0, 2, 2000)
	before := counter.reads.Load()
	for range fetches {
		resp := do[*kmsg.FetchResponse](f, 12, fetchTwo(3, 3, 1<<20, 0))
		if got := recordOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); len(got) != 2 {
			t.Fatalf("after the commit: t/0 offsets %v, want [3 4]", got)
		}
	}
	if n := counter.reads.Load() - before; n != 2 {
		t.Errorf("%d store reads for %d fetches after one commit, want 2 (t/0's offsets and extents, once)", n, fetches)
	}
}
