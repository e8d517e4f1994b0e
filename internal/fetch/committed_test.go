package fetch_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// txnStore fakes the transaction store's parts the reader uses, over a
// real store's extents: the last stable offset (the first offset of the
// transaction still open, set by the test) and the aborted index, whose
// reads it counts. The backends on the transaction store's branch do
// both for real.
type txnStore struct {
	*embedded.Store

	mu      sync.Mutex
	openAt  int64 // first offset of the open transaction; -1: none
	aborted []metastore.AbortedTxn
	calls   [][2]int64 // [from, to) of each AbortedTxns
}

func (s *txnStore) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	offs, err := s.Store.Offsets(ctx, id, partition)
	s.mu.Lock()
	defer s.mu.Unlock()
	offs.LastStableOffset = offs.HighWatermark
	if s.openAt >= 0 {
		offs.LastStableOffset = min(s.openAt, offs.HighWatermark)
	}
	return offs, err
}

// AbortedTxns follows the TxnStore contract.
func (s *txnStore) AbortedTxns(_ context.Context, _ metastore.TopicID, _ int32, from, to int64) ([]metastore.AbortedTxn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, [2]int64{from, to})
	var out []metastore.AbortedTxn
	for _, a := range s.aborted {
		if a.LastOffset >= from && a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *txnStore) set(openAt int64, aborted ...metastore.AbortedTxn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.openAt, s.aborted = openAt, aborted
}

func (s *txnStore) indexReads() [][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// txnFixture is a fixture whose reader reads through txnStore.
type txnFixture struct {
	*fixture
	txns   *txnStore
	reader *fetch.Reader
}

func newTxnFixture(t *testing.T) *txnFixture {
	f := newFixture(t)
	txns := &txnStore{Store: f.store, openAt: -1}
	return &txnFixture{fixture: f, txns: txns, reader: fetch.NewReader(txns, txns, cache.New(f.bucket, cache.Options{BlockSize: 512}, nil))}
}

// plain, txn and marker build batches of n records: without a producer,
// in producer pid's transaction, and pid's COMMIT (commit) or ABORT
// control batch.
func plain(n int) []byte { return records(recordbatch.BuildOptions{}, n) }

func txn(pid int64, n int) []byte {
	return records(recordbatch.BuildOptions{ProducerID: pid, Transactional: true}, n)
}

func marker(pid int64, commit bool) []byte {
	typ := byte(0)
	if commit {
		typ = 1
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, Transactional: true, Control: true},
		recordbatch.Record{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}, Timestamp: 1})
}

func records(opts recordbatch.BuildOptions, n int) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Value: []byte{byte(i)}, Timestamp: int64(1 + i)}
	}
	return recordbatch.Build(opts, recs...)
}

