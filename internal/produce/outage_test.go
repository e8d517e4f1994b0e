package produce_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

// flakyStore is a metadata store that can be unreachable: its commits
// and object lookups then fail with a refused connection, without
// touching the store behind it. applyThenFail commits and then reports
// the connection lost (an answer lost on the way back).
type flakyStore struct {
	*fixture
	down          atomic.Bool
	applyThenFail atomic.Int32
	downAfterLost atomic.Bool // the store goes down with the answer it loses
	mu            sync.Mutex
	commits       []metastore.SegmentCommit // reached the store, in order
	results       [][]metastore.BatchResult
}

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

func (s *flakyStore) CommitSegment(ctx context.Context, c metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	rs, err := s.CommitSegments(ctx, []metastore.SegmentCommit{c})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// CommitSegments commits cs as CommitSegment commits one (the writer folds
// segments queued behind a commit: fold.go).
func (s *flakyStore) CommitSegments(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("control plane: %w", errRefused)
	}
	var (
		rs  [][]metastore.BatchResult
		err error
	)
	if len(cs) == 1 {
		var r []metastore.BatchResult
		r, err = s.store.CommitSegment(ctx, cs[0])
		rs = [][]metastore.BatchResult{r}
	} else {
		rs, err = s.store.CommitSegments(ctx, cs)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.commits = append(s.commits, cs...)
	s.results = append(s.results, rs...)
	s.mu.Unlock()
	if s.applyThenFail.Load() > 0 {
		s.applyThenFail.Add(-1)
		if s.downAfterLost.Load() {
			s.down.Store(true)
		}
		return nil, fmt.Errorf("connection lost: %w", syscall.ECONNRESET)
	}
	return rs, nil
}

func (s *flakyStore) KnownObjects(ctx context.Context, keys []string) (map[string]bool, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("control plane: %w", errRefused)
	}
	return s.store.KnownObjects(ctx, keys)
}

// producerBatch is a batch of an idempotent producer: records values
// tag-0.., base sequence seq.
func producerBatch(pid int64, epoch int16, seq int32, records int, tag string) []byte {
	var recs []recordbatch.Record
	for i := range records {
		recs = append(recs, recordbatch.Record{Value: fmt.Appendf(nil, "%s-%d", tag, i)})
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs...)
}

// readPartition returns the record values of a partition in offset order.
func (f *fixture) readPartition(t *testing.T, partition int32) []string {
	t.Helper()
	ctx := context.Background()
	exts, err := f.store.Extents(ctx, f.topic.ID, partition, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range exts {
		data, err := f.bucket.GetRange(ctx, e.Object, e.ByteOffset, e.ByteLength)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := recordbatch.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			recs, err := recordbatch.Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out = append(out, string(r.Value))
			}
		}
	}
	return out
}

func outageWriter(t *testing.T, s *flakyStore, o produce.OutageOptions) *produce.Writer {
	t.Helper()
	if o.RetryMin == 0 {
		o.RetryMin, o.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	}
	w := produce.NewWriter(s.bucket, s, produce.Options{Linger: 20 * time.Millisecond, FlushTimeout: 5 * time.Second, Outage: &o})
	t.Cleanup(w.Close)
	return w
}

