package metastoretest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/metastore"
)

// txnStore is the TxnStore with the roles its cases are set up and
// checked through: commits and reads of the partitions, group offsets,
// retention, the object ledger and commit notices.
type txnStore interface {
	metastore.TxnStore
	metastore.TopicStore
	metastore.Sequencer
	metastore.ExtentReader
	metastore.GroupStore
	metastore.RetentionStore
	metastore.ObjectLedger
	metastore.CommitWatcher
	metastore.ExtentReplacer
}

func testTxns(t *testing.T, open func(t *testing.T) txnStore) {
	t.Run("Records", func(t *testing.T) { testTxnRecords(t, open(t)) })
	t.Run("InvalidRecords", func(t *testing.T) { testInvalidTxnRecords(t, open(t)) })
	t.Run("TransactionalBatches", func(t *testing.T) { testTxnBatches(t, open(t)) })
	t.Run("Commit", func(t *testing.T) { testTxnCommit(t, open(t)) })
	t.Run("Abort", func(t *testing.T) { testTxnAbort(t, open(t)) })
	t.Run("EndConflicts", func(t *testing.T) { testTxnEndConflicts(t, open(t)) })
	t.Run("EndWithoutPartitions", func(t *testing.T) { testTxnEndWithoutPartitions(t, open(t)) })
	t.Run("Offsets", func(t *testing.T) { testTxnOffsets(t, open(t)) })
	t.Run("PendingOffsets", func(t *testing.T) { testTxnPendingOffsets(t, open(t)) })
	t.Run("AbortedIndex", func(t *testing.T) { testAbortedIndex(t, open(t)) })
	t.Run("ActiveProducers", func(t *testing.T) { testActiveProducers(t, open(t)) })
	t.Run("DeleteTopic", func(t *testing.T) { testTxnDeleteTopic(t, open(t)) })
	t.Run("Retention", func(t *testing.T) { testTxnRetention(t, open(t)) })
	t.Run("SharedMarkersObject", func(t *testing.T) { testTxnSharedMarkers(t, open(t)) })
	t.Run("ReplaceDropsAborted", func(t *testing.T) { testReplaceDropsAborted(t, open(t)) })
}

// ongoing is an Ongoing transaction of producer (id, epoch) with the given
// partitions (sorted here) and groups, to be saved over version.
func ongoing(id string, producer int64, epoch int16, version int64, parts []metastore.TopicPartition, groups ...string) metastore.Txn {
	parts = slices.Clone(parts)
	slices.SortFunc(parts, metastore.CompareTopicPartitions)
	slices.Sort(groups)
	return metastore.Txn{
		TransactionalID: id, ProducerID: producer, ProducerEpoch: epoch,
		LastProducerID: -1, LastProducerEpoch: -1,
		State: metastore.TxnOngoing, TimeoutMs: 60_000,
		Partitions: parts, Groups: groups,
		StartedAt: msTime(time.Now()), Version: version,
	}
}

// ended is t after its end: Complete, no partitions or groups, version
// unchanged (EndTxn compares it).
func ended(t metastore.Txn, commit bool) metastore.Txn {
	t.State = metastore.TxnCompleteAbort
	if commit {
		t.State = metastore.TxnCompleteCommit
	}
	t.Partitions, t.Groups, t.StartedAt = nil, nil, time.Time{}
	return t
}

func tp(id metastore.TopicID, partition int32) metastore.TopicPartition {
	return metastore.TopicPartition{TopicID: id, Partition: partition}
}

// txnBatch is a transactional batch of producer (id, epoch) with count
// offsets from sequence seq.
func txnBatch(topic metastore.TopicID, partition int32, producer int64, epoch int16, seq int32, count int64) metastore.BatchCommit {
	b := batch(topic, partition, 0, 10, count)
	b.ProducerID, b.ProducerEpoch, b.BaseSequence, b.Transactional = producer, epoch, seq, true
	return b
}

// markers is an uploaded markers object with one control batch per
// partition, in the order given.
func markers(producer int64, epoch int16, parts ...metastore.TopicPartition) metastore.SegmentCommit {
	c := metastore.SegmentCommit{Object: "markers/" + uuid.NewString()}
	for i, p := range parts {
		b := batch(p.TopicID, p.Partition, int64(i)*30, 30, 1)
		b.ProducerID, b.ProducerEpoch, b.BaseSequence, b.Transactional = producer, epoch, -1, true
		c.Batches = append(c.Batches, b)
		c.Size += 30
	}
	return c
}

func saveTxn(t *testing.T, s metastore.TxnStore, txn metastore.Txn) int64 {
	t.Helper()
	v, err := s.SaveTxn(t.Context(), txn)
	if err != nil {
		t.Fatalf("SaveTxn(%q, version %d): %v", txn.TransactionalID, txn.Version, err)
	}
	if v != txn.Version+1 {
		t.Fatalf("SaveTxn(%q, version %d) = version %d, want %d", txn.TransactionalID, txn.Version, v, txn.Version+1)
	}
	return v
}

func loadTxn(t *testing.T, s metastore.TxnStore, id string) metastore.Txn {
	t.Helper()
	txn, found, err := s.LoadTxn(t.Context(), id)
	if err != nil || !found {
		t.Fatalf("LoadTxn(%q) = found %v, %v", id, found, err)
	}
	return txn
}

func endTxn(t *testing.T, s metastore.TxnStore, e metastore.TxnEnd) metastore.TxnEndResult {
	t.Helper()
	r, err := s.EndTxn(t.Context(), e)
	if err != nil {
		t.Fatalf("EndTxn(%q, commit %v): %v", e.Next.TransactionalID, e.Commit, err)
	}
	if len(r.MarkerOffsets) != len(e.Markers.Batches) || r.Version != e.Next.Version+1 {
		t.Fatalf("EndTxn(%q) = %+v for %d markers over version %d", e.Next.TransactionalID, r, len(e.Markers.Batches), e.Next.Version)
	}
	return r
}

// end ends txn (stored at txn.Version) with markers on parts.
func end(t *testing.T, s metastore.TxnStore, txn metastore.Txn, commit bool, parts ...metastore.TopicPartition) metastore.TxnEndResult {
	t.Helper()
	e := metastore.TxnEnd{Next: ended(txn, commit), ProducerID: txn.ProducerID, Commit: commit, Groups: txn.Groups}
	if len(parts) > 0 {
		e.Markers = markers(txn.ProducerID, txn.ProducerEpoch, parts...)
	}
	return endTxn(t, s, e)
}

func abortedTxns(t *testing.T, s metastore.TxnStore, id metastore.TopicID, partition int32, from, to int64) []metastore.AbortedTxn {
	t.Helper()
	got, err := s.AbortedTxns(t.Context(), id, partition, from, to)
	if err != nil {
		t.Fatalf("AbortedTxns(%d, [%d, %d)): %v", partition, from, to, err)
	}
	return got
}

// sameTxn compares records: a wanted UpdatedAt of zero only has to be
// recent, other times are compared as instants.
func sameTxn(t *testing.T, what string, got, want metastore.Txn) {
	t.Helper()
	g, w := got, want
	g.StartedAt, w.StartedAt, g.UpdatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(g.Partitions) == 0 && len(w.Partitions) == 0 {
		g.Partitions, w.Partitions = nil, nil
	}
	if len(g.Groups) == 0 && len(w.Groups) == 0 {
		g.Groups, w.Groups = nil, nil
	}
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) || !got.StartedAt.Equal(want.StartedAt) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
	if want.UpdatedAt.IsZero() {
		recent(t, what+": UpdatedAt", got.UpdatedAt)
	} else if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("%s: UpdatedAt %v, want %v", what, got.UpdatedAt, want.UpdatedAt)
	}
}

