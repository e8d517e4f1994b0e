package txncoord_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/txncoord"
)

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %s, want %s", what, name(got), name(want))
	}
}

func name(code int16) string {
	if code == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func initProducer(t *testing.T, c *txncoord.Coordinator, id string) (int64, int16) {
	t.Helper()
	r := c.InitProducerID(t.Context(), txn.InitProducerIDRequest{Version: 4, TransactionalID: id, TimeoutMs: 10_000, ProducerID: -1, ProducerEpoch: -1})
	wantCode(t, "InitProducerId", r.Err, 0)
	return r.ProducerID, r.ProducerEpoch
}

func addPartitions(c *txncoord.Coordinator, ctx context.Context, id string, pid int64, epoch int16, ps ...metastore.TopicPartition) int16 {
	return c.AddPartitions(ctx, txn.AddPartitionsRequest{Version: 3, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Partitions: ps}).Err
}

func endTxn(c *txncoord.Coordinator, ctx context.Context, id string, pid int64, epoch int16, commit bool) txn.EndTxnResponse {
	return c.EndTxn(ctx, txn.EndTxnRequest{Version: 3, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
}

// TestCommit runs a transaction end to end on the embedded store: the
// markers object is a segment holding one COMMIT control batch per
// partition, its batches become the partitions' next offsets, the last
// stable offset moves past them and the transaction's offsets are
// published to the group.
func TestCommit(t *testing.T) {
	s, b := openStore(t), newBucket()
	reg := prometheus.NewRegistry()
	c := newCoordinator(t, s, b, nil, txncoord.Options{Registerer: reg, TopicName: func(metastore.TopicID) string { return "out" }})
	ctx := t.Context()
	out, in := createTopic(t, s, "out", 2), createTopic(t, s, "in", 1)
	p0, p1 := tp(out, 0), tp(out, 1)

	pid, epoch := initProducer(t, c, "tx")
	wantCode(t, "AddPartitions", addPartitions(c, ctx, "tx", pid, epoch, p0, p1), 0)
	if r := produce(t, s, p0, pid, epoch, 0, 3); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("transactional batch: %+v", r)
	}
	if o := offsets(t, s, p0); o.LastStableOffset != 0 || o.HighWatermark != 3 {
		t.Fatalf("offsets during the transaction: %+v", o)
	}
	wantCode(t, "AddOffsets", c.AddOffsets(ctx, txn.AddOffsetsRequest{Version: 3, TransactionalID: "tx", ProducerID: pid, ProducerEpoch: epoch, Group: "g"}), 0)
	wantCode(t, "TxnOffsetCommit", c.CommitOffsets(ctx, txn.OffsetCommitRequest{Version: 3, TransactionalID: "tx", Group: "g", ProducerID: pid, ProducerEpoch: epoch,
		Offsets: []metastore.CommittedOffset{{TopicID: in.ID, Partition: 0, Offset: 5, LeaderEpoch: -1}}}), 0)
	if got, _ := s.FetchOffsets(ctx, "g"); len(got) != 0 {
		t.Fatalf("offsets visible before the commit: %+v", got)
	}

	wantCode(t, "EndTxn", endTxn(c, ctx, "tx", pid, epoch, true).Err, 0)
	keys := b.keys()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], segment.KeyPrefix) {
		t.Fatalf("objects %v, want one segment", keys)
	}
	seg, err := segment.Decode(b.get(keys[0]))
	if err != nil {
		t.Fatalf("markers object: %v", err)
	}
	if len(seg.Partitions) != 2 {
		t.Fatalf("markers object has %d partitions", len(seg.Partitions))
	}
	for _, part := range seg.Partitions {
		if len(part.Batches) != 1 || part.Topic != "out" {
			t.Fatalf("partition %+v", part.IndexEntry)
		}
		h := part.Batches[0].Header
		recs, err := recordbatch.Records(part.Batches[0].Data)
		if err != nil || len(recs) != 1 {
			t.Fatal(recs, err)
		}
		typ, _ := recordbatch.ParseControlKey(recs[0].Key)
		if !h.IsControl() || !h.IsTransactional() || h.ProducerID != pid || h.ProducerEpoch != epoch || typ != recordbatch.ControlCommit {
			t.Fatalf("marker %+v type %d", h, typ)
		}
	}
	o0, o1 := offsets(t, s, p0), offsets(t, s, p1)
	if o0.HighWatermark != 4 || o0.LastStableOffset != 4 || o1.HighWatermark != 1 || o1.LastStableOffset != 1 {
		t.Fatalf("offsets after the commit: %+v %+v", o0, o1)
	}
	ext, err := s.Extents(ctx, p0.TopicID, p0.Partition, 3, 0)
	if err != nil || len(ext) != 1 || ext[0].Object != keys[0] || ext[0].BaseOffset != 3 {
		t.Fatalf("marker extent %+v, %v", ext, err)
	}
	if got, _ := s.FetchOffsets(ctx, "g"); len(got) != 1 || got[0].Offset != 5 {
		t.Fatalf("offsets after the commit: %+v", got)
	}

	// A retried EndTxn is answered as success and writes nothing.
	wantCode(t, "retried EndTxn", endTxn(c, ctx, "tx", pid, epoch, true).Err, 0)
	wantCode(t, "EndTxn abort after commit", endTxn(c, ctx, "tx", pid, epoch, false).Err, kerr.InvalidTxnState.Code)
	if n := len(b.keys()); n != 1 {
		t.Fatalf("%d objects after the retries", n)
	}
	if n := metric(t, reg, "floe_txn_ended_total", "reason", "commit"); n != 1 {
		t.Fatalf("%v commits counted", n)
	}
}

