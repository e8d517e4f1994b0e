package produce_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

// open reports whether p is still unanswered after a short wait: its
// segment was not flushed.
func stillOpen(p *produce.Pending) bool {
	select {
	case <-p.Done():
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

// TestEarlyFlushWhenEveryWindowWaits: with a linger of an hour (and no
// reserve, the default), a segment is flushed only when every sender with data in it has
// its whole window of requests waiting on it.
func TestEarlyFlushWhenEveryWindowWaits(t *testing.T) {
	f := newFixture(t, 2)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, FlushMinInterval: time.Nanosecond})
	defer w.Close()

	// A connection with one request in flight, seen for the first time:
	// its window is one request, all of it waiting.
	r1 := w.Begin(1, true)
	p1 := r1.Append(f.topic.ID, "t", 0, batch(2, "a"))
	r1.Parked()
	if _, err := wait(t, p1); err != nil {
		t.Fatal(err)
	}
	r1.End()

	// Two requests in flight at once: the window is learnt as two.
	r2, r3 := w.Begin(1, true), w.Begin(1, true)
	p2 := r2.Append(f.topic.ID, "t", 0, batch(1, "b"))
	p3 := r3.Append(f.topic.ID, "t", 1, batch(1, "c"))
	r2.Parked()
	r3.Parked()
	for _, p := range []*produce.Pending{p2, p3} {
		if _, err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	r2.End()
	r3.End()

	// Now one request is half the window: the client may send another,
	// so the segment stays open until it does.
	r4 := w.Begin(1, true)
	p4 := r4.Append(f.topic.ID, "t", 0, batch(1, "d"))
	r4.Parked()
	if !stillOpen(p4) {
		t.Fatal("flushed with half the window free")
	}
	r5 := w.Begin(1, true)
	p5 := r5.Append(f.topic.ID, "t", 0, batch(1, "e"))
	r5.Parked()
	for i, p := range []*produce.Pending{p4, p5} {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(3 + i); res.BaseOffset != want {
			t.Fatalf("batch %d: offset %d, want %d", i, res.BaseOffset, want)
		}
	}
	r4.End()
	r5.End()
	if puts := f.bucket.Calls(faulty.Put); puts != 3 {
		t.Fatalf("%d PUTs, want 3 early flushes", puts)
	}
}

// idemBatch is a one-record batch of producer 7 at sequence seq.
func idemBatch(seq int32, tag string) []byte {
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: 7, BaseSequence: seq},
		recordbatch.Record{Value: []byte(tag)})
}