// wantOffsets checks a partition's log start, last stable offset and
// high watermark.
func wantOffsets(t *testing.T, s metastore.ExtentReader, id metastore.TopicID, partition int32, logStart, lso, hwm int64) {
	t.Helper()
	want := metastore.PartitionOffsets{LogStartOffset: logStart, HighWatermark: hwm, LastStableOffset: lso}
	if got := offsets(t, s, id, partition); got != want {
		t.Fatalf("Offsets(%d) = %+v, want %+v", partition, got, want)
	}
}

func testTxnRecords(t *testing.T, s txnStore) {
	ctx := t.Context()
	if _, found, err := s.LoadTxn(ctx, "nope"); err != nil || found {
		t.Fatalf("LoadTxn of an unknown id: found %v, %v", found, err)
	}
	a := createTopic(t, s, "a", 3)
	b := createTopic(t, s, "b", 1)
	// Client strings: any bytes, and ids that prefix each other.
	ids := []string{"tx", "t", "tx-2", "", "\xff\x00id"}
	for i, id := range ids {
		txn := ongoing(id, int64(1000+i), int16(i), 0, []metastore.TopicPartition{tp(b.ID, 0), tp(a.ID, 2), tp(a.ID, 0)}, "g\x00\xfe", "a-group", "")
		txn.TimeoutMs = int32(1000 * (i + 1))
		txn.LastProducerID, txn.LastProducerEpoch = int64(900+i), 3
		txn.UpdatedAt = msTime(time.Now().Add(-time.Minute))
		saveTxn(t, s, txn)
		txn.Version = 1
		sameTxn(t, fmt.Sprintf("LoadTxn(%q)", id), loadTxn(t, s, id), txn)
	}

	// Compare-and-swap on the version.
	txn := loadTxn(t, s, "tx")
	stale := txn
	_, err := s.SaveTxn(ctx, metastore.Txn{TransactionalID: "tx", State: metastore.TxnEmpty})
	wantErr(t, "SaveTxn over an existing record at version 0", err, metastore.ErrTxnVersionConflict)
	next := txn
	next.State, next.Partitions, next.Groups, next.StartedAt, next.UpdatedAt = metastore.TxnEmpty, nil, nil, time.Time{}, time.Time{}
	v := saveTxn(t, s, next)
	next.Version = v
	sameTxn(t, "LoadTxn after an update", loadTxn(t, s, "tx"), next)
	stale.ProducerEpoch++
	_, err = s.SaveTxn(ctx, stale)
	wantErr(t, "SaveTxn at a stale version", err, metastore.ErrTxnVersionConflict)
	_, err = s.SaveTxn(ctx, metastore.Txn{TransactionalID: "new", State: metastore.TxnEmpty, Version: 3})
	wantErr(t, "SaveTxn of an unknown id at version 3", err, metastore.ErrTxnVersionConflict)
	if _, found, _ := s.LoadTxn(ctx, "new"); found {
		t.Fatal("a refused SaveTxn created the record")
	}
	sameTxn(t, "LoadTxn after refused saves", loadTxn(t, s, "tx"), next)

	// ListTxns: every record, in byte order of the ids.
	list, err := s.ListTxns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, l := range list {
		gotIDs = append(gotIDs, l.TransactionalID)
		sameTxn(t, fmt.Sprintf("ListTxns: %q", l.TransactionalID), l, loadTxn(t, s, l.TransactionalID))
	}
	wantIDs := slices.Sorted(slices.Values(ids))
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("ListTxns ids %q, want %q", gotIDs, wantIDs)
	}

	// DeleteTxn at the stored version only.
	err = s.DeleteTxn(ctx, "tx", v-1)
	wantErr(t, "DeleteTxn at a stale version", err, metastore.ErrTxnVersionConflict)
	if err := s.DeleteTxn(ctx, "tx", v); err != nil {
		t.Fatalf("DeleteTxn: %v", err)
	}
	if _, found, err := s.LoadTxn(ctx, "tx"); err != nil || found {
		t.Fatalf("LoadTxn after DeleteTxn: found %v, %v", found, err)
	}
	err = s.DeleteTxn(ctx, "tx", v)
	wantErr(t, "DeleteTxn of a deleted id", err, metastore.ErrUnknownTxn)
	if list, _ := s.ListTxns(ctx); len(list) != len(ids)-1 {
		t.Fatalf("ListTxns after DeleteTxn: %d records, want %d", len(list), len(ids)-1)
	}
	// The id starts afresh at version 0.
	saveTxn(t, s, metastore.Txn{TransactionalID: "tx", ProducerID: 7, LastProducerID: -1, LastProducerEpoch: -1, State: metastore.TxnEmpty})
}

func testInvalidTxnRecords(t *testing.T, s txnStore) {
	a := createTopic(t, s, "a", 2)
	good := ongoing("tx", 1000, 0, 0, []metastore.TopicPartition{tp(a.ID, 0), tp(a.ID, 1)}, "g", "h")
	cases := map[string]func(*metastore.Txn){
		"unknown state":         func(x *metastore.Txn) { x.State = "PrepareCommit" },
		"unsorted partitions":   func(x *metastore.Txn) { x.Partitions[0], x.Partitions[1] = x.Partitions[1], x.Partitions[0] },
		"repeated partition":    func(x *metastore.Txn) { x.Partitions[1] = x.Partitions[0] },
		"negative partition":    func(x *metastore.Txn) { x.Partitions[0].Partition = -1 },
		"unsorted groups":       func(x *metastore.Txn) { x.Groups = []string{"h", "g"} },
		"repeated group":        func(x *metastore.Txn) { x.Groups = []string{"g", "g"} },
		"negative version":      func(x *metastore.Txn) { x.Version = -1 },
		"unknown state (empty)": func(x *metastore.Txn) { x.State = "" },
	}
	for name, spoil := range cases {
		txn := good
		txn.Partitions = slices.Clone(good.Partitions)
		spoil(&txn)
		if _, err := s.SaveTxn(t.Context(), txn); err == nil || errors.Is(err, metastore.ErrTxnVersionConflict) {
			t.Errorf("SaveTxn with %s: %v, want a validation error", name, err)
		}
	}
	if _, found, _ := s.LoadTxn(t.Context(), "tx"); found {
		t.Fatal("an invalid SaveTxn created the record")
	}
}