// waitQueue waits until the writer's outage queue holds want segments.
func waitQueue(t *testing.T, w *produce.Writer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := w.OutageQueue()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outage queue holds %d segments after 10s, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOutageQueuesAndReplaysInOrder: with the store down, segments are
// acknowledged without offsets and queued; nothing is visible; once the
// store answers, the queue is committed in order and every acknowledged
// record is in its partition once, in the order it was acknowledged.
func TestOutageQueuesAndReplaysInOrder(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 2)}
	w := outageWriter(t, s, produce.OutageOptions{})

	// Before the outage: committed directly, with offsets.
	res, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(7, 0, 0, 2, "a0")))
	if err != nil || res.BaseOffset != 0 {
		t.Fatalf("before the outage: %+v %v, want offset 0", res, err)
	}
	s.down.Store(true)
	seq := int32(2)
	var want0, want1 []string
	want0 = append(want0, "a0-0", "a0-1")
	for i := range 6 { // one segment each (waited on one by one)
		tag := fmt.Sprintf("b%d", i)
		p0 := w.Append(s.topic.ID, "t", 0, producerBatch(7, 0, seq, 3, tag))
		p1 := w.Append(s.topic.ID, "t", 1, batch(1, tag)) // not idempotent
		for _, p := range []*produce.Pending{p0, p1} {
			res, err := wait(t, p)
			if err != nil {
				t.Fatalf("segment %d during the outage: %v", i, err)
			}
			if res.BaseOffset != -1 || res.LogStartOffset != -1 {
				t.Fatalf("segment %d during the outage answered %+v, want offsets -1", i, res)
			}
		}
		seq += 3
		want0 = append(want0, tag+"-0", tag+"-1", tag+"-2")
		want1 = append(want1, tag+"-0")
	}
	if n, bytes := w.OutageQueue(); n != 6 || bytes <= 0 {
		t.Fatalf("queue holds %d segments (%d bytes), want 6", n, bytes)
	}
	if got := s.readPartition(t, 0); len(got) != 2 {
		t.Fatalf("partition 0 shows %d records during the outage, want the 2 committed before it", len(got))
	}
	time.Sleep(100 * time.Millisecond) // several retries fail meanwhile
	s.down.Store(false)
	waitQueue(t, w, 0)

	// A segment after the replay is committed directly, after the
	// queued ones.
	res, err = wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(7, 0, seq, 1, "c")))
	if err != nil || res.BaseOffset != int64(len(want0)) {
		t.Fatalf("after the replay: %+v %v, want offset %d", res, err, len(want0))
	}
	want0 = append(want0, "c-0")
	if got := s.readPartition(t, 0); fmt.Sprint(got) != fmt.Sprint(want0) {
		t.Fatalf("partition 0:\n got %v\nwant %v", got, want0)
	}
	if got := s.readPartition(t, 1); fmt.Sprint(got) != fmt.Sprint(want1) {
		t.Fatalf("partition 1:\n got %v\nwant %v", got, want1)
	}
}

// TestOutageDuplicateRetryQueuedOnce: a producer's retry of a batch the
// queue holds is answered as a duplicate and not queued again; a batch
// after a gap is refused OUT_OF_ORDER_SEQUENCE; a transactional batch
// is refused with a retriable error.
func TestOutageDuplicateRetryQueuedOnce(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := outageWriter(t, s, produce.OutageOptions{})
	s.down.Store(true)
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(9, 0, 0, 2, "x"))); err != nil {
		t.Fatal(err)
	}
	res, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(9, 0, 0, 2, "x"))) // the retry
	if err != nil || !res.Duplicate || res.BaseOffset != -1 {
		t.Fatalf("retry of a queued batch: %+v %v, want a duplicate at -1", res, err)
	}
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(9, 0, 5, 1, "gap"))); !errors.Is(err, metastore.ErrOutOfOrderSequence) {
		t.Fatalf("batch after a gap: %v, want ErrOutOfOrderSequence", err)
	}
	txn := recordbatch.Build(recordbatch.BuildOptions{ProducerID: 11, ProducerEpoch: 0, BaseSequence: 0, Transactional: true},
		recordbatch.Record{Value: []byte("t")})
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, txn)); !errors.Is(err, produce.ErrOutageTransactional) || !errors.Is(err, produce.ErrStorage) {
		t.Fatalf("transactional batch: %v, want ErrOutageTransactional (retriable)", err)
	}
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(9, 0, 2, 1, "y"))); err != nil {
		t.Fatal(err)
	}
	// Segments holding only refused or duplicate batches are not queued.
	if n, _ := w.OutageQueue(); n != 2 {
		t.Fatalf("queue holds %d segments, want 2", n)
	}
	s.down.Store(false)
	waitQueue(t, w, 0)
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[x-0 x-1 y-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
}