// TestEarlyFlushLeavesAReserve: with a reserve of two, an idempotent
// connection's segment (window 5) goes once three of its requests wait on
// it, not five; a request that arrives while that segment is in flight
// waits in the next one until three wait there, and the batches keep
// their order.
func TestEarlyFlushLeavesAReserve(t *testing.T) {
	f := newFixture(t, 1)
	hold := make(chan struct{})
	rec := &heldPuts{Bucket: f.bucket, hold: hold}
	w := produce.NewWriter(rec, f.store, produce.Options{Linger: time.Hour, FlushMinInterval: time.Nanosecond, FlushWindowReserve: 2})
	defer w.Close()

	var seq int32
	send := func() (*produce.Request, *produce.Pending) {
		r := w.Begin(1, true)
		p := r.Append(f.topic.ID, "t", 0, idemBatch(seq, "v"))
		seq++
		r.Parked()
		return r, p
	}
	r0, p0 := send()
	r1, p1 := send()
	if !stillOpen(p0) {
		t.Fatal("flushed with two of five waiting and a reserve of two")
	}
	r2, p2 := send() // three of five: the segment goes; its PUT is held
	// A fourth request comes while the first three are in flight: it
	// waits in the next segment, which is not waited on alone.
	r3, p3 := send()
	close(hold)
	for _, p := range []*produce.Pending{p0, p1, p2} {
		if _, err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	r0.End()
	r1.End()
	r2.End()
	if !stillOpen(p3) {
		t.Fatal("flushed with one of five waiting")
	}
	r4, p4 := send()
	r5, p5 := send()
	for i, p := range []*produce.Pending{p3, p4, p5} {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(3 + i); res.BaseOffset != want {
			t.Fatalf("batch %d: offset %d, want %d", 3+i, res.BaseOffset, want)
		}
	}
	r3.End()
	r4.End()
	r5.End()
	if puts := f.bucket.Calls(faulty.Put); puts != 2 {
		t.Fatalf("%d PUTs, want 2 early flushes of three requests each", puts)
	}
}

// heldPuts holds every PUT until hold is closed.
type heldPuts struct {
	objstore.Bucket
	hold chan struct{}
}

func (b *heldPuts) Put(ctx context.Context, key string, data []byte) error {
	select {
	case <-b.hold:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Bucket.Put(ctx, key, data)
}

// TestNoEarlyFlushWhileASenderMaySend: a second connection with a free
// slot, a request still waiting on an earlier segment, or a batch from a
// sender that does not wait (acks=0) keeps the segment open (no reserve).
func TestNoEarlyFlushWhileASenderMaySend(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, FlushMinInterval: time.Nanosecond})
	defer w.Close()

	// acks=0 beside a full window.
	full := w.Begin(1, true)
	pFull := full.Append(f.topic.ID, "t", 0, batch(1, "full"))
	noAck := w.Begin(2, false)
	noAck.Append(f.topic.ID, "t", 0, batch(1, "noack"))
	noAck.Parked()
	full.Parked()
	if !stillOpen(pFull) {
		t.Fatal("flushed early with an acks=0 batch in the segment")
	}
	noAck.End()
	w.Flush()
	if _, err := wait(t, pFull); err != nil {
		t.Fatal(err)
	}
	full.End()

	// Connection 3 learns a window of two; with one request on a
	// flushing segment and one in the open segment it is not waiting
	// on the open segment alone.
	a, b := w.Begin(3, true), w.Begin(3, true)
	pa := a.Append(f.topic.ID, "t", 0, batch(1, "a"))
	pb := b.Append(f.topic.ID, "t", 0, batch(1, "b"))
	a.Parked()
	b.Parked()
	for _, p := range []*produce.Pending{pa, pb} {
		if _, err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	a.End()
	b.End()
	// c is answered but not yet ended (its response is being written)
	// while d waits in the open segment.
	c := w.Begin(3, true)
	pc := c.Append(f.topic.ID, "t", 0, batch(1, "c"))
	w.Flush()
	if _, err := wait(t, pc); err != nil {
		t.Fatal(err)
	}
	d := w.Begin(3, true)
	pd := d.Append(f.topic.ID, "t", 0, batch(1, "d"))
	d.Parked()
	if !stillOpen(pd) {
		t.Fatal("flushed early while a request of the window was still on an earlier segment")
	}
	// Once c ends, d alone is half the window: still open.
	c.End()
	if !stillOpen(pd) {
		t.Fatal("flushed early with half the window free")
	}
	// A second, full connection does not change that.
	other := w.Begin(4, true)
	other.Append(f.topic.ID, "t", 0, batch(1, "other"))
	other.Parked()
	if !stillOpen(pd) {
		t.Fatal("flushed early while connection 3 may still send")
	}
	// The last slot of connection 3 fills: every window waits.
	e := w.Begin(3, true)
	pe := e.Append(f.topic.ID, "t", 0, batch(1, "e"))
	e.Parked()
	for _, p := range []*produce.Pending{pd, pe} {
		if _, err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	d.End()
	e.End()
	other.End()
}

// TestEarlyFlushMinInterval: early flushes start no closer together than
// the minimum interval, which bounds the PUTs they add.
func TestEarlyFlushMinInterval(t *testing.T) {
	f := newFixture(t, 1)
	const interval = 300 * time.Millisecond
	rec := &putTimes{Bucket: f.bucket}
	w := produce.NewWriter(rec, f.store, produce.Options{Linger: time.Hour, FlushMinInterval: interval})
	defer w.Close()
	for i := range 3 {
		r := w.Begin(7, true)
		p := r.Append(f.topic.ID, "t", 0, batch(1, "m"))
		r.Parked()
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(i) {
			t.Fatalf("request %d: offset %d", i, res.BaseOffset)
		}
		r.End()
	}
	times := rec.get()
	if len(times) != 3 {
		t.Fatalf("%d PUTs, want 3", len(times))
	}
	for i := 1; i < len(times); i++ {
		// The interval runs between flush starts; a PUT starts once its
		// object is built, so allow a little for that.
		if gap := times[i].Sub(times[i-1]); gap < interval*9/10 {
			t.Fatalf("PUT %d started %v after the previous one, within the minimum interval %v", i, gap, interval)
		}
	}
}

// putTimes records when each PUT starts.
type putTimes struct {
	objstore.Bucket
	mu    sync.Mutex
	times []time.Time
}

func (b *putTimes) Put(ctx context.Context, key string, data []byte) error {
	b.mu.Lock()
	b.times = append(b.times, time.Now())
	b.mu.Unlock()
	return b.Bucket.Put(ctx, key, data)
}

func (b *putTimes) get() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.times...)
}

// TestEarlyFlushOff: with DisableEarlyFlush the linger decides.
func TestEarlyFlushOff(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, DisableEarlyFlush: true})
	defer w.Close()
	r := w.Begin(1, true)
	p := r.Append(f.topic.ID, "t", 0, batch(1, "x"))
	r.Parked()
	if !stillOpen(p) {
		t.Fatal("flushed early with early flush off")
	}
	w.Flush()
	if _, err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	r.End()
}