func testTxnBatches(t *testing.T, s txnStore) {
	const (
		pid   = 5000
		epoch = 2
		other = 6000
	)
	topic := createTopic(t, s, "t", 3)
	id := topic.ID
	commitOK(t, s, segment(batch(id, 0, 0, 10, 3)))
	txn := ongoing("tx", pid, epoch, 0, []metastore.TopicPartition{tp(id, 0), tp(id, 1)})
	txn.Version = saveTxn(t, s, txn)

	// The first accepted batch of the transaction opens it at its base
	// offset; later ones do not move it.
	r := commitOK(t, s, segment(txnBatch(id, 0, pid, epoch, 0, 2)))
	if r[0].BaseOffset != 3 {
		t.Fatalf("first transactional batch at %d, want 3", r[0].BaseOffset)
	}
	wantOffsets(t, s, id, 0, 0, 3, 5)
	commitOK(t, s, segment(batch(id, 0, 0, 10, 1), txnBatch(id, 0, pid, epoch, 2, 4)))
	wantOffsets(t, s, id, 0, 0, 3, 10)

	// Refusals; none opens anything.
	refused := []struct {
		name string
		b    metastore.BatchCommit
		want error
	}{
		{"partition not in the transaction", txnBatch(id, 2, pid, epoch, 0, 1), metastore.ErrInvalidTxnState},
		{"older epoch", txnBatch(id, 1, pid, epoch-1, 0, 1), metastore.ErrInvalidProducerEpoch},
		{"newer epoch", txnBatch(id, 1, pid, epoch+1, 0, 1), metastore.ErrInvalidProducerEpoch},
		{"producer without a transaction", txnBatch(id, 1, other, 0, 0, 1), metastore.ErrInvalidTxnState},
		{"no producer id", txnBatch(id, 1, -1, 0, 0, 1), metastore.ErrInvalidTxnState},
		{"sequence gap", txnBatch(id, 0, pid, epoch, 9, 1), metastore.ErrOutOfOrderSequence},
	}
	for _, tc := range refused {
		r := commit(t, s, segment(tc.b))
		wantErr(t, tc.name, r[0].Err, tc.want)
		if r[0].BaseOffset != -1 {
			t.Errorf("%s: base offset %d, want -1", tc.name, r[0].BaseOffset)
		}
	}
	wantOffsets(t, s, id, 0, 0, 3, 10)
	wantOffsets(t, s, id, 1, 0, 0, 0)
	wantOffsets(t, s, id, 2, 0, 0, 0)

	// In one commit: accepted, refused and plain batches side by side.
	r = commit(t, s, segment(
		txnBatch(id, 1, pid, epoch, 0, 2),
		txnBatch(id, 2, pid, epoch, 0, 1),
		batch(id, 1, 20, 10, 1),
		txnBatch(id, 1, pid, epoch, 2, 1),
	))
	checkResults(t, r, []metastore.BatchResult{
		{BaseOffset: 0},
		{BaseOffset: -1, LogStartOffset: -1, Err: metastore.ErrInvalidTxnState},
		{BaseOffset: 2},
		{BaseOffset: 3},
	})
	wantOffsets(t, s, id, 1, 0, 0, 4)
	wantOffsets(t, s, id, 2, 0, 0, 0)

	// The producer's idempotent batch outside the transaction, then a
	// transactional one, on the same partition in one commit.
	plain := txnBatch(id, 1, pid, epoch, 3, 1)
	plain.Transactional = false
	r = commitOK(t, s, segment(plain, txnBatch(id, 1, pid, epoch, 4, 1)))
	if r[0].BaseOffset != 4 || r[1].BaseOffset != 5 {
		t.Fatalf("idempotent then transactional batch at %d and %d, want 4 and 5", r[0].BaseOffset, r[1].BaseOffset)
	}
	wantOffsets(t, s, id, 1, 0, 0, 6)

	// A record that is not Ongoing refuses the producer's batches.
	empty := txn
	empty.State, empty.StartedAt = metastore.TxnEmpty, time.Time{}
	v := saveTxn(t, s, empty)
	r = commit(t, s, segment(txnBatch(id, 0, pid, epoch, 6, 1)))
	wantErr(t, "batch while the record is Empty", r[0].Err, metastore.ErrInvalidTxnState)
	txn.Version = v
	txn.Version = saveTxn(t, s, txn)

	// After the end, the transaction's batches are refused, but a resent
	// batch it already holds is still answered as the duplicate it is
	// (Kafka checks duplicates first).
	end(t, s, txn, true, tp(id, 0), tp(id, 1))
	r = commit(t, s, segment(txnBatch(id, 0, pid, epoch, 6, 1), txnBatch(id, 0, pid, epoch, 0, 2)))
	checkResults(t, r, []metastore.BatchResult{
		{BaseOffset: -1, LogStartOffset: -1, Err: metastore.ErrInvalidTxnState},
		{BaseOffset: 3, Duplicate: true},
	})
	wantOffsets(t, s, id, 0, 0, 11, 11)
}

func testTxnCommit(t *testing.T, s txnStore) {
	const pid, epoch = 5000, 0
	ctx := t.Context()
	out := createTopic(t, s, "out", 3)
	in := createTopic(t, s, "in", 2)
	gone := createTopic(t, s, "gone", 1)
	commitOffsets(t, s, "g", offset(in.ID, 1, 4))
	txn := ongoing("tx", pid, epoch, 0, []metastore.TopicPartition{tp(out.ID, 0), tp(out.ID, 1), tp(out.ID, 2), tp(gone.ID, 0)}, "g")
	txn.Version = saveTxn(t, s, txn)
	commitOK(t, s, segment(batch(out.ID, 0, 0, 10, 5)))
	commitOK(t, s, segment(txnBatch(out.ID, 0, pid, epoch, 0, 3), txnBatch(out.ID, 1, pid, epoch, 0, 2)))
	commitOK(t, s, segment(batch(out.ID, 1, 0, 10, 1)))
	commitOK(t, s, segment(txnBatch(out.ID, 1, pid, epoch, 2, 1)))
	wantOffsets(t, s, out.ID, 0, 0, 5, 8)
	wantOffsets(t, s, out.ID, 1, 0, 0, 4)
	at := msTime(time.Now().Add(-time.Hour))
	if err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{
		{TopicID: in.ID, Partition: 0, Offset: 10, LeaderEpoch: 3, Metadata: "first"},
	}); err != nil {
		t.Fatal(err)
	}
	// A later commit of the same partition replaces the earlier one.
	pending := metastore.CommittedOffset{TopicID: in.ID, Partition: 0, Offset: 12, LeaderEpoch: 4, Metadata: "m\x00", CommittedAt: at}
	if err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{pending}); err != nil {
		t.Fatal(err)
	}
	// Pending offsets are not the group's until the commit.
	sameOffsets(t, "offsets before the commit", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{offset(in.ID, 1, 4)})
	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	notices := make(chan metastore.CommitNotice, 16)
	stop := s.WatchCommits(func(n metastore.CommitNotice) { notices <- n })
	defer stop()
	e := metastore.TxnEnd{
		Next: ended(txn, true), ProducerID: pid, Commit: true, Groups: []string{"g"},
		Markers: markers(pid, epoch, tp(out.ID, 1), tp(gone.ID, 0), tp(out.ID, 0), tp(out.ID, 2), tp(out.ID, 7)),
	}
	r := endTxn(t, s, e)
	if want := []int64{4, -1, 8, 0, -1}; !slices.Equal(r.MarkerOffsets, want) {
		t.Fatalf("marker offsets %v, want %v", r.MarkerOffsets, want)
	}
	next := e.Next
	next.Version = r.Version
	sameTxn(t, "record after EndTxn", loadTxn(t, s, "tx"), next)
	wantOffsets(t, s, out.ID, 0, 0, 9, 9)
	wantOffsets(t, s, out.ID, 1, 0, 5, 5)
	wantOffsets(t, s, out.ID, 2, 0, 1, 1)
	for p := range int32(3) {
		if got := abortedTxns(t, s, out.ID, p, 0, 100); len(got) != 0 {
			t.Fatalf("partition %d: aborted entries %+v after a commit", p, got)
		}
	}
	pending.Offset, pending.Metadata = 12, "m\x00"
	sameOffsets(t, "offsets after the commit", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{pending, offset(in.ID, 1, 4)})

	// The markers are extents like any commit's: each in its partition,
	// at its offset, at its bytes of the markers object.
	for i, b := range e.Markers.Batches {
		if r.MarkerOffsets[i] < 0 {
			continue
		}
		es := extents(t, s, b.TopicID, b.Partition, r.MarkerOffsets[i], 0)
		if len(es) != 1 {
			t.Fatalf("marker %d: extents %+v, want one", i, es)
		}
		x := es[0]
		if x.BaseOffset != r.MarkerOffsets[i] || x.EndOffset != x.BaseOffset+1 || x.Object != e.Markers.Object ||
			x.ObjectSize != e.Markers.Size || x.ByteOffset != b.ByteOffset || x.ByteLength != b.ByteLength || x.MaxTimestamp != b.MaxTimestamp {
			t.Fatalf("marker %d: extent %+v", i, x)
		}
		recent(t, "marker CommittedAt", x.CommittedAt)
	}
	if size, known, err := s.ObjectSize(ctx, e.Markers.Object); err != nil || !known || size != e.Markers.Size {
		t.Fatalf("ObjectSize(markers) = %d, %v, %v; want %d", size, known, err, e.Markers.Size)
	}
	// The notice names the partitions that got markers.
	select {
	case n := <-notices:
		got := slices.Clone(n.Partitions)
		slices.SortFunc(got, metastore.CompareTopicPartitions)
		want := []metastore.TopicPartition{tp(out.ID, 0), tp(out.ID, 1), tp(out.ID, 2)}
		slices.SortFunc(want, metastore.CompareTopicPartitions)
		if !slices.Equal(got, want) {
			t.Fatalf("notice %v, want %v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice for EndTxn")
	}
	// Retention past the markers leaves their object unreferenced.
	for p := range int32(3) {
		if _, err := s.AdvanceLogStart(ctx, out.ID, p, metastore.LogStartHighWatermark); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(deletable(t, s), e.Markers.Object) {
		t.Fatalf("markers object not deletable after retention: %v", deletable(t, s))
	}

	// The ended transaction refuses batches and offsets.
	r2 := commit(t, s, segment(txnBatch(out.ID, 0, pid, epoch, 3, 1)))
	wantErr(t, "batch after the commit", r2[0].Err, metastore.ErrInvalidTxnState)
	err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{offset(in.ID, 0, 20)})
	wantErr(t, "CommitTxnOffsets after the commit", err, metastore.ErrInvalidTxnState)
}