// TestOutageReplayOutOfOrderCommittedUnchecked: a queued batch the store
// refuses by its sequence on replay (its producer wrote through another
// agent meanwhile) was acknowledged: it is committed without the check,
// not dropped.
func TestOutageReplayOutOfOrderCommittedUnchecked(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := outageWriter(t, s, produce.OutageOptions{})
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(5, 0, 0, 2, "first"))); err != nil {
		t.Fatal(err)
	}
	s.down.Store(true)
	// Sequence 10 next, as if 2..9 went through another agent: the
	// queue accepts it (it holds nothing of this producer), the store
	// refuses it as out of order on replay.
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(5, 0, 10, 2, "late"))); err != nil {
		t.Fatal(err)
	}
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, "plain"))); err != nil {
		t.Fatal(err)
	}
	s.down.Store(false)
	waitQueue(t, w, 0)
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[first-0 first-1 late-0 late-1 plain-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.commits) != 4 || s.results[1][0].Err == nil || s.commits[2].Batches[0].ProducerID != -1 {
		t.Fatalf("commits %+v: want the refused batch committed again without its producer id", s.commits)
	}
}

// TestOutageAmbiguousCommitNotAppliedTwice: a commit applied by the store
// whose answer was lost is queued; the replay finds its object known and
// does not commit it again (a non-idempotent batch would be duplicated).
func TestOutageAmbiguousCommitNotAppliedTwice(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := outageWriter(t, s, produce.OutageOptions{})
	s.applyThenFail.Store(1)
	res, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(2, "once")))
	if err != nil || res.BaseOffset != -1 {
		t.Fatalf("commit with a lost answer: %+v %v, want acknowledged at -1", res, err)
	}
	waitQueue(t, w, 0)
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, "next"))); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[once-0 once-1 next-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}

	// An idempotent batch is sent again (it may have been refused in the
	// lost answer); the store calls it a duplicate.
	s.applyThenFail.Store(1)
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(8, 0, 0, 1, "idem"))); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, w, 0)
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[once-0 once-1 next-0 idem-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last := s.results[len(s.results)-1]; len(last) != 1 || !last[0].Duplicate {
		t.Fatalf("the idempotent batch sent again: %+v, want a duplicate", last)
	}
}

// TestOutageQueueBound: past its bound the queue refuses new segments
// with a retriable error; a producer whose batch was refused has its
// next batch refused until the retry comes; the queue still replays.
func TestOutageQueueBound(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := outageWriter(t, s, produce.OutageOptions{MaxSegments: 2})
	s.down.Store(true)
	for i := range 2 {
		if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(3, 0, int32(i), 1, fmt.Sprint("q", i)))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(3, 0, 2, 1, "full")))
	if !errors.Is(err, produce.ErrOutageQueueFull) || !errors.Is(err, produce.ErrStorage) {
		t.Fatalf("third segment: %v, want ErrOutageQueueFull", err)
	}
	s.down.Store(false)
	waitQueue(t, w, 0)
	// The retry of the refused batch is committed in its place.
	if res, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(3, 0, 2, 1, "full"))); err != nil || res.BaseOffset != 2 {
		t.Fatalf("retry after the replay: %+v %v, want offset 2", res, err)
	}
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[q0-0 q1-0 full-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
}

