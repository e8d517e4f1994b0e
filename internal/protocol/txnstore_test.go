package protocol_test

// A fake of the transaction store's read side for the read_committed
// tests, until the backends keep transactions: the agent's metadata store
// wrapped so that each partition reports the last stable offset the test
// sets and the aborted index entries it lists, and so that the test can
// announce the end of a transaction as EndTxn does. Transactional and
// control batches are committed straight through the store, since
// Produce does not take them yet.

import (
	"context"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

type txnStore struct {
	metastore.Store
	notices metastore.Watchers

	mu      sync.Mutex
	openAt  map[metastore.TopicPartition]int64 // first offset of the open transaction
	aborted map[metastore.TopicPartition][]metastore.AbortedTxn
}

func (s *txnStore) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	offs, err := s.Store.Offsets(ctx, id, partition)
	s.mu.Lock()
	defer s.mu.Unlock()
	offs.LastStableOffset = offs.HighWatermark
	if first, ok := s.openAt[metastore.TopicPartition{TopicID: id, Partition: partition}]; ok {
		offs.LastStableOffset = min(first, offs.HighWatermark)
	}
	return offs, err
}

func (s *txnStore) AbortedTxns(_ context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metastore.AbortedTxn
	for _, a := range s.aborted[metastore.TopicPartition{TopicID: id, Partition: partition}] {
		if a.LastOffset >= from && a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out, nil
}

// WatchCommits delivers the store's notices and the fake's.
func (s *txnStore) WatchCommits(fn func(metastore.CommitNotice)) (stop func()) {
	stopStore, stopFake := s.Store.WatchCommits(fn), s.notices.WatchCommits(fn)
	return func() { stopStore(); stopFake() }
}

// open records a transaction open on tp from first on.
func (s *txnStore) open(tp metastore.TopicPartition, first int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.openAt[tp] = first
}

// end closes tp's open transaction, indexing aborted, and announces tp
// as EndTxn's commit does.
func (s *txnStore) end(tp metastore.TopicPartition, aborted ...metastore.AbortedTxn) {
	s.mu.Lock()
	delete(s.openAt, tp)
	s.aborted[tp] = append(s.aborted[tp], aborted...)
	s.mu.Unlock()
	s.notices.Notify(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}})
}

// txnFixture is an agent on a txnStore, and a connection to it.
type txnFixture struct {
	*fixture
	txns *txnStore
}

func startTxns(t *testing.T) *txnFixture {
	t.Helper()
	txns := &txnStore{openAt: map[metastore.TopicPartition]int64{}, aborted: map[metastore.TopicPartition][]metastore.AbortedTxn{}}
	a := agenttest.Start(t, agenttest.Options{
		Config: func(cfg *agent.Config) { cfg.Groups.Groups.InitialRebalanceDelay = -1 },
		WrapStore: func(s metastore.Store) metastore.Store {
			txns.Store = s
			return txns
		},
	})
	return &txnFixture{fixture: &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}, txns: txns}
}

// partition names a partition of a topic.
func (f *txnFixture) partition(topic string, partition int32) metastore.TopicPartition {
	f.t.Helper()
	tp, err := f.a.Store.Topic(context.Background(), topic)
	if err != nil {
		f.t.Fatal(err)
	}
	return metastore.TopicPartition{TopicID: tp.ID, Partition: partition}
}

// commit stores batches in a partition as one segment, as the write path
// does for batches Produce does not take yet (transactional, control);
// the store announces the commit.
func (f *txnFixture) commit(tp metastore.TopicPartition, batches ...[]byte) {
	f.t.Helper()
	ctx := context.Background()
	sb := segment.NewBuilder()
	for _, b := range batches {
		sb.Add(tp.TopicID, "", tp.Partition, b)
	}
	obj, placements := sb.Build()
	key := segment.NewKey()
	if err := f.a.Bucket.Put(ctx, key, obj); err != nil {
		f.t.Fatal(err)
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
	res, err := f.a.Store.CommitSegment(ctx, c)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			f.t.Fatal(r.Err)
		}
	}
}

// txnBatch is n records of producer pid's transaction, timestamps ts, ts+1, ….
func txnBatch(pid int64, n int, ts int64) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Value: []byte{byte('a' + i%26)}, Timestamp: ts + int64(i)}
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, Transactional: true, FirstTimestamp: ts}, recs...)
}

// markerBatch is producer pid's COMMIT or ABORT control batch.
func markerBatch(pid int64, commit bool, ts int64) []byte {
	typ := byte(0)
	if commit {
		typ = 1
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, Transactional: true, Control: true, FirstTimestamp: ts},
		recordbatch.Record{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}, Timestamp: ts})
}