func testTxnAbort(t *testing.T, s txnStore) {
	const (
		p, q   = 5000, 6000
		epoch  = 1
		before = 2
	)
	ctx := t.Context()
	out := createTopic(t, s, "out", 3)
	in := createTopic(t, s, "in", 1)
	commitOK(t, s, segment(batch(out.ID, 0, 0, 10, before)))
	tp0, tp1, tp2 := tp(out.ID, 0), tp(out.ID, 1), tp(out.ID, 2)
	txnP := ongoing("p", p, epoch, 0, []metastore.TopicPartition{tp0, tp1, tp2}, "g")
	txnP.Version = saveTxn(t, s, txnP)
	txnQ := ongoing("q", q, 0, 0, []metastore.TopicPartition{tp0})
	txnQ.Version = saveTxn(t, s, txnQ)

	commitOK(t, s, segment(txnBatch(out.ID, 0, p, epoch, 0, 3), txnBatch(out.ID, 1, p, epoch, 0, 1))) // p: 0@2, 1@0
	commitOK(t, s, segment(txnBatch(out.ID, 0, q, 0, 0, 2)))                                          // q: 0@5
	commitOK(t, s, segment(txnBatch(out.ID, 0, p, epoch, 3, 1)))                                      // p: 0@7
	wantOffsets(t, s, out.ID, 0, 0, 2, 8)
	if err := s.CommitTxnOffsets(ctx, "p", p, epoch, "g", []metastore.CommittedOffset{offset(in.ID, 0, 9)}); err != nil {
		t.Fatal(err)
	}

	// Abort p with an epoch bump, as a timeout does.
	next := ended(txnP, false)
	next.ProducerEpoch, next.LastProducerID, next.LastProducerEpoch = epoch+1, p, epoch
	e := metastore.TxnEnd{Next: next, ProducerID: p, Groups: []string{"g"}, Markers: markers(p, epoch+1, tp0, tp1, tp2)}
	r := endTxn(t, s, e)
	if want := []int64{8, 1, 0}; !slices.Equal(r.MarkerOffsets, want) {
		t.Fatalf("marker offsets %v, want %v", r.MarkerOffsets, want)
	}
	// q is still open on partition 0 from 5.
	wantOffsets(t, s, out.ID, 0, 0, 5, 9)
	wantOffsets(t, s, out.ID, 1, 0, 2, 2)
	wantOffsets(t, s, out.ID, 2, 0, 1, 1)
	// Indexed: [first, marker] where p had written; not partition 2.
	if got, want := abortedTxns(t, s, out.ID, 0, 0, 100), []metastore.AbortedTxn{{ProducerID: p, FirstOffset: 2, LastOffset: 8}}; !slices.Equal(got, want) {
		t.Fatalf("partition 0 aborted %+v, want %+v", got, want)
	}
	if got, want := abortedTxns(t, s, out.ID, 1, 0, 100), []metastore.AbortedTxn{{ProducerID: p, FirstOffset: 0, LastOffset: 1}}; !slices.Equal(got, want) {
		t.Fatalf("partition 1 aborted %+v, want %+v", got, want)
	}
	if got := abortedTxns(t, s, out.ID, 2, 0, 100); len(got) != 0 {
		t.Fatalf("partition 2 aborted %+v, want none (p wrote nothing there)", got)
	}
	// The pending offsets are dropped.
	if got := fetchOffsets(t, s, "g"); len(got) != 0 {
		t.Fatalf("offsets after the abort: %+v", got)
	}
	// The old epoch is fenced.
	r2 := commit(t, s, segment(txnBatch(out.ID, 1, p, epoch, 1, 1)))
	wantErr(t, "batch of the fenced epoch", r2[0].Err, metastore.ErrInvalidProducerEpoch)

	// q commits: nothing open any more.
	end(t, s, txnQ, true, tp0)
	wantOffsets(t, s, out.ID, 0, 0, 10, 10)
	if got := abortedTxns(t, s, out.ID, 0, 0, 100); len(got) != 1 {
		t.Fatalf("aborted entries after q's commit: %+v", got)
	}
}