// TestOutageGapAfterRefusal: a batch that follows one refused by the
// queue's bound is refused too, so that it cannot overtake its retry.
func TestOutageGapAfterRefusal(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := outageWriter(t, s, produce.OutageOptions{MaxBytes: 2000})
	s.down.Store(true)
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, "fill"))); err != nil {
		t.Fatal(err)
	}
	// One segment too large for the queue: refused whole.
	pa := w.Append(s.topic.ID, "t", 0, producerBatch(4, 0, 0, 1, "a"))
	pbig := w.Append(s.topic.ID, "t", 0, batch(300, "big"))
	for _, p := range []*produce.Pending{pa, pbig} {
		if _, err := wait(t, p); !errors.Is(err, produce.ErrOutageQueueFull) {
			t.Fatalf("want the queue full, got %v", err)
		}
	}
	// Small enough, but sequence 1 before 0's retry is out of order.
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(4, 0, 1, 1, "b"))); !errors.Is(err, metastore.ErrOutOfOrderSequence) {
		t.Fatalf("batch after a refused one: %v, want ErrOutOfOrderSequence", err)
	}
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(4, 0, 0, 1, "a"))); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(4, 0, 1, 1, "b"))); err != nil {
		t.Fatalf("the batch after the retry: %v", err)
	}
	s.down.Store(false)
	waitQueue(t, w, 0)
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[fill-0 a-0 b-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
}

// TestOutageOffByDefault: without the option a commit to an unreachable
// store fails its batches, as it always did.
func TestOutageOffByDefault(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := produce.NewWriter(s.bucket, s, produce.Options{Linger: 20 * time.Millisecond})
	defer w.Close()
	s.down.Store(true)
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, "x"))); !errors.Is(err, produce.ErrStorage) {
		t.Fatalf("commit to an unreachable store: %v, want ErrStorage", err)
	}
	if n, _ := w.OutageQueue(); n != 0 {
		t.Fatalf("queue holds %d without the mode", n)
	}
}