// commit stores batches as one segment (one extent) and invalidates the
// reader, as the commit's notice would.
func (f *txnFixture) commit(t *testing.T, batches ...[]byte) {
	t.Helper()
	sb := segment.NewBuilder()
	for _, b := range batches {
		sb.Add(f.topic.ID, "t", 0, b)
	}
	obj, placements := sb.Build()
	key := segment.NewKey()
	if err := f.bucket.Put(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
	c := metastore.SegmentCommit{Object: key, Size: int64(len(obj))}
	for i, pl := range placements {
		h, _ := recordbatch.ParseHeader(batches[i])
		c.Batches = append(c.Batches, metastore.BatchCommit{
			TopicID: pl.TopicID, Partition: pl.Partition, ByteOffset: pl.ByteOffset, ByteLength: pl.ByteLength,
			OffsetCount: int64(h.LastOffsetDelta) + 1, MaxTimestamp: h.MaxTimestamp,
			// Neither producer nor transaction checks: the fake stands for
			// the transaction store, and the reader goes by the bytes' own
			// transactional bit.
			ProducerID: -1,
		})
	}
	res, err := f.store.CommitSegment(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	f.reader.Invalidate(f.topic.ID, 0)
}

func (f *txnFixture) read(t *testing.T, offset int64, maxBytes int, iso fetch.Isolation) fetch.Partition {
	t.Helper()
	res, err := f.reader.Read(context.Background(), f.topic.ID, 0, offset, maxBytes, true, iso)
	if err != nil {
		t.Fatalf("read %d (isolation %d): %v", offset, iso, err)
	}
	return res
}

// An extent straddling the last stable offset is cut at the batch
// boundary there; read_uncommitted still reads up to the high watermark.
func TestReadCommittedStopsAtTheLastStableOffset(t *testing.T) {
	f := newTxnFixture(t)
	// 0-2 plain, 3-4 and 5-6 producer 7's open transaction, 7-8 plain:
	// one extent.
	f.commit(t, plain(3), txn(7, 2), txn(7, 2), plain(2))
	f.txns.set(3)

	for _, tc := range []struct {
		name   string
		offset int64
		iso    fetch.Isolation
		want   []int64 // batch base offsets
	}{
		{"committed from 0", 0, fetch.ReadCommitted, []int64{0}},
		{"committed inside the last stable batch", 2, fetch.ReadCommitted, []int64{0}},
		{"committed at the last stable offset", 3, fetch.ReadCommitted, nil},
		{"committed between it and the high watermark", 6, fetch.ReadCommitted, nil},
		{"committed at the high watermark", 9, fetch.ReadCommitted, nil},
		{"uncommitted from 0", 0, fetch.ReadUncommitted, []int64{0, 3, 5, 7}},
		{"uncommitted from 4", 4, fetch.ReadUncommitted, []int64{3, 5, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.read(t, tc.offset, 1<<20, tc.iso)
			if got := bases(t, res.Records); !slices.Equal(got, tc.want) {
				t.Errorf("batches %v, want %v", got, tc.want)
			}
			if res.HighWatermark != 9 || res.LastStableOffset != 3 || res.LogStartOffset != 0 {
				t.Errorf("offsets %+v, want log start 0, high watermark 9, last stable 3", res.PartitionOffsets)
			}
			// Kafka: an empty list for read_committed, null for
			// read_uncommitted.
			if (res.Aborted == nil) != (tc.iso == fetch.ReadUncommitted) || len(res.Aborted) != 0 {
				t.Errorf("aborted %#v", res.Aborted)
			}
		})
	}
	// Out of range stays on the high watermark.
	if _, err := f.reader.Read(context.Background(), f.topic.ID, 0, 10, 1<<20, true, fetch.ReadCommitted); err != fetch.ErrOffsetOutOfRange {
		t.Errorf("committed past the high watermark: %v, want ErrOffsetOutOfRange", err)
	}
	if got := f.txns.indexReads(); len(got) != 0 {
		t.Errorf("aborted index read %v with no transactional batch returned", got)
	}

	// The transaction commits: its marker lands at 9 and the notice
	// (Invalidate) moves the cached last stable offset.
	f.txns.set(-1)
	f.commit(t, marker(7, true))
	res := f.read(t, 0, 1<<20, fetch.ReadCommitted)
	if got := baseOffsets(t, res.Records); !slices.Equal(got, []int64{0, 3, 5, 7, 9}) || res.LastStableOffset != 10 {
		t.Errorf("after the commit: batches %v, last stable offset %d; want [0 3 5 7 9] (the marker too), 10", got, res.LastStableOffset)
	}
	if got := f.txns.indexReads(); !slices.Equal(got, [][2]int64{{0, 10}}) {
		t.Errorf("aborted index reads %v, want one for [0, 10)", got)
	}
}

// The aborted transactions returned are those overlapping [fetch offset,
// end of the returned batches): LastOffset >= fetch offset and
// FirstOffset < end.
func TestReadCommittedAbortedTransactionsAtBoundaries(t *testing.T) {
	f := newTxnFixture(t)
	batches := [][]byte{
		plain(2),         // 0-1
		txn(7, 2),        // 2-3, aborted
		marker(7, false), // 4
		plain(2),         // 5-6
		txn(8, 2),        // 7-8, aborted
		marker(8, false), // 9
		txn(7, 2),        // 10-11, committed
		marker(7, true),  // 12
		plain(1),         // 13
	}
	f.commit(t, batches...)
	a := metastore.AbortedTxn{ProducerID: 7, FirstOffset: 2, LastOffset: 4}
	b := metastore.AbortedTxn{ProducerID: 8, FirstOffset: 7, LastOffset: 9}
	f.txns.set(-1, a, b)
	// upTo is maxBytes that returns the batches of offset's up to (and
	// without) the one at base offset end.
	bases := []int64{0, 2, 4, 5, 7, 9, 10, 12, 13, 14}
	upTo := func(offset, end int64) int {
		n := 0
		for i, b := range batches {
			if bases[i+1] > offset && bases[i] < end {
				n += len(b)
			}
		}
		return n
	}
	for _, tc := range []struct {
		name        string
		offset, end int64 // what is returned: [batch of offset, end)
		want        []metastore.AbortedTxn
		readsIndex  bool // a transactional batch is returned
	}{
		{"everything", 0, 14, []metastore.AbortedTxn{a, b}, true},
		{"only the first plain batch", 0, 2, []metastore.AbortedTxn{}, false},
		{"up to the first aborted batch", 0, 4, []metastore.AbortedTxn{a}, true},
		{"from inside the first aborted batch", 3, 5, []metastore.AbortedTxn{a}, true},
		{"from the first abort marker", 4, 5, []metastore.AbortedTxn{a}, true},
		{"from just past the first abort marker", 5, 14, []metastore.AbortedTxn{b}, true},
		{"a plain batch between two aborted ones", 5, 7, []metastore.AbortedTxn{}, false},
		{"up to the second aborted batch", 5, 9, []metastore.AbortedTxn{b}, true},
		{"from the second marker", 9, 10, []metastore.AbortedTxn{b}, true},
		{"past every aborted transaction", 10, 14, []metastore.AbortedTxn{}, true},
		{"the last plain batch", 13, 14, []metastore.AbortedTxn{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.reader.Invalidate(f.topic.ID, 0) // no entries cached by an earlier case
			before := len(f.txns.indexReads())
			res := f.read(t, tc.offset, upTo(tc.offset, tc.end), fetch.ReadCommitted)
			got := baseOffsets(t, res.Records)
			if len(got) == 0 || got[0] > tc.offset || recordEnd(t, res.Records) != tc.end {
				t.Fatalf("batches %v, want [batch of %d, %d)", got, tc.offset, tc.end)
			}
			if !slices.Equal(res.Aborted, tc.want) || res.Aborted == nil {
				t.Errorf("aborted %v, want %v", res.Aborted, tc.want)
			}
			reads := f.txns.indexReads()[before:]
			switch {
			case !tc.readsIndex && len(reads) != 0:
				t.Errorf("aborted index read %v without a transactional batch returned", reads)
			case tc.readsIndex && !slices.Equal(reads, [][2]int64{{tc.offset, tc.end}}):
				t.Errorf("aborted index reads %v, want one for [%d, %d)", reads, tc.offset, tc.end)
			}
		})
	}
}

// bases is baseOffsets, nil for no data.
func bases(t *testing.T, data []byte) []int64 {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	return baseOffsets(t, data)
}

// recordEnd is the offset after the last batch of data.
func recordEnd(t *testing.T, data []byte) int64 {
	t.Helper()
	batches, err := recordbatch.Split(data)
	if err != nil || len(batches) == 0 {
		t.Fatalf("no batches: %v", err)
	}
	h, _ := recordbatch.ParseHeader(batches[len(batches)-1])
	return h.BaseOffset + int64(h.LastOffsetDelta) + 1
}

// The aborted entries are cached with the partition's tail: consumers of
// the live edge read them once per commit, not once per fetch, and a
// read the cached range does not cover asks the store.
func TestAbortedTransactionsAreCachedWithTheTail(t *testing.T) {
	f := newTxnFixture(t)
	a := metastore.AbortedTxn{ProducerID: 7, FirstOffset: 2, LastOffset: 4}
	// 0-1, 2-3 aborted, 4 its marker, 5-6, 7 committed, 8 its marker.
	f.commit(t, plain(2), txn(7, 2), marker(7, false), plain(2), txn(10, 1), marker(10, true))
	f.txns.set(-1, a)

	for range 3 {
		if res := f.read(t, 2, 1<<20, fetch.ReadCommitted); !slices.Equal(res.Aborted, []metastore.AbortedTxn{a}) {
			t.Fatalf("aborted %v, want [%v]", res.Aborted, a)
		}
	}
	// Later offsets inside the cached range: filtered from the cache.
	for offset, want := range map[int64][]metastore.AbortedTxn{4: {a}, 5: {}, 8: {}} {
		if res := f.read(t, offset, 1<<20, fetch.ReadCommitted); !slices.Equal(res.Aborted, want) || res.Aborted == nil {
			t.Fatalf("from %d: aborted %v, want %v", offset, res.Aborted, want)
		}
	}
	if got := f.txns.indexReads(); !slices.Equal(got, [][2]int64{{2, 9}}) {
		t.Fatalf("aborted index reads %v, want one for [2, 9)", got)
	}
	// An earlier offset is not covered.
	f.read(t, 0, 1<<20, fetch.ReadCommitted)
	if got := f.txns.indexReads(); len(got) != 2 || got[1] != [2]int64{0, 9} {
		t.Fatalf("aborted index reads %v, want a second one for [0, 9)", got)
	}
	// A commit drops them with the tail.
	f.commit(t, txn(9, 1), marker(9, false)) // 9, 10
	b := metastore.AbortedTxn{ProducerID: 9, FirstOffset: 9, LastOffset: 10}
	f.txns.set(-1, a, b)
	res := f.read(t, 2, 1<<20, fetch.ReadCommitted)
	if !slices.Equal(res.Aborted, []metastore.AbortedTxn{a, b}) {
		t.Fatalf("after a commit: aborted %v, want [%v %v]", res.Aborted, a, b)
	}
	if got := f.txns.indexReads(); len(got) != 3 || got[2] != [2]int64{2, 11} {
		t.Fatalf("aborted index reads %v, want a third one for [2, 11)", got)
	}
}

// The last stable offset reported is within [log start, high watermark],
// and a reader without an aborted index (a store without transactions)
// reports the high watermark whatever the store says.
func TestLastStableOffsetBounds(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	f.commit(t, plain(3), txn(7, 2), plain(2)) // 0-2, 3-4, 5-6
	f.txns.set(3)
	if _, err := f.store.AdvanceLogStart(ctx, f.topic.ID, 0, 5); err != nil {
		t.Fatal(err)
	}
	f.reader.Invalidate(f.topic.ID, 0)
	offs, err := f.reader.Offsets(ctx, f.topic.ID, 0)
	if err != nil || offs.LastStableOffset != 5 {
		t.Fatalf("open transaction at 3, log start 5: last stable offset %d (%v), want 5", offs.LastStableOffset, err)
	}
	if res := f.read(t, 5, 1<<20, fetch.ReadCommitted); len(res.Records) != 0 || res.LastStableOffset != 5 {
		t.Fatalf("read from 5: %d bytes, last stable offset %d; want none, 5", len(res.Records), res.LastStableOffset)
	}

	// The embedded store on this branch reports no last stable offset
	// (0): without an aborted index the reader takes the high watermark.
	plainReader := fetch.NewReader(f.store, nil, cache.New(f.bucket, cache.Options{BlockSize: 512}, nil))
	res, err := plainReader.Read(ctx, f.topic.ID, 0, 5, 1<<20, true, fetch.ReadCommitted)
	if err != nil || res.LastStableOffset != 7 || !slices.Equal(baseOffsets(t, res.Records), []int64{5}) {
		t.Fatalf("without an index: last stable offset %d, batches %v, %v; want 7, [5]", res.LastStableOffset, baseOffsets(t, res.Records), err)
	}
	if offs, _ := plainReader.Offsets(ctx, f.topic.ID, 0); offs.LastStableOffset != 7 {
		t.Fatalf("without an index: Offsets says last stable offset %d, want 7", offs.LastStableOffset)
	}
}