func testTxnEndConflicts(t *testing.T, s txnStore) {
	const pid, epoch = 5000, 0
	ctx := t.Context()
	out := createTopic(t, s, "out", 2)
	in := createTopic(t, s, "in", 1)
	txn := ongoing("tx", pid, epoch, 0, []metastore.TopicPartition{tp(out.ID, 0), tp(out.ID, 1)}, "g")
	txn.Version = saveTxn(t, s, txn)
	commitOK(t, s, segment(txnBatch(out.ID, 0, pid, epoch, 0, 2)))
	if err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{offset(in.ID, 0, 7)}); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string, object string) {
		t.Helper()
		wantOffsets(t, s, out.ID, 0, 0, 0, 2)
		wantOffsets(t, s, out.ID, 1, 0, 0, 0)
		if got := fetchOffsets(t, s, "g"); len(got) != 0 {
			t.Fatalf("%s: offsets published: %+v", what, got)
		}
		sameTxn(t, what+": record", loadTxn(t, s, "tx"), txn)
		if known, err := s.KnownObjects(ctx, []string{object}); err != nil || known[object] {
			t.Fatalf("%s: markers object registered (%v)", what, err)
		}
	}

	stale := metastore.TxnEnd{Next: ended(txn, true), ProducerID: pid, Commit: true, Groups: []string{"g"},
		Markers: markers(pid, epoch, tp(out.ID, 0), tp(out.ID, 1))}
	stale.Next.Version = txn.Version - 1
	_, err := s.EndTxn(ctx, stale)
	wantErr(t, "EndTxn at a stale version", err, metastore.ErrTxnVersionConflict)
	unchanged("stale version", stale.Markers.Object)

	ahead := stale
	ahead.Next.Version = txn.Version + 1
	_, err = s.EndTxn(ctx, ahead)
	wantErr(t, "EndTxn at a version ahead", err, metastore.ErrTxnVersionConflict)
	unchanged("version ahead", ahead.Markers.Object)

	unknown := stale
	unknown.Next.TransactionalID, unknown.Next.Version = "nope", 1
	_, err = s.EndTxn(ctx, unknown)
	wantErr(t, "EndTxn of an unknown id", err, metastore.ErrUnknownTxn)
	unchanged("unknown id", unknown.Markers.Object)

	bad := map[string]func(*metastore.TxnEnd){
		"another producer": func(e *metastore.TxnEnd) { e.ProducerID = pid + 1 },
		"marker of two offsets": func(e *metastore.TxnEnd) {
			e.Markers.Batches[1].OffsetCount = 2
		},
		"two markers for a partition": func(e *metastore.TxnEnd) { e.Markers.Batches[1].Partition = 0 },
		"markers outside the object":  func(e *metastore.TxnEnd) { e.Markers.Size = 10 },
		"batches without an object":   func(e *metastore.TxnEnd) { e.Markers.Object = "" },
		"unknown state":               func(e *metastore.TxnEnd) { e.Next.State = "PrepareCommit" },
	}
	for name, spoil := range bad {
		e := stale
		e.Next.Version = txn.Version
		e.Markers = markers(pid, epoch, tp(out.ID, 0), tp(out.ID, 1))
		object := e.Markers.Object
		spoil(&e)
		if _, err := s.EndTxn(ctx, e); err == nil {
			t.Errorf("EndTxn with %s succeeded", name)
		}
		unchanged(name, object)
	}

	// The transaction is still whole: its end works.
	end(t, s, txn, true, tp(out.ID, 0), tp(out.ID, 1))
	wantOffsets(t, s, out.ID, 0, 0, 3, 3)
	sameOffsets(t, "offsets after the commit", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{offset(in.ID, 0, 7)})
	// Ending it again over the old version conflicts.
	_, err = s.EndTxn(ctx, metastore.TxnEnd{Next: ended(txn, true), ProducerID: pid, Commit: true})
	wantErr(t, "second EndTxn over the same version", err, metastore.ErrTxnVersionConflict)
}

// testTxnEndWithoutPartitions ends transactions that only committed
// offsets: no markers object.
func testTxnEndWithoutPartitions(t *testing.T, s txnStore) {
	const pid, epoch = 5000, 3
	ctx := t.Context()
	in := createTopic(t, s, "in", 2)
	txn := ongoing("tx", pid, epoch, 0, nil, "g", "h")
	txn.Version = saveTxn(t, s, txn)
	for _, g := range []string{"g", "h"} {
		if err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, g, []metastore.CommittedOffset{offset(in.ID, 1, 30)}); err != nil {
			t.Fatal(err)
		}
	}
	// Only the groups the end names are published; the others' pending
	// offsets go with the transaction.
	e := metastore.TxnEnd{Next: ended(txn, true), ProducerID: pid, Commit: true, Groups: []string{"g"}}
	r := endTxn(t, s, e)
	if len(r.MarkerOffsets) != 0 {
		t.Fatalf("marker offsets %v without markers", r.MarkerOffsets)
	}
	sameOffsets(t, "g after the commit", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{offset(in.ID, 1, 30)})
	if got := fetchOffsets(t, s, "h"); len(got) != 0 {
		t.Fatalf("h's offsets published without being named: %+v", got)
	}
	next := ongoing("tx", pid, epoch, r.Version, nil, "h")
	next.Version = saveTxn(t, s, next)
	end(t, s, next, true)
	if got := fetchOffsets(t, s, "h"); len(got) != 0 {
		t.Fatalf("a later transaction published an ended one's pending offsets: %+v", got)
	}
}