// metric is the value of the series of a registered metric that has the
// given label (any series if label is "").
func metric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			match := label == ""
			for _, l := range m.Label {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			switch {
			case !match:
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// TestNewInstanceFences: InitProducerId of a new instance aborts the
// ongoing transaction (indexed as aborted, markers with the bumped epoch)
// and fences the old instance everywhere, the store included.
func TestNewInstanceFences(t *testing.T) {
	s, b := openStore(t), newBucket()
	c := newCoordinator(t, s, b, nil, txncoord.Options{})
	ctx := t.Context()
	out := createTopic(t, s, "out", 1)
	p0 := tp(out, 0)

	pid, epoch := initProducer(t, c, "tx")
	wantCode(t, "AddPartitions", addPartitions(c, ctx, "tx", pid, epoch, p0), 0)
	produce(t, s, p0, pid, epoch, 0, 2)

	pid2, epoch2 := initProducer(t, c, "tx")
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("new instance got %d/%d", pid2, epoch2)
	}
	aborted, err := s.AbortedTxns(ctx, p0.TopicID, 0, 0, 10)
	if err != nil || len(aborted) != 1 || aborted[0] != (metastore.AbortedTxn{ProducerID: pid, FirstOffset: 0, LastOffset: 2}) {
		t.Fatalf("aborted index %+v, %v", aborted, err)
	}
	if o := offsets(t, s, p0); o.LastStableOffset != 3 {
		t.Fatalf("offsets after the fence: %+v", o)
	}
	seg, err := segment.Decode(b.get(b.keys()[0]))
	if err != nil || seg.Partitions[0].Batches[0].Header.ProducerEpoch != epoch2 {
		t.Fatalf("fence markers: %v", err)
	}
	wantCode(t, "old instance AddPartitions", addPartitions(c, ctx, "tx", pid, epoch, p0), kerr.ProducerFenced.Code)
	wantCode(t, "old instance EndTxn", endTxn(c, ctx, "tx", pid, epoch, true).Err, kerr.ProducerFenced.Code)
	if r := produce(t, s, p0, pid, epoch, 2, 1); !errors.Is(r.Err, metastore.ErrInvalidProducerEpoch) {
		t.Fatalf("old instance's batch: %+v", r)
	}
	// The new instance writes with its epoch from sequence 0.
	wantCode(t, "new instance AddPartitions", addPartitions(c, ctx, "tx", pid2, epoch2, p0), 0)
	if r := produce(t, s, p0, pid2, epoch2, 0, 1); r.Err != nil || r.BaseOffset != 3 {
		t.Fatalf("new instance's batch: %+v", r)
	}
	// Under transaction version 2 the epoch moves at every end, and the
	// producer writes its next transaction with the new one.
	e := c.EndTxn(ctx, txn.EndTxnRequest{Version: 5, TransactionalID: "tx", ProducerID: pid2, ProducerEpoch: epoch2, Commit: true})
	wantCode(t, "EndTxn v5", e.Err, 0)
	wantCode(t, "AddPartitions after EndTxn v5", addPartitions(c, ctx, "tx", e.ProducerID, e.ProducerEpoch, p0), 0)
	if r := produce(t, s, p0, e.ProducerID, e.ProducerEpoch, 0, 1); r.Err != nil {
		t.Fatalf("batch after EndTxn v5: %+v", r)
	}
	if r := produce(t, s, p0, pid2, epoch2, 1, 1); !errors.Is(r.Err, metastore.ErrInvalidProducerEpoch) {
		t.Fatalf("batch of the epoch before EndTxn v5: %+v", r)
	}
}

// TestTimeout: the timeout scan aborts an owned transaction past its
// timeout with an epoch bump; one it does not own is left to its owner.
func TestTimeout(t *testing.T) {
	s, b, clk := openStore(t), newBucket(), newClock()
	reg := prometheus.NewRegistry()
	owned := func(key string) bool { return key != txncoord.Key("elsewhere") }
	c := newCoordinator(t, s, b, clk, txncoord.Options{Owns: owned, Registerer: reg})
	other := newCoordinator(t, s, b, clk, txncoord.Options{})
	ctx := t.Context()
	out := createTopic(t, s, "out", 1)
	p0 := tp(out, 0)

	pid, epoch := initProducer(t, c, "tx")
	wantCode(t, "AddPartitions", addPartitions(c, ctx, "tx", pid, epoch, p0), 0)
	pidX, epochX := initProducer(t, other, "elsewhere")
	wantCode(t, "AddPartitions", addPartitions(other, ctx, "elsewhere", pidX, epochX, p0), 0)
	produce(t, s, p0, pid, epoch, 0, 1)

	clk.advance(9 * time.Second)
	c.Scan(ctx)
	if o := offsets(t, s, p0); o.LastStableOffset != 0 {
		t.Fatalf("aborted before the timeout: %+v", o)
	}
	if n := metric(t, reg, "floe_txn_ongoing", "", ""); n != 1 {
		t.Fatalf("%v ongoing transactions owned, want 1", n)
	}
	clk.advance(time.Second)
	c.Scan(ctx)
	d := c.Describe(ctx, []string{"tx", "elsewhere", "nobody"})
	if d[0].State != "CompleteAbort" || d[0].ProducerEpoch != epoch+1 {
		t.Fatalf("after the timeout: %+v", d[0])
	}
	wantCode(t, "elsewhere", d[1].Err, kerr.NotCoordinator.Code)
	wantCode(t, "unknown id", d[2].Err, kerr.TransactionalIDNotFound.Code)
	if dx := other.Describe(ctx, []string{"elsewhere"}); dx[0].State != "Ongoing" {
		t.Fatalf("a transaction owned elsewhere was aborted: %+v", dx[0])
	}
	wantCode(t, "fenced EndTxn", endTxn(c, ctx, "tx", pid, epoch, true).Err, kerr.ProducerFenced.Code)
	// Transaction version 2: the producer's abort is a retry of the
	// coordinator's, and it carries on with the bumped epoch.
	r := c.EndTxn(ctx, txn.EndTxnRequest{Version: 5, TransactionalID: "tx", ProducerID: pid, ProducerEpoch: epoch})
	if r.Err != 0 || r.ProducerID != pid || r.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5 abort after the timeout: %+v", r)
	}
	if n := metric(t, reg, "floe_txn_ended_total", "reason", "timeout"); n != 1 {
		t.Fatalf("%v timeouts counted", n)
	}
}

