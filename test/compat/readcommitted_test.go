package compat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// fakeTxns fakes the transaction store's read side over the agent's
// metadata store until the backends keep transactions: one partition's
// last stable offset (the open transaction's first offset, set by the
// test), its aborted index, and the notice EndTxn's commit sends.
type fakeTxns struct {
	metastore.Store
	notices metastore.Watchers

	mu      sync.Mutex
	openAt  int64 // -1: no open transaction
	aborted []metastore.AbortedTxn
}

func (s *fakeTxns) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	offs, err := s.Store.Offsets(ctx, id, partition)
	s.mu.Lock()
	defer s.mu.Unlock()
	offs.LastStableOffset = offs.HighWatermark
	if s.openAt >= 0 {
		offs.LastStableOffset = min(s.openAt, offs.HighWatermark)
	}
	return offs, err
}

func (s *fakeTxns) AbortedTxns(_ context.Context, _ metastore.TopicID, _ int32, from, to int64) ([]metastore.AbortedTxn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metastore.AbortedTxn
	for _, a := range s.aborted {
		if a.LastOffset >= from && a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *fakeTxns) WatchCommits(fn func(metastore.CommitNotice)) (stop func()) {
	stopStore, stopFake := s.Store.WatchCommits(fn), s.notices.WatchCommits(fn)
	return func() { stopStore(); stopFake() }
}

// set changes the open transaction and the aborted index and announces
// the partition, as ending a transaction does.
func (s *fakeTxns) set(tp metastore.TopicPartition, openAt int64, aborted ...metastore.AbortedTxn) {
	s.mu.Lock()
	s.openAt, s.aborted = openAt, aborted
	s.mu.Unlock()
	s.notices.Notify(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}})
}

// TestReadCommittedClients: franz-go and librdkafka (kcat) consumers at
// read_committed drop an aborted transaction's records and stop at the
// last stable offset, given Floe's AbortedTransactions and
// LastStableOffset; at read_uncommitted they see everything but the
// control records.
func TestReadCommittedClients(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	txns := &fakeTxns{openAt: -1}
	a := agenttest.Start(t, agenttest.Options{WrapStore: func(s metastore.Store) metastore.Store {
		txns.Store = s
		return txns
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic, err := a.Store.CreateTopic(ctx, metastore.TopicSpec{Name: "rc", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{TopicID: topic.ID}
	commit := func(batches ...[]byte) {
		t.Helper()
		sb := segment.NewBuilder()
		for _, b := range batches {
			sb.Add(tp.TopicID, "rc", 0, b)
		}
		obj, placements := sb.Build()
		key := segment.NewKey()
		if err := a.Bucket.Put(ctx, key, obj); err != nil {
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
		res, err := a.Store.CommitSegment(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	values := func(pid int64, txn bool, vs ...string) []byte {
		recs := make([]recordbatch.Record, len(vs))
		for i, v := range vs {
			recs[i] = recordbatch.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()}
		}
		return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, Transactional: txn}, recs...)
	}
	marker := func(pid int64, commit bool) []byte {
		typ := byte(0)
		if commit {
			typ = 1
		}
		return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, Transactional: true, Control: true},
			recordbatch.Record{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}, Timestamp: time.Now().UnixMilli()})
	}

	// 0-2 plain, 3-4 producer 7's transaction and 5 its ABORT, 6-7 plain,
	// 8-9 producer 8's transaction, open: last stable offset 8.
	commit(values(-1, false, "p0", "p1", "p2"))
	txns.set(tp, 3)
	commit(values(7, true, "a3", "a4"), marker(7, false))
	txns.set(tp, -1, metastore.AbortedTxn{ProducerID: 7, FirstOffset: 3, LastOffset: 5})
	commit(values(-1, false, "p6", "p7"))
	txns.set(tp, 8, metastore.AbortedTxn{ProducerID: 7, FirstOffset: 3, LastOffset: 5})
	commit(values(8, true, "c8", "c9"))

	kcatRead := func(isolation string) string {
		t.Helper()
		return runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", "rc", "-e", "-q", "-o", "beginning",
			"-X", "isolation.level="+isolation, "-X", "fetch.wait.max.ms=100", "-f", `%o:%s\n`)
	}
	// kcat -e stops at the end of the partition, which librdkafka takes
	// at read_committed to be the last stable offset.
	if got, want := kcatRead("read_committed"), "0:p0\n1:p1\n2:p2\n6:p6\n7:p7\n"; got != want {
		t.Errorf("kcat read_committed, transaction open: got\n%swant\n%s", got, want)
	}
	if got, want := kcatRead("read_uncommitted"), "0:p0\n1:p1\n2:p2\n3:a3\n4:a4\n6:p6\n7:p7\n8:c8\n9:c9\n"; got != want {
		t.Errorf("kcat read_uncommitted: got\n%swant\n%s", got, want)
	}

	// franz-go at read_committed, started while the transaction is open,
	// gets its records once it commits.
	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"rc": {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	poll := func(n int) {
		t.Helper()
		for len(got) < n {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("franz-go consumed %v: %v", got, err)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("franz-go fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) { got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value)) })
		}
	}
	poll(5)
	if want := "0:p0 1:p1 2:p2 6:p6 7:p7"; strings.Join(got, " ") != want {
		t.Fatalf("franz-go read_committed, transaction open: got %v, want %s", got, want)
	}
	commit(marker(8, true))
	txns.set(tp, -1, metastore.AbortedTxn{ProducerID: 7, FirstOffset: 3, LastOffset: 5})
	poll(7)
	if want := "0:p0 1:p1 2:p2 6:p6 7:p7 8:c8 9:c9"; strings.Join(got, " ") != want {
		t.Errorf("franz-go read_committed: got %v, want %s", got, want)
	}
	if got, want := kcatRead("read_committed"), "0:p0\n1:p1\n2:p2\n6:p6\n7:p7\n8:c8\n9:c9\n"; got != want {
		t.Errorf("kcat read_committed, transaction committed: got\n%swant\n%s", got, want)
	}
}