func testTxnOffsets(t *testing.T, s txnStore) {
	const pid, epoch = 5000, 3
	ctx := t.Context()
	in := createTopic(t, s, "in", 2)
	gone := createTopic(t, s, "gone", 1)
	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	txn := ongoing("tx", pid, epoch, 0, nil, "g")
	txn.Version = saveTxn(t, s, txn)
	other := ongoing("other", pid+1, 0, 0, nil, "g")
	other.Version = saveTxn(t, s, other)

	o := []metastore.CommittedOffset{offset(in.ID, 0, 5)}
	cases := []struct {
		name     string
		id       string
		producer int64
		epoch    int16
		group    string
		offsets  []metastore.CommittedOffset
		want     error
	}{
		{"unknown transactional id", "nope", pid, epoch, "g", o, metastore.ErrUnknownTxn},
		{"another producer", "tx", pid + 1, epoch, "g", o, metastore.ErrInvalidProducerEpoch},
		{"older epoch", "tx", pid, epoch - 1, "g", o, metastore.ErrInvalidProducerEpoch},
		{"group not added", "tx", pid, epoch, "h", o, metastore.ErrInvalidTxnState},
		{"unknown partition", "tx", pid, epoch, "g", []metastore.CommittedOffset{offset(in.ID, 1, 5), offset(in.ID, 2, 5)}, metastore.ErrUnknownTopicOrPartition},
		{"deleted topic", "tx", pid, epoch, "g", []metastore.CommittedOffset{offset(in.ID, 1, 5), offset(gone.ID, 0, 5)}, metastore.ErrUnknownTopicOrPartition},
	}
	for _, tc := range cases {
		err := s.CommitTxnOffsets(ctx, tc.id, tc.producer, tc.epoch, tc.group, tc.offsets)
		wantErr(t, tc.name, err, tc.want)
	}
	// Another transaction's pending offsets are its own.
	if err := s.CommitTxnOffsets(ctx, "other", pid+1, 0, "g", []metastore.CommittedOffset{offset(in.ID, 0, 99)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", nil); err != nil {
		t.Fatalf("CommitTxnOffsets of nothing: %v", err)
	}
	// Nothing of the refused calls is pending: the commit publishes nothing.
	end(t, s, txn, true)
	if got := fetchOffsets(t, s, "g"); len(got) != 0 {
		t.Fatalf("offsets published by refused calls or another transaction: %+v", got)
	}
	// Outside Ongoing.
	err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", o)
	wantErr(t, "CommitTxnOffsets after the end", err, metastore.ErrInvalidTxnState)
	end(t, s, other, false)
	if got := fetchOffsets(t, s, "g"); len(got) != 0 {
		t.Fatalf("offsets published by an abort: %+v", got)
	}
}

// testTxnPendingOffsets checks PendingTxnOffsets through the lives of
// three transactions' pending offsets: each partition once, in order,
// per group, until the transactions end (commit or abort), the topic is
// deleted or the record is.
func testTxnPendingOffsets(t *testing.T, s txnStore) {
	ctx := t.Context()
	in := createTopic(t, s, "in", 3)
	doomed := createTopic(t, s, "doomed", 1)
	txns := map[string]metastore.Txn{}
	for i, id := range []string{"a", "b", "c"} {
		txn := ongoing(id, 5000+int64(i), 0, 0, nil, "g", "h")
		txn.Version = saveTxn(t, s, txn)
		txns[id] = txn
	}
	wantPending := func(what, group string, want ...metastore.TopicPartition) {
		t.Helper()
		got, err := s.PendingTxnOffsets(ctx, group)
		if err != nil {
			t.Fatalf("%s: PendingTxnOffsets(%q): %v", what, group, err)
		}
		slices.SortFunc(want, metastore.CompareTopicPartitions)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: PendingTxnOffsets(%q) = %v, want %v", what, group, got, want)
		}
	}
	commit := func(id, group string, offsets ...metastore.CommittedOffset) {
		t.Helper()
		txn := txns[id]
		if err := s.CommitTxnOffsets(ctx, id, txn.ProducerID, txn.ProducerEpoch, group, offsets); err != nil {
			t.Fatalf("CommitTxnOffsets(%q, %q): %v", id, group, err)
		}
	}
	wantPending("before any", "g")
	commit("a", "g", offset(in.ID, 2, 1), offset(in.ID, 0, 1))
	commit("a", "h", offset(in.ID, 1, 1))
	commit("b", "g", offset(in.ID, 0, 5), offset(doomed.ID, 0, 1))
	commit("c", "g", offset(in.ID, 1, 9))
	commit("c", "g", offset(in.ID, 1, 10)) // replaces
	wantPending("pending", "g", tp(in.ID, 0), tp(in.ID, 1), tp(in.ID, 2), tp(doomed.ID, 0))
	wantPending("pending", "h", tp(in.ID, 1))
	wantPending("pending", "other")
	if got := fetchOffsets(t, s, "g"); len(got) != 0 {
		t.Fatalf("pending offsets committed before the end: %+v", got)
	}

	end(t, s, txns["a"], true)
	wantPending("after a commit", "g", tp(in.ID, 0), tp(in.ID, 1), tp(doomed.ID, 0))
	wantPending("after a commit", "h")
	if _, err := s.DeleteTopic(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	wantPending("after the topic's deletion", "g", tp(in.ID, 0), tp(in.ID, 1))
	end(t, s, txns["b"], false)
	wantPending("after an abort", "g", tp(in.ID, 1))
	if err := s.DeleteTxn(ctx, "c", txns["c"].Version); err != nil {
		t.Fatal(err)
	}
	wantPending("after the record's deletion", "g")
}

// testAbortedIndex checks AbortedTxns' overlap rule and order, with
// transactions that interleave, so that an entry whose marker comes later
// starts earlier.
func testAbortedIndex(t *testing.T, s txnStore) {
	const epoch = 0
	topic := createTopic(t, s, "t", 2)
	id := topic.ID
	p0 := []metastore.TopicPartition{tp(id, 0)}
	// a opens at 0, b at 2, b aborts at 4, c opens at 5, a aborts at 7,
	// c aborts at 8; d opens at 9 and commits at 10; e opens at 11 and
	// aborts at 13.
	txns := map[string]metastore.Txn{}
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		txn := ongoing(name, int64(7000+i), epoch, 0, p0)
		txn.Version = saveTxn(t, s, txn)
		txns[name] = txn
	}
	write := func(name string, seq int32, count int64) {
		commitOK(t, s, segment(txnBatch(id, 0, txns[name].ProducerID, epoch, seq, count)))
	}
	write("a", 0, 2)                   // 0-1
	write("b", 0, 2)                   // 2-3
	end(t, s, txns["b"], false, p0...) // 4
	write("c", 0, 1)                   // 5
	write("a", 2, 1)                   // 6
	end(t, s, txns["a"], false, p0...) // 7
	end(t, s, txns["c"], false, p0...) // 8
	write("d", 0, 1)                   // 9
	end(t, s, txns["d"], true, p0...)  // 10
	write("e", 0, 2)                   // 11-12
	end(t, s, txns["e"], false, p0...) // 13
	wantOffsets(t, s, id, 0, 0, 14, 14)

	a := metastore.AbortedTxn{ProducerID: 7000, FirstOffset: 0, LastOffset: 7}
	b := metastore.AbortedTxn{ProducerID: 7001, FirstOffset: 2, LastOffset: 4}
	c := metastore.AbortedTxn{ProducerID: 7002, FirstOffset: 5, LastOffset: 8}
	e := metastore.AbortedTxn{ProducerID: 7004, FirstOffset: 11, LastOffset: 13}
	cases := []struct {
		from, to int64
		want     []metastore.AbortedTxn
	}{
		{0, 100, []metastore.AbortedTxn{a, b, c, e}},
		{0, 1, []metastore.AbortedTxn{a}},
		{0, 2, []metastore.AbortedTxn{a}},    // b starts at to
		{0, 3, []metastore.AbortedTxn{a, b}}, // b starts before to
		{4, 5, []metastore.AbortedTxn{a, b}}, // b's marker is from
		{5, 6, []metastore.AbortedTxn{a, c}},
		{8, 9, []metastore.AbortedTxn{c}}, // c's marker is from
		{9, 11, nil},
		{9, 12, []metastore.AbortedTxn{e}},
		{14, 20, nil},
		{-5, 0, nil},
		{3, 4, []metastore.AbortedTxn{a, b}},
	}
	for _, tc := range cases {
		got := abortedTxns(t, s, id, 0, tc.from, tc.to)
		if !slices.Equal(got, tc.want) {
			t.Errorf("AbortedTxns([%d, %d)) = %+v, want %+v", tc.from, tc.to, got, tc.want)
		}
	}
	if got := abortedTxns(t, s, id, 1, 0, 100); len(got) != 0 {
		t.Errorf("partition 1: %+v", got)
	}
	_, err := s.AbortedTxns(t.Context(), id, 2, 0, 100)
	wantErr(t, "AbortedTxns of an unknown partition", err, metastore.ErrUnknownTopicOrPartition)
	_, err = s.AbortedTxns(t.Context(), metastore.TopicID{7}, 0, 0, 100)
	wantErr(t, "AbortedTxns of an unknown topic", err, metastore.ErrUnknownTopicOrPartition)
}