// TestHandoverMidCommit: agent A is uploading the markers of a commit
// when the client's retry commits through agent B. A's step then fails
// its version check; decided again, its commit is a retry and answers
// success. A's markers are never referenced.
func TestHandoverMidCommit(t *testing.T) {
	s := openStore(t)
	bucketA, bucketB := newBucket(), newBucket()
	regA := prometheus.NewRegistry()
	a := newCoordinator(t, s, bucketA, nil, txncoord.Options{Registerer: regA})
	bc := newCoordinator(t, s, bucketB, nil, txncoord.Options{})
	ctx := t.Context()
	out := createTopic(t, s, "out", 1)
	p0 := tp(out, 0)
	pid, epoch := initProducer(t, a, "tx")
	wantCode(t, "AddPartitions", addPartitions(a, ctx, "tx", pid, epoch, p0), 0)

	uploading, resume := make(chan struct{}), make(chan struct{})
	bucketA.setOnPut(func(ctx context.Context, key string) error {
		close(uploading)
		<-resume
		return nil
	})
	done := make(chan txn.EndTxnResponse)
	go func() { done <- endTxn(a, context.Background(), "tx", pid, epoch, true) }()
	<-uploading
	wantCode(t, "EndTxn through B", endTxn(bc, ctx, "tx", pid, epoch, true).Err, 0)
	close(resume)
	wantCode(t, "EndTxn through A", (<-done).Err, 0)

	if o := offsets(t, s, p0); o.HighWatermark != 1 {
		t.Fatalf("%d markers committed, want 1", o.HighWatermark)
	}
	ext, err := s.Extents(ctx, p0.TopicID, 0, 0, 0)
	if err != nil || len(ext) != 1 || ext[0].Object != bucketB.keys()[0] {
		t.Fatalf("extents %+v, %v: want B's markers", ext, err)
	}
	if n := metric(t, regA, "floe_txn_conflicts_total", "", ""); n != 1 {
		t.Fatalf("%v conflicts on A, want 1", n)
	}
}