func TestUnreachable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errRefused, true},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("lost: %w", errors.New("eof")), false},
		{metastore.ErrUnknownTopicOrPartition, false},
		{metastore.ErrClosed, false},
		{nil, false},
	} {
		if got := metastore.Unreachable(c.err); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestOutageClose: a writer closed during an outage fails the segments it
// flushes then (its producers retry elsewhere) instead of queueing them,
// replays what it queued before if the store answers within its flush
// timeout, and reports what it could not replay.
func TestOutageClose(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	o := produce.OutageOptions{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	w := produce.NewWriter(s.bucket, s, produce.Options{Linger: time.Hour, FlushTimeout: 2 * time.Second, Outage: &o})
	s.down.Store(true)
	first := w.Append(s.topic.ID, "t", 0, batch(1, "queued"))
	w.Flush()
	if _, err := wait(t, first); err != nil {
		t.Fatal(err)
	}
	last := w.Append(s.topic.ID, "t", 0, batch(1, "at-close")) // flushed by Close
	go func() {
		time.Sleep(300 * time.Millisecond)
		s.down.Store(false)
	}()
	w.Close()
	if _, err := wait(t, last); !errors.Is(err, produce.ErrOutageQueueFull) {
		t.Fatalf("segment flushed by Close during the outage: %v, want it failed", err)
	}
	if n, _ := w.OutageQueue(); n != 0 {
		t.Fatalf("%d segments still queued after Close with the store back", n)
	}
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[queued-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
}

// TestOutageCloseTwice: closing a writer with the mode on twice is safe.
func TestOutageCloseTwice(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	w := produce.NewWriter(s.bucket, s, produce.Options{Linger: 10 * time.Millisecond, Outage: &produce.OutageOptions{}})
	w.Close()
	w.Close()
}

// manifests lists the outage manifests in the fixture's bucket.
func (f *fixture) manifests(t *testing.T) []string {
	t.Helper()
	var keys []string
	if err := f.bucket.List(context.Background(), produce.ManifestPrefix, func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestOutageManifestSurvivesRestart: with a manifest name, the queue of a
// writer that stops during an outage without replaying is in the bucket;
// a writer started under the same name loads it ahead of its own
// segments and replays it once the store answers. A commit the first
// writer had applied (its answer lost) is not applied twice.
func TestOutageManifestSurvivesRestart(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	o := produce.OutageOptions{ManifestName: "agent-0", RetryMin: time.Minute, RetryMax: time.Minute}
	w1 := produce.NewWriter(s.bucket, s, produce.Options{Linger: 10 * time.Millisecond, FlushTimeout: 300 * time.Millisecond, Outage: &o})
	// The first commit is applied, its answer lost, and the store is
	// down from then on.
	s.applyThenFail.Store(1)
	s.downAfterLost.Store(true)
	if _, err := wait(t, w1.Append(s.topic.ID, "t", 0, batch(1, "applied"))); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := wait(t, w1.Append(s.topic.ID, "t", 0, producerBatch(6, 0, int32(i), 1, fmt.Sprint("q", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.manifests(t)); got != 4 {
		t.Fatalf("%d manifests in the bucket, want 4", got)
	}
	w1.Close() // the store is down: nothing replayed, the manifests stay
	if got := len(s.manifests(t)); got != 4 {
		t.Fatalf("%d manifests after the first writer closed, want 4", got)
	}

	o2 := produce.OutageOptions{ManifestName: "agent-0", RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	w2 := produce.NewWriter(s.bucket, s, produce.Options{Linger: 10 * time.Millisecond, FlushTimeout: 2 * time.Second, Outage: &o2})
	defer w2.Close()
	n, err := w2.LoadOutageManifests(context.Background())
	if err != nil || n != 4 {
		t.Fatalf("LoadOutageManifests: %d, %v; want 4", n, err)
	}
	// A segment of the new writer goes behind the loaded ones.
	after := w2.Append(s.topic.ID, "t", 0, producerBatch(6, 0, 3, 1, "after"))
	if _, err := wait(t, after); err != nil {
		t.Fatal(err)
	}
	s.down.Store(false)
	waitQueue(t, w2, 0)
	if got, want := fmt.Sprint(s.readPartition(t, 0)), "[applied-0 q0-0 q1-0 q2-0 after-0]"; got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
	// Deleted in the background once replayed.
	for deadline := time.Now().Add(5 * time.Second); len(s.manifests(t)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("manifests left 5s after the replay: %v", s.manifests(t))
		}
	}
}

// TestOutageManifestHostile: a manifest that is not one Floe writes
// stops the load with an error instead of queueing it.
func TestOutageManifestHostile(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	for name, body := range map[string]string{
		"garbage":      "{not json",
		"wrong object": `{"v":1,"commit":{"Object":"elsewhere/x","Size":10,"Batches":[{"OffsetCount":1,"ByteLength":5}]}}`,
		"out of range": `{"v":1,"commit":{"Object":"segments/x","Size":10,"Batches":[{"OffsetCount":1,"ByteOffset":8,"ByteLength":5}]}}`,
		"no batches":   `{"v":1,"commit":{"Object":"segments/x","Size":10}}`,
	} {
		if err := s.bucket.Put(context.Background(), produce.ManifestPrefix+"bad/0001", []byte(body)); err != nil {
			t.Fatal(err)
		}
		o := produce.OutageOptions{ManifestName: "bad"}
		w := produce.NewWriter(s.bucket, s, produce.Options{Outage: &o})
		if n, err := w.LoadOutageManifests(context.Background()); err == nil {
			t.Errorf("%s: loaded %d manifests, want an error", name, n)
		}
		w.Close()
	}
}

func TestValidManifestName(t *testing.T) {
	for name, want := range map[string]bool{
		"agent-0": true, "floe-agent-2.zone_a": true, "a": true,
		"": false, ".": false, "..": false, ".hidden": false, "a/b": false, "a b": false,
		strings.Repeat("x", 128): true, strings.Repeat("x", 129): false,
	} {
		if got := produce.ValidManifestName(name); got != want {
			t.Errorf("ValidManifestName(%q) = %v, want %v", name, got, want)
		}
	}
}