func testActiveProducers(t *testing.T, s txnStore) {
	const (
		idem, txnal = 6000, 5000
		epoch       = 4
	)
	topic := createTopic(t, s, "t", 2)
	id := topic.ID
	active := func(partition int32) []metastore.ActiveProducer {
		t.Helper()
		got, err := s.ActiveProducers(t.Context(), id, partition)
		if err != nil {
			t.Fatalf("ActiveProducers(%d): %v", partition, err)
		}
		return got
	}
	if got := active(0); len(got) != 0 {
		t.Fatalf("active producers of an empty partition: %+v", got)
	}
	plain := batch(id, 0, 0, 10, 2)
	plain.MaxTimestamp = 111
	first := plain
	first.ProducerID, first.ProducerEpoch, first.BaseSequence = idem, 1, 0
	commitOK(t, s, segment(first, plain)) // 0-1 idempotent, 2-3 plain
	txn := ongoing("tx", txnal, epoch, 0, []metastore.TopicPartition{tp(id, 0)})
	txn.Version = saveTxn(t, s, txn)
	tb := txnBatch(id, 0, txnal, epoch, 0, 3)
	tb.MaxTimestamp = 222
	commitOK(t, s, segment(tb)) // 4-6
	tb.BaseSequence, tb.OffsetCount, tb.MaxTimestamp = 3, 1, 200
	commitOK(t, s, segment(tb)) // 7

	want := []metastore.ActiveProducer{
		{ProducerID: txnal, ProducerEpoch: epoch, LastSequence: 3, LastTimestamp: 200, CurrentTxnStartOffset: 4},
		{ProducerID: idem, ProducerEpoch: 1, LastSequence: 1, LastTimestamp: 111, CurrentTxnStartOffset: -1},
	}
	if got := active(0); !slices.Equal(got, want) {
		t.Fatalf("active producers %+v, want %+v", got, want)
	}
	if got := active(1); len(got) != 0 {
		t.Fatalf("active producers of partition 1: %+v", got)
	}
	end(t, s, txn, true, tp(id, 0))
	want[0].CurrentTxnStartOffset = -1
	if got := active(0); !slices.Equal(got, want) {
		t.Fatalf("active producers after the commit %+v, want %+v", got, want)
	}
	_, err := s.ActiveProducers(t.Context(), id, 2)
	wantErr(t, "ActiveProducers of an unknown partition", err, metastore.ErrUnknownTopicOrPartition)
}