// TestIdempotentWindowPrior: a connection sending idempotent batches is
// assumed to have 5 requests in flight at most, not 1, until it has shown
// its real window: one request does not flush the segment, five do.
func TestIdempotentWindowPrior(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, FlushMinInterval: time.Nanosecond})
	defer w.Close()
	pid, epoch, err := f.store.InitProducerID(context.Background(), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*produce.Request
	var ps []*produce.Pending
	for i := range 5 {
		b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: int32(i)}, recordbatch.Record{Value: []byte("v")})
		r := w.Begin(9, true)
		ps = append(ps, r.Append(f.topic.ID, "t", 0, b))
		r.Parked()
		reqs = append(reqs, r)
		if i == 0 && !stillOpen(ps[0]) {
			t.Fatal("an idempotent producer's first request flushed the segment early")
		}
	}
	for i, p := range ps {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(i) {
			t.Fatalf("request %d: offset %d", i, res.BaseOffset)
		}
	}
	for _, r := range reqs {
		r.End()
	}
	if puts := f.bucket.Calls(faulty.Put); puts != 1 {
		t.Fatalf("%d PUTs, want one early flush of the five", puts)
	}
}

// TestLatencyTargetStream: batches asking for a shorter linger go to a
// faster stream of their own, flushed on its linger while the agent's
// stream keeps its own; commits keep flush order.
func TestLatencyTargetStream(t *testing.T) {
	f := newFixture(t, 2)
	other, err := f.store.CreateTopic(context.Background(), metastore.TopicSpec{Name: "slow", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, DisableEarlyFlush: true})
	defer w.Close()
	slow := w.Begin(1, true)
	pSlow := slow.Append(other.ID, "slow", 0, batch(1, "slow"))
	fast := w.Begin(2, true)
	pFast := fast.AppendWithin(50*time.Millisecond, f.topic.ID, "t", 0, batch(1, "fast"))
	if _, err := wait(t, pFast); err != nil {
		t.Fatal(err)
	}
	if !stillOpen(pSlow) {
		t.Fatal("the agent's stream was flushed with the fast one")
	}
	// A second topic with the same target shares the fast stream.
	fast2 := w.Begin(3, true)
	pFast2 := fast2.AppendWithin(50*time.Millisecond, f.topic.ID, "t", 1, batch(1, "fast2"))
	res, err := wait(t, pFast2)
	if err != nil || res.BaseOffset != 0 {
		t.Fatalf("second fast batch: offset %d, err %v", res.BaseOffset, err)
	}
	w.Flush()
	if _, err := wait(t, pSlow); err != nil {
		t.Fatal(err)
	}
	if puts := f.bucket.Calls(faulty.Put); puts != 3 {
		t.Fatalf("%d PUTs, want 2 fast segments and 1 slow", puts)
	}
	slow.End()
	fast.End()
	fast2.End()
}

// TestTopicKeepsItsStreamWhileBatchesWait: a topic whose target changes
// while a batch of it waits in the agent's open segment keeps going to
// that segment, so its partition's batches commit in order.
func TestTopicKeepsItsStreamWhileBatchesWait(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: 300 * time.Millisecond, DisableEarlyFlush: true})
	defer w.Close()
	r := w.Begin(1, true)
	first := r.Append(f.topic.ID, "t", 0, batch(1, "first"))
	r2 := w.Begin(1, true)
	second := r2.AppendWithin(10*time.Millisecond, f.topic.ID, "t", 0, batch(1, "second"))
	for i, p := range []*produce.Pending{first, second} {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(i) {
			t.Fatalf("batch %d at offset %d: reordered across streams", i, res.BaseOffset)
		}
	}
	if puts := f.bucket.Calls(faulty.Put); puts != 1 {
		t.Fatalf("%d PUTs, want both batches in the agent's segment", puts)
	}
	r.End()
	r2.End()
}

// TestRequestAcrossSizeFlushes: one request's batches of one topic that
// fill several segments keep their order, whichever segment each lands in.
func TestRequestAcrossSizeFlushes(t *testing.T) {
	f := newFixture(t, 3)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, MaxSegmentBytes: 1000, FlushMinInterval: time.Nanosecond})
	defer w.Close()
	r := w.Begin(1, true)
	var ps []*produce.Pending
	for i := range 60 { // ~90 bytes each: several size flushes
		ps = append(ps, r.AppendWithin(time.Duration(i%2)*20*time.Millisecond, f.topic.ID, "t", int32(i%3), batch(1, "s")))
	}
	r.Parked()
	next := map[int32]int64{}
	for i, p := range ps {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		part := int32(i % 3)
		if res.BaseOffset != next[part] {
			t.Fatalf("batch %d (partition %d): offset %d, want %d", i, part, res.BaseOffset, next[part])
		}
		next[part]++
	}
	r.End()
	if puts := f.bucket.Calls(faulty.Put); puts < 3 {
		t.Fatalf("%d PUTs, want several size flushes", puts)
	}
}