// TestTimeoutWhileEndInFlight: the commit is uploading its markers when
// another agent's timeout scan aborts the transaction; the commit's step
// fails its version check and, decided again, is fenced.
func TestTimeoutWhileEndInFlight(t *testing.T) {
	s, clk := openStore(t), newClock()
	bucketA := newBucket()
	a := newCoordinator(t, s, bucketA, clk, txncoord.Options{})
	other := newCoordinator(t, s, newBucket(), clk, txncoord.Options{})
	ctx := t.Context()
	out := createTopic(t, s, "out", 1)
	p0 := tp(out, 0)
	pid, epoch := initProducer(t, a, "tx")
	wantCode(t, "AddPartitions", addPartitions(a, ctx, "tx", pid, epoch, p0), 0)
	produce(t, s, p0, pid, epoch, 0, 1)

	clk.advance(9 * time.Second)
	uploading, resume := make(chan struct{}), make(chan struct{})
	bucketA.setOnPut(func(ctx context.Context, key string) error {
		close(uploading)
		<-resume
		return nil
	})
	done := make(chan txn.EndTxnResponse)
	go func() { done <- endTxn(a, context.Background(), "tx", pid, epoch, true) }()
	<-uploading
	clk.advance(2 * time.Second)
	other.Scan(ctx)
	close(resume)
	wantCode(t, "EndTxn", (<-done).Err, kerr.ProducerFenced.Code)
	aborted, err := s.AbortedTxns(ctx, p0.TopicID, 0, 0, 10)
	if err != nil || len(aborted) != 1 {
		t.Fatalf("aborted index %+v, %v", aborted, err)
	}
}