// testTxnDeleteTopic deletes a topic with open and aborted transactions
// and pending offsets on it: none of them is left to come back.
func testTxnDeleteTopic(t *testing.T, s txnStore) {
	const pid, epoch = 5000, 0
	ctx := t.Context()
	doomed := createTopic(t, s, "doomed", 1)
	kept := createTopic(t, s, "kept", 1)
	txn := ongoing("tx", pid, epoch, 0, []metastore.TopicPartition{tp(doomed.ID, 0), tp(kept.ID, 0)}, "g")
	txn.Version = saveTxn(t, s, txn)
	commitOK(t, s, segment(txnBatch(doomed.ID, 0, pid, epoch, 0, 1), txnBatch(kept.ID, 0, pid, epoch, 0, 1)))
	r := end(t, s, txn, false, tp(doomed.ID, 0), tp(kept.ID, 0))
	txn = ongoing("tx", pid, epoch, r.Version, []metastore.TopicPartition{tp(doomed.ID, 0), tp(kept.ID, 0)}, "g")
	txn.Version = saveTxn(t, s, txn)
	commitOK(t, s, segment(txnBatch(doomed.ID, 0, pid, epoch, 1, 1), txnBatch(kept.ID, 0, pid, epoch, 1, 1)))
	if err := s.CommitTxnOffsets(ctx, "tx", pid, epoch, "g", []metastore.CommittedOffset{offset(doomed.ID, 0, 1), offset(kept.ID, 0, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	_, err := s.AbortedTxns(ctx, doomed.ID, 0, 0, 100)
	wantErr(t, "AbortedTxns of the deleted topic", err, metastore.ErrUnknownTopicOrPartition)
	_, err = s.ActiveProducers(ctx, doomed.ID, 0)
	wantErr(t, "ActiveProducers of the deleted topic", err, metastore.ErrUnknownTopicOrPartition)
	wantOffsets(t, s, kept.ID, 0, 0, 2, 3)

	r = end(t, s, txn, true, tp(doomed.ID, 0), tp(kept.ID, 0))
	if want := []int64{-1, 3}; !slices.Equal(r.MarkerOffsets, want) {
		t.Fatalf("marker offsets %v, want %v", r.MarkerOffsets, want)
	}
	sameOffsets(t, "offsets after the commit", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{offset(kept.ID, 0, 2)})
	wantOffsets(t, s, kept.ID, 0, 0, 4, 4)
	if got, want := abortedTxns(t, s, kept.ID, 0, 0, 100), []metastore.AbortedTxn{{ProducerID: pid, FirstOffset: 0, LastOffset: 1}}; !slices.Equal(got, want) {
		t.Fatalf("kept topic's aborted entries %+v, want %+v", got, want)
	}
	// A topic of the same name starts clean.
	again := createTopic(t, s, "doomed", 1)
	wantOffsets(t, s, again.ID, 0, 0, 0, 0)
	if got := abortedTxns(t, s, again.ID, 0, 0, 100); len(got) != 0 {
		t.Fatalf("re-created topic has aborted entries %+v", got)
	}
}

// testTxnRetention checks that advancing the log start trims the aborted
// index and that every PartitionOffsets it returns has the last stable
// offset.
func testTxnRetention(t *testing.T, s txnStore) {
	const epoch = 0
	ctx := t.Context()
	topic := createTopic(t, s, "t", 2)
	id := topic.ID
	p0 := []metastore.TopicPartition{tp(id, 0)}
	abort := func(name string, pid int64, count int64) {
		txn := ongoing(name, pid, epoch, 0, p0)
		txn.Version = saveTxn(t, s, txn)
		commitOK(t, s, segment(txnBatch(id, 0, pid, epoch, 0, count)))
		end(t, s, txn, false, p0...)
	}
	abort("a", 7000, 3) // 0-2, marker 3
	abort("b", 7001, 5) // 4-8, marker 9
	open := ongoing("c", 7002, epoch, 0, p0)
	open.Version = saveTxn(t, s, open)
	commitOK(t, s, segment(batch(id, 0, 0, 10, 2)))             // 10-11
	commitOK(t, s, segment(txnBatch(id, 0, 7002, epoch, 0, 2))) // 12-13
	commitOK(t, s, segment(batch(id, 0, 0, 10, 2)))             // 14-15
	all := func() []int64 {
		var last []int64
		for _, a := range abortedTxns(t, s, id, 0, 0, 100) {
			last = append(last, a.LastOffset)
		}
		return last
	}
	advance := func(to int64, want metastore.PartitionOffsets) {
		t.Helper()
		got, err := s.AdvanceLogStart(ctx, id, 0, to)
		if err != nil || got != want {
			t.Fatalf("AdvanceLogStart(%d) = %+v, %v; want %+v", to, got, err, want)
		}
	}
	advance(3, metastore.PartitionOffsets{LogStartOffset: 3, LastStableOffset: 12, HighWatermark: 16})
	if got := all(); !slices.Equal(got, []int64{3, 9}) {
		t.Fatalf("aborted entries after log start 3: last offsets %v, want 3 9", got)
	}
	advance(4, metastore.PartitionOffsets{LogStartOffset: 4, LastStableOffset: 12, HighWatermark: 16})
	if got := all(); !slices.Equal(got, []int64{9}) {
		t.Fatalf("aborted entries after log start 4: last offsets %v, want 9", got)
	}
	advance(10, metastore.PartitionOffsets{LogStartOffset: 10, LastStableOffset: 12, HighWatermark: 16})
	if got := all(); len(got) != 0 {
		t.Fatalf("aborted entries after log start 10: last offsets %v, want none", got)
	}
	// Past the open transaction's first offset: the last stable offset
	// stays at the log start, never below it.
	advance(metastore.LogStartHighWatermark, metastore.PartitionOffsets{LogStartOffset: 16, LastStableOffset: 16, HighWatermark: 16})
	wantOffsets(t, s, id, 0, 16, 16, 16)
	us, err := s.PartitionUsage(ctx, id)
	if err != nil || len(us) != 2 {
		t.Fatalf("PartitionUsage = %+v, %v", us, err)
	}
	if got, want := us[0].PartitionOffsets, (metastore.PartitionOffsets{LogStartOffset: 16, LastStableOffset: 16, HighWatermark: 16}); got != want {
		t.Fatalf("PartitionUsage offsets %+v, want %+v", got, want)
	}
	commitOK(t, s, segment(batch(id, 0, 0, 10, 2))) // 16-17
	wantOffsets(t, s, id, 0, 16, 16, 18)
	us, err = s.PartitionUsage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := us[0].PartitionOffsets, (metastore.PartitionOffsets{LogStartOffset: 16, LastStableOffset: 16, HighWatermark: 18}); got != want {
		t.Fatalf("PartitionUsage offsets %+v, want %+v", got, want)
	}
	if got, want := us[1].PartitionOffsets, (metastore.PartitionOffsets{}); got != want {
		t.Fatalf("PartitionUsage offsets of partition 1 %+v, want %+v", got, want)
	}
	end(t, s, open, true, p0...) // 18
	wantOffsets(t, s, id, 0, 16, 19, 19)
}

// testTxnSharedMarkers: the markers of two transactions that end at once
// may share one object (txncoord uploads them together); each EndTxn
// names its own batches in it. Both commit, the object is referenced by
// both ends' extents, and it becomes deletable only once neither refers to
// it any more (here: never, while the partitions exist); the ledger knows
// it once, at its one size.
func testTxnSharedMarkers(t *testing.T, s txnStore) {
	out := createTopic(t, s, "out", 2)
	a := ongoing("a", 7000, 0, 0, []metastore.TopicPartition{tp(out.ID, 0)})
	a.Version = saveTxn(t, s, a)
	b := ongoing("b", 7001, 0, 0, []metastore.TopicPartition{tp(out.ID, 0), tp(out.ID, 1)})
	b.Version = saveTxn(t, s, b)
	commitOK(t, s, segment(txnBatch(out.ID, 0, 7000, 0, 0, 2), txnBatch(out.ID, 0, 7001, 0, 0, 3), txnBatch(out.ID, 1, 7001, 0, 0, 1)))

	shared := markers(7000, 0, tp(out.ID, 0), tp(out.ID, 0), tp(out.ID, 1))
	ca := metastore.SegmentCommit{Object: shared.Object, Size: shared.Size, Batches: shared.Batches[:1]}
	ca.Batches[0].ProducerID = 7000
	cb := metastore.SegmentCommit{Object: shared.Object, Size: shared.Size, Batches: slices.Clone(shared.Batches[1:])}
	for i := range cb.Batches {
		cb.Batches[i].ProducerID = 7001
	}
	ra := endTxn(t, s, metastore.TxnEnd{Next: ended(a, true), ProducerID: 7000, Commit: true, Markers: ca})
	rb := endTxn(t, s, metastore.TxnEnd{Next: ended(b, false), ProducerID: 7001, Commit: false, Markers: cb})
	if !slices.Equal(ra.MarkerOffsets, []int64{5}) || !slices.Equal(rb.MarkerOffsets, []int64{6, 1}) {
		t.Fatalf("marker offsets %v and %v, want [5] and [6 1]", ra.MarkerOffsets, rb.MarkerOffsets)
	}
	wantOffsets(t, s, out.ID, 0, 0, 7, 7)
	wantOffsets(t, s, out.ID, 1, 0, 2, 2)
	var named []string
	for p := range int32(2) {
		for _, e := range extents(t, s, out.ID, p, 0, 10) {
			if e.Object == shared.Object {
				named = append(named, fmt.Sprintf("%d@%d+%d", p, e.BaseOffset, e.ByteOffset))
			}
		}
	}
	if want := []string{"0@5+0", "0@6+30", "1@1+60"}; !slices.Equal(named, want) {
		t.Errorf("extents in the shared object %v, want %v", named, want)
	}
	if got := abortedTxns(t, s, out.ID, 0, 0, 100); len(got) != 1 || got[0].ProducerID != 7001 {
		t.Errorf("aborted index of out/0: %+v, want b's transaction only", got)
	}
	del, err := s.ListDeletable(t.Context(), time.Now().Add(clockSlack), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range del {
		if o.Key == shared.Object {
			t.Errorf("the shared markers object is deletable while both ends refer to it")
		}
	}
	if size, known, err := s.ObjectSize(t.Context(), shared.Object); err != nil || !known || size != shared.Size {
		t.Errorf("ObjectSize(shared) = %d, known %v, %v; want %d", size, known, err, shared.Size)
	}
}

// testReplaceDropsAborted checks that ReplaceExtents removes the aborted
// entries it names with the swap, and only then: not when the swap
// conflicts, not when an entry lies outside the replaced range.
func testReplaceDropsAborted(t *testing.T, s txnStore) {
	const epoch = 0
	ctx := t.Context()
	topic := createTopic(t, s, "t", 1)
	id := topic.ID
	p0 := []metastore.TopicPartition{tp(id, 0)}
	txns := map[string]metastore.Txn{}
	for i, name := range []string{"a", "b"} {
		txn := ongoing(name, int64(8000+i), epoch, 0, p0)
		txn.Version = saveTxn(t, s, txn)
		txns[name] = txn
	}
	commitOK(t, s, segment(txnBatch(id, 0, 8000, epoch, 0, 2))) // 0-1
	end(t, s, txns["a"], false, p0...)                          // 2
	commitOK(t, s, segment(txnBatch(id, 0, 8001, epoch, 0, 1))) // 3
	end(t, s, txns["b"], false, p0...)                          // 4
	a := metastore.AbortedTxn{ProducerID: 8000, FirstOffset: 0, LastOffset: 2}
	b := metastore.AbortedTxn{ProducerID: 8001, FirstOffset: 3, LastOffset: 4}
	if got := abortedTxns(t, s, id, 0, 0, 100); !slices.Equal(got, []metastore.AbortedTxn{a, b}) {
		t.Fatalf("aborted before: %+v", got)
	}
	old := extents(t, s, id, 0, 0, 0)
	swap := func(old []metastore.Extent, drop ...int64) error {
		return s.ReplaceExtents(ctx, []metastore.PartitionReplacement{{
			TopicID: id, Partition: 0, Old: refs(old...),
			New:         []metastore.Extent{newExtent("compacted/"+uuid.NewString(), 500, 0, 100, old[0].BaseOffset, old[len(old)-1].EndOffset)},
			DropAborted: drop,
		}})
	}
	wantErr(t, "an entry outside the range", swap(old[:2], 4), metastore.ErrInvalidReplacement)
	if err := swap(old[:2], 2, 1); err != nil { // 1 names no entry
		t.Fatal(err)
	}
	if got := abortedTxns(t, s, id, 0, 0, 100); !slices.Equal(got, []metastore.AbortedTxn{b}) {
		t.Fatalf("aborted after dropping a's entry: %+v, want only b", got)
	}
	// A conflicting swap (its old extents are gone) drops nothing.
	if err := swap(old, 4); !errors.Is(err, metastore.ErrExtentsChanged) {
		t.Fatalf("stale swap: %v, want ErrExtentsChanged", err)
	}
	if got := abortedTxns(t, s, id, 0, 0, 100); !slices.Equal(got, []metastore.AbortedTxn{b}) {
		t.Fatalf("aborted after a conflicting swap: %+v, want b kept", got)
	}
	wantOffsets(t, s, id, 0, 0, 5, 5)
}
