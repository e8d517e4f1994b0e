package jobs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestKeyCompactionTransactions: key compaction drops the records of an
// aborted transaction, which never hide an older committed value of their
// key, and leaves alone everything from the last stable offset on (an
// open transaction may still abort). Consumers at both isolation levels
// then read what Kafka's cleaner would leave.
func TestKeyCompactionTransactions(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	adm := admin(t, a.Addr())
	createTopic(t, adm, "txn-changelog", 1, map[string]*string{
		"cleanup.policy": ptr("compact"), "min.cleanable.dirty.ratio": ptr("0.01"), "min.compaction.lag.ms": ptr("0"),
	})
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.TransactionalID("changelog-writer"),
		kgo.DefaultProduceTopic("txn-changelog"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(end string, kvs ...string) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(kvs); i += 2 {
			if err := prod.ProduceSync(t.Context(), kgo.KeyStringRecord(kvs[i], kvs[i+1])).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if end == "open" {
			return
		}
		if err := prod.EndTransaction(t.Context(), end == "commit"); err != nil {
			t.Fatal(err)
		}
	}
	txn("commit", "k1", "a", "k2", "b")
	txn("commit", "k4", "old", "k4", "new") // a committed update compaction may thin
	txn("abort", "k1", "x", "k3", "y")      // must go, and must not hide k1=a
	txn("open", "k2", "z")                  // above the last stable offset

	tp, err := a.Store.Topic(t.Context(), "txn-changelog")
	if err != nil {
		t.Fatal(err)
	}
	before, err := a.Store.Extents(t.Context(), tp.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	offs := offsetsOf(t, a, "txn-changelog")
	if offs.LastStableOffset >= offs.HighWatermark {
		t.Fatalf("last stable offset %d, high watermark %d: the open transaction should hold it back", offs.LastStableOffset, offs.HighWatermark)
	}

	ctx, cancel := context.WithCancel(t.Context())
	sched := jobs.NewScheduler(a.Store, []jobs.Job{&jobs.KeyCompaction{Store: a.Store, Bucket: a.Bucket}},
		jobs.Options{Holder: "test", Interval: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	waitFor(t, 30*time.Second, "key compaction", func() bool {
		es, err := a.Store.Extents(t.Context(), tp.ID, 0, 0, 0)
		return err == nil && len(es) > 0 && es[0].Object != before[0].Object
	})
	cancel()
	<-done
	after, err := a.Store.Extents(t.Context(), tp.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range after {
		if e.BaseOffset >= offs.LastStableOffset && !slices.ContainsFunc(before, func(b2 metastore.Extent) bool { return b2.Object == e.Object }) {
			t.Errorf("extent at %d (past the last stable offset %d) was rewritten", e.BaseOffset, offs.LastStableOffset)
		}
	}

	read := func(level kgo.IsolationLevel) []string {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumeTopics("txn-changelog"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var got []string
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			pctx, pcancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			fs := cl.PollFetches(pctx)
			pcancel()
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+"="+string(r.Value)) })
		}
		return got
	}
	if got, want := read(kgo.ReadCommitted()), []string{"k1=a", "k2=b", "k4=new"}; !slices.Equal(got, want) {
		t.Errorf("read_committed after compaction: %v, want %v", got, want)
	}
	if got, want := read(kgo.ReadUncommitted()), []string{"k1=a", "k2=b", "k4=new", "k2=z"}; !slices.Equal(got, want) {
		t.Errorf("read_uncommitted after compaction: %v, want %v", got, want)
	}
}

// TestKeyCompactionRemovesMarkers: once delete.retention.ms has passed,
// key compaction removes a COMMIT marker whose transaction has no record
// left, and an ABORT marker (with its aborted-index entry) once an
// earlier pass dropped its records, as Kafka's cleaner does; the
// producer's later transactions still read back at both isolation levels.
func TestKeyCompactionRemovesMarkers(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	adm := admin(t, a.Addr())
	createTopic(t, adm, "txn-markers", 1, map[string]*string{
		"cleanup.policy": ptr("compact"), "min.cleanable.dirty.ratio": ptr("0.01"),
		"min.compaction.lag.ms": ptr("0"), "delete.retention.ms": ptr("0"),
	})
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.TransactionalID("markers-writer"),
		kgo.DefaultProduceTopic("txn-markers"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(commit bool, k, v string) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(t.Context(), kgo.KeyStringRecord(k, v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(t.Context(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "k1", "a")  // 0, COMMIT at 1: k1=a is superseded, the marker goes
	txn(true, "k1", "b")  // 2, COMMIT at 3 stays
	txn(false, "k2", "x") // 4, ABORT at 5: goes with its index entry
	txn(true, "k3", "c")  // 6, COMMIT at 7 stays
	tp, err := a.Store.Topic(t.Context(), "txn-markers")
	if err != nil {
		t.Fatal(err)
	}
	if offs := offsetsOf(t, a, "txn-markers"); offs.HighWatermark != 8 || offs.LastStableOffset != 8 {
		t.Fatalf("offsets %+v, want high watermark and last stable offset 8", offs)
	}

	// markers lists the offsets of the partition's control batches.
	markers := func() []int64 {
		es, err := a.Store.Extents(t.Context(), tp.ID, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range es {
			data, err := a.Bucket.GetRange(t.Context(), e.Object, e.ByteOffset, e.ByteLength)
			if err != nil {
				t.Fatal(err)
			}
			split, err := recordbatch.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			base := e.BaseOffset
			for _, b := range split {
				h, err := recordbatch.ParseHeader(b)
				if err != nil {
					t.Fatal(err)
				}
				if h.IsControl() {
					out = append(out, base)
				}
				base += int64(h.LastOffsetDelta) + 1
			}
		}
		return out
	}
	if got := markers(); !slices.Equal(got, []int64{1, 3, 5, 7}) {
		t.Fatalf("markers before compaction at %v, want [1 3 5 7]", got)
	}
	if got, err := a.Store.AbortedTxns(t.Context(), tp.ID, 0, 0, 100); err != nil || len(got) != 1 || got[0].LastOffset != 5 {
		t.Fatalf("aborted index before compaction: %+v, %v", got, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	sched := jobs.NewScheduler(a.Store, []jobs.Job{&jobs.KeyCompaction{Store: a.Store, Bucket: a.Bucket}},
		jobs.Options{Holder: "test", Interval: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	waitFor(t, 30*time.Second, "markers removed", func() bool {
		return slices.Equal(markers(), []int64{3, 7})
	})
	cancel()
	<-done
	if got, err := a.Store.AbortedTxns(t.Context(), tp.ID, 0, 0, 100); err != nil || len(got) != 0 {
		t.Fatalf("aborted index after its marker went: %+v, %v", got, err)
	}
	if offs := offsetsOf(t, a, "txn-markers"); offs.HighWatermark != 8 || offs.LastStableOffset != 8 {
		t.Fatalf("offsets after compaction %+v, want 8 and 8", offs)
	}

	// The producer's transaction after the removed ABORT marker is still
	// read: a reader told of the aborted transaction with no marker to
	// end it would skip it.
	txn(true, "k4", "d") // 8, COMMIT at 9
	for _, level := range []kgo.IsolationLevel{kgo.ReadCommitted(), kgo.ReadUncommitted()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumeTopics("txn-markers"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < 3 && time.Now().Before(deadline) {
			pctx, pcancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			fs := cl.PollFetches(pctx)
			pcancel()
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+"="+string(r.Value)) })
		}
		cl.Close()
		if want := []string{"k1=b", "k3=c", "k4=d"}; !slices.Equal(got, want) {
			t.Errorf("%v after marker removal: %v, want %v", level, got, want)
		}
	}
}