// TestConflictsBounded: a record that keeps changing under the
// coordinator gives the request up as NOT_COORDINATOR.
func TestConflictsBounded(t *testing.T) {
	s := &hookStore{Store: openStore(t)}
	reg := prometheus.NewRegistry()
	c := newCoordinator(t, s, newBucket(), nil, txncoord.Options{MaxConflicts: 3, Registerer: reg})
	pid, epoch := initProducer(t, c, "tx")
	out := createTopic(t, s.Store.(metastore.TopicStore), "out", 1)
	s.mu.Lock()
	s.conflict = true
	s.saves = 0
	s.mu.Unlock()
	wantCode(t, "AddPartitions", addPartitions(c, t.Context(), "tx", pid, epoch, tp(out, 0)), kerr.NotCoordinator.Code)
	if s.saves != 4 {
		t.Fatalf("%d saves, want 4 (one and three more)", s.saves)
	}
}

// TestSlowIDBlocksOnlyItself: an id whose store write hangs holds up no
// other id, and a second request for it ends with its context.
func TestSlowIDBlocksOnlyItself(t *testing.T) {
	s := &hookStore{Store: openStore(t)}
	c := newCoordinator(t, s, newBucket(), nil, txncoord.Options{})
	out := createTopic(t, s.Store.(metastore.TopicStore), "out", 1)
	pid, epoch := initProducer(t, c, "slow")
	entered, release := make(chan struct{}), make(chan struct{})
	s.onSave = func(ctx context.Context, t metastore.Txn) error {
		if t.TransactionalID == "slow" {
			close(entered)
			<-release
		}
		return nil
	}
	done := make(chan int16)
	go func() { done <- addPartitions(c, context.Background(), "slow", pid, epoch, tp(out, 0)) }()
	<-entered

	initProducer(t, c, "fast")
	if txns, _, err := c.List(t.Context(), txncoord.ListFilter{}); err != nil || len(txns) != 2 {
		t.Fatalf("List = %+v, %v", txns, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	wantCode(t, "second request for the slow id", addPartitions(c, ctx, "slow", pid, epoch, tp(out, 0)), kerr.RequestTimedOut.Code)
	close(release)
	wantCode(t, "slow request", <-done, 0)
}

// TestUploadFailure: a markers upload that fails leaves the transaction
// ongoing; the retry commits it.
func TestUploadFailure(t *testing.T) {
	s, b := openStore(t), newBucket()
	c := newCoordinator(t, s, b, nil, txncoord.Options{})
	ctx := t.Context()
	out := createTopic(t, s, "out", 1)
	pid, epoch := initProducer(t, c, "tx")
	wantCode(t, "AddPartitions", addPartitions(c, ctx, "tx", pid, epoch, tp(out, 0)), 0)
	b.setOnPut(func(context.Context, string) error { return errors.New("bucket down") })
	wantCode(t, "EndTxn, bucket down", endTxn(c, ctx, "tx", pid, epoch, true).Err, kerr.CoordinatorNotAvailable.Code)
	if d := c.Describe(ctx, []string{"tx"}); d[0].State != "Ongoing" {
		t.Fatalf("after a failed upload: %+v", d[0])
	}
	b.setOnPut(nil)
	wantCode(t, "EndTxn", endTxn(c, ctx, "tx", pid, epoch, true).Err, 0)
}

func TestNotCoordinator(t *testing.T) {
	s := openStore(t)
	c := newCoordinator(t, s, newBucket(), nil, txncoord.Options{Owns: func(string) bool { return false }})
	ctx := t.Context()
	r := c.InitProducerID(ctx, txn.InitProducerIDRequest{Version: 4, TransactionalID: "tx", TimeoutMs: 1000, ProducerID: -1, ProducerEpoch: -1})
	wantCode(t, "InitProducerId", r.Err, kerr.NotCoordinator.Code)
	wantCode(t, "AddPartitions", c.AddPartitions(ctx, txn.AddPartitionsRequest{TransactionalID: "tx", Partitions: make([]metastore.TopicPartition, 2)}).Errs[1], kerr.NotCoordinator.Code)
	wantCode(t, "AddOffsets", c.AddOffsets(ctx, txn.AddOffsetsRequest{TransactionalID: "tx"}), kerr.NotCoordinator.Code)
	wantCode(t, "EndTxn", c.EndTxn(ctx, txn.EndTxnRequest{TransactionalID: "tx"}).Err, kerr.NotCoordinator.Code)
	// TxnOffsetCommit goes to the group's coordinator: no ownership.
	wantCode(t, "TxnOffsetCommit", c.CommitOffsets(ctx, txn.OffsetCommitRequest{TransactionalID: "tx", Group: "g"}), kerr.InvalidProducerIDMapping.Code)
	wantCode(t, "empty id", c.InitProducerID(ctx, txn.InitProducerIDRequest{TimeoutMs: 1000, ProducerID: -1, ProducerEpoch: -1}).Err, kerr.InvalidRequest.Code)
	wantCode(t, "empty id", c.EndTxn(ctx, txn.EndTxnRequest{}).Err, kerr.InvalidRequest.Code)
	wantCode(t, "empty id", c.AddPartitions(ctx, txn.AddPartitionsRequest{Partitions: make([]metastore.TopicPartition, 1)}).Errs[0], kerr.InvalidRequest.Code)
	wantCode(t, "empty id", c.CommitOffsets(ctx, txn.OffsetCommitRequest{Group: "g"}), kerr.InvalidRequest.Code)

	c2 := txncoord.New(s, newBucket(), txncoord.Options{})
	c2.Close()
	wantCode(t, "after Close", c2.EndTxn(ctx, txn.EndTxnRequest{TransactionalID: "tx"}).Err, kerr.NotCoordinator.Code)
}

// TestOffsetCommitImplicit: TxnOffsetCommit v5 adds its group to the
// transaction (transaction version 2); before, AddOffsetsToTxn must.
func TestOffsetCommitImplicit(t *testing.T) {
	s := openStore(t)
	c := newCoordinator(t, s, newBucket(), nil, txncoord.Options{})
	ctx := t.Context()
	in := createTopic(t, s, "in", 1)
	pid, epoch := initProducer(t, c, "tx")
	r := txn.OffsetCommitRequest{Version: 4, TransactionalID: "tx", Group: "g", ProducerID: pid, ProducerEpoch: epoch,
		Offsets: []metastore.CommittedOffset{{TopicID: in.ID, Partition: 0, Offset: 7, LeaderEpoch: -1}}}
	wantCode(t, "v4 without AddOffsets", c.CommitOffsets(ctx, r), kerr.TransactionAbortable.Code)
	r.Version = 5
	wantCode(t, "v5", c.CommitOffsets(ctx, r), 0)
	r.Offsets[0].Partition = 9
	wantCode(t, "unknown partition", c.CommitOffsets(ctx, r), kerr.UnknownTopicOrPartition.Code)
	e := c.EndTxn(ctx, txn.EndTxnRequest{Version: 5, TransactionalID: "tx", ProducerID: pid, ProducerEpoch: epoch, Commit: true})
	wantCode(t, "EndTxn", e.Err, 0)
	if got, _ := s.FetchOffsets(ctx, "g"); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets after the commit: %+v", got)
	}
}

func TestDescribeAndList(t *testing.T) {
	s, clk := openStore(t), newClock()
	c := newCoordinator(t, s, newBucket(), clk, txncoord.Options{Owns: func(key string) bool { return key != txncoord.Key("other") }})
	ctx := t.Context()
	out := createTopic(t, s, "out", 2)
	pidA, epochA := initProducer(t, c, "a")
	pidB, epochB := initProducer(t, c, "b")
	initProducer(t, c, "c")
	wantCode(t, "add a", addPartitions(c, ctx, "a", pidA, epochA, tp(out, 1), tp(out, 0)), 0)
	clk.advance(5 * time.Second)
	wantCode(t, "add b", addPartitions(c, ctx, "b", pidB, epochB, tp(out, 0)), 0)
	wantCode(t, "end b", endTxn(c, ctx, "b", pidB, epochB, true).Err, 0)
	if _, err := s.SaveTxn(ctx, metastore.Txn{TransactionalID: "other", ProducerID: 99, LastProducerID: -1, LastProducerEpoch: -1, State: metastore.TxnEmpty, TimeoutMs: 1000}); err != nil {
		t.Fatal(err)
	}

	d := c.Describe(ctx, []string{"a", ""})
	want := txncoord.Description{TransactionalID: "a", State: "Ongoing", TimeoutMs: 10_000, StartTimestamp: newClock().Now().UnixMilli(),
		ProducerID: pidA, ProducerEpoch: epochA, Partitions: []metastore.TopicPartition{tp(out, 0), tp(out, 1)}}
	if got := d[0]; got.State != want.State || got.StartTimestamp != want.StartTimestamp || !slices.Equal(got.Partitions, want.Partitions) || got.ProducerID != pidA {
		t.Fatalf("Describe(a) = %+v, want %+v", got, want)
	}
	wantCode(t, "Describe of an empty id", d[1].Err, kerr.InvalidRequest.Code)

	list := func(f txncoord.ListFilter) string {
		t.Helper()
		txns, unknown, err := c.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range txns {
			ids = append(ids, l.TransactionalID+":"+l.State)
		}
		return strings.Join(ids, " ") + " unknown=" + strings.Join(unknown, ",")
	}
	for _, tc := range []struct {
		f    txncoord.ListFilter
		want string
	}{
		{txncoord.ListFilter{}, "a:Ongoing b:CompleteCommit c:Empty unknown="},
		{txncoord.ListFilter{States: []string{"Ongoing", "Empty", "Bogus"}}, "a:Ongoing c:Empty unknown=Bogus"},
		{txncoord.ListFilter{States: []string{"Bogus"}}, " unknown=Bogus"},
		{txncoord.ListFilter{States: []string{"PrepareCommit"}}, " unknown="},
		{txncoord.ListFilter{ProducerIDs: []int64{pidB}}, "b:CompleteCommit unknown="},
		{txncoord.ListFilter{MinDuration: 4 * time.Second}, "a:Ongoing unknown="},
		{txncoord.ListFilter{MinDuration: 6 * time.Second}, " unknown="},
		{txncoord.ListFilter{Pattern: regexp.MustCompile("^[bc]$")}, "b:CompleteCommit c:Empty unknown="},
	} {
		if got := list(tc.f); got != tc.want {
			t.Errorf("List(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestIDExpiration: an idle id's record is deleted; its producer is then
// unknown, and InitProducerId starts it afresh.
func TestIDExpiration(t *testing.T) {
	s, clk := openStore(t), newClock()
	c := newCoordinator(t, s, newBucket(), clk, txncoord.Options{IDExpiration: time.Hour})
	ctx := t.Context()
	pid, epoch := initProducer(t, c, "tx")
	clk.advance(59 * time.Minute)
	c.Scan(ctx)
	wantCode(t, "before expiration", c.Describe(ctx, []string{"tx"})[0].Err, 0)
	clk.advance(time.Minute)
	c.Scan(ctx)
	wantCode(t, "after expiration", c.Describe(ctx, []string{"tx"})[0].Err, kerr.TransactionalIDNotFound.Code)
	wantCode(t, "EndTxn", endTxn(c, ctx, "tx", pid, epoch, true).Err, kerr.InvalidProducerIDMapping.Code)
	if pid2, _ := initProducer(t, c, "tx"); pid2 == pid {
		t.Fatalf("the expired id's producer id %d was reused", pid)
	}
}

// TestTimeoutLoop: the loop started by New aborts on its own.
func TestTimeoutLoop(t *testing.T) {
	s := openStore(t)
	c := newCoordinator(t, s, newBucket(), nil, txncoord.Options{AbortInterval: 10 * time.Millisecond})
	ctx := t.Context()
	out := createTopic(t, s, "out", 1)
	r := c.InitProducerID(ctx, txn.InitProducerIDRequest{Version: 4, TransactionalID: "tx", TimeoutMs: 1, ProducerID: -1, ProducerEpoch: -1})
	wantCode(t, "InitProducerId", r.Err, 0)
	wantCode(t, "AddPartitions", addPartitions(c, ctx, "tx", r.ProducerID, r.ProducerEpoch, tp(out, 0)), 0)
	waitFor(t, "the timeout abort", func() bool { return c.Describe(ctx, []string{"tx"})[0].State == "CompleteAbort" })
}
