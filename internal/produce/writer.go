// Package produce holds the agent's open segment: record batches from every
// connection, for all topics and partitions, gathered into one object that
// is flushed when the linger time passes, when it grows past a size limit,
// or early, when every connection with data in it has its whole window of
// produce requests waiting on it (see flush.go).
// A flush PUTs one immutable object, then makes one metadata commit that
// assigns offsets to every batch in it, then answers the producers.
//
// A batch is acknowledged only after both the PUT and the commit succeed.
// This package never rewrites a batch: bytes go to the bucket as the client
// sent them.
package produce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// ErrStorage wraps failures of the bucket or metadata store that prevented
// a batch from being committed. The client may retry.
var ErrStorage = errors.New("segment not stored")

// ErrClosed is returned for batches appended after Close started.
var ErrClosed = errors.New("writer closed")

// Options configure a Writer.
type Options struct {
	Linger          time.Duration // default 250ms
	MaxSegmentBytes int           // default 8 MiB
	// MaxInflightFlushes bounds concurrent uploads; commits still happen
	// in flush order. Default 4.
	MaxInflightFlushes int
	// FlushTimeout bounds the PUT and the commit of one segment, so a
	// hung bucket or store fails its producers (who retry) instead of
	// stalling the agent. Default 30s.
	FlushTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics
	// Uploaded is called after every successful PUT, before the commit
	// that makes the object's batches visible, so that readers woken by
	// the commit find the object in the agent's cache. An object whose
	// commit then fails is never referenced; caching it is harmless.
	Uploaded func(key string, object []byte)

	// DisableEarlyFlush keeps segments open for their whole linger even
	// when nothing more can arrive (see earlyFlush).
	DisableEarlyFlush bool
	// DisableCommitGroups commits every segment in a transaction of its
	// own even where the store commits groups (fold.go).
	DisableCommitGroups bool
	// FlushMinInterval is the shortest time between the start of one
	// flush and an early flush of the next segment, which bounds the
	// PUTs early flushes add to 1 / FlushMinInterval per second.
	// Default Linger / 2.
	FlushMinInterval time.Duration
	// FlushWindowReserve is how many requests of a connection's window
	// the early flush leaves free (flush.go): 0 (the default) none, the
	// early flush waits for whole windows; n > 0 that many (at most the
	// window less one); ReserveEstimated (-1) estimates it per
	// connection, the requests it sends during one flush, at most half
	// its window.
	FlushWindowReserve int

	// Observe, when set, is called once per flushed segment, after its
	// batches are answered (or failed), with what the flush took (a
	// measurement hook for floe bench; trace.go). It runs on the flush's
	// goroutine and must be quick.
	Observe func(FlushTrace)

	// Outage, when set, keeps producing while the metadata store is
	// unreachable: segments are acknowledged after their PUT and their
	// commits queued in memory and replayed in order (outage.go). Off
	// (nil) by default.
	Outage *OutageOptions
}

// Writer gathers batches into segments and flushes them.
type Writer struct {
	bucket objstore.Bucket
	store  metastore.Sequencer
	opts   Options
	log    *slog.Logger
	m      *Metrics

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a flush slot frees up or the writer closes
	closed  bool
	slots   int          // uploads in flight, all streams together
	chain   *commitChain // orders the commits, folds those queued (fold.go)
	flushes sync.WaitGroup

	// main is the stream of the agent's linger; streams holds it and the
	// faster ones of topics with a latency target, by linger (streams.go).
	main    *stream
	streams map[time.Duration]*stream

	// conns are the produce windows of the connections with requests in
	// flight or a window learnt, by connection id (see Begin).
	conns map[uint64]*connWindow
	// outage queues commits while the store is unreachable (nil: off).
	outage *outage

	// flushTime is a moving average of the time from a flush's start to
	// its commit, for the early flush's reserve (flush.go).
	flushTime time.Duration
}

// stream is a sequence of segments flushed with one linger. Each has at
// most one open segment; the flush slots and the commit chain are shared,
// so commits follow flush order across streams.
type stream struct {
	linger      time.Duration
	minInterval time.Duration // between flush starts, for early flushes
	open        *openSegment
	timer       *time.Timer // the open segment's linger
	early       *time.Timer // re-checks an early flush the minimum interval delayed
	lastFlush   time.Time   // when this stream's last flush started
}

type openSegment struct {
	st      *stream
	builder *segment.Builder
	pending []*Pending
	started time.Time
	// topics holds every topic with a batch in the segment, so that a
	// topic whose stream changes keeps its batches in order (streams.go).
	topics map[metastore.TopicID]struct{}
	// conns counts, per connection, its tracked requests with batches
	// in this segment; untracked is set when a batch arrived from a
	// request whose sender does not wait for it (acks=0, or no
	// connection), which may send more at any time.
	conns     map[uint64]int
	untracked bool

	// Set when the flush starts, for Options.Observe.
	trigger      string
	flushStart   time.Time
	connsAtFlush []ConnAtFlush
}

// Pending is the future result of one appended batch.
type Pending struct {
	done     chan struct{}
	result   metastore.BatchResult
	err      error
	appended time.Time
}

// Wait blocks until the batch is committed or failed, or ctx ends. A known
// result wins over an ended ctx: a draining agent cancels its context after
// the last commit, and a committed batch must not be answered as failed.
func (p *Pending) Wait(ctx context.Context) (metastore.BatchResult, error) {
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		select {
		case <-p.done:
			return p.result, p.err
		default:
		}
		return metastore.BatchResult{}, ctx.Err()
	}
}

// Done is closed when the result is known.
func (p *Pending) Done() <-chan struct{} { return p.done }

// NewWriter returns a Writer that commits the segments it uploads to
// bucket through store. Call Close to flush what is open and stop.
func NewWriter(bucket objstore.Bucket, store metastore.Sequencer, opts Options) *Writer {
	if opts.Linger <= 0 {
		opts.Linger = 250 * time.Millisecond
	}
	if opts.MaxSegmentBytes <= 0 {
		opts.MaxSegmentBytes = 8 << 20
	}
	if opts.MaxInflightFlushes <= 0 {
		opts.MaxInflightFlushes = 4
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 30 * time.Second
	}
	if opts.FlushMinInterval <= 0 {
		opts.FlushMinInterval = opts.Linger / 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	w := &Writer{bucket: bucket, store: store, opts: opts, log: opts.Logger, m: opts.Metrics, conns: make(map[uint64]*connWindow)}
	w.main = &stream{linger: opts.Linger, minInterval: opts.FlushMinInterval}
	w.streams = map[time.Duration]*stream{opts.Linger: w.main}
	w.cond = sync.NewCond(&w.mu)
	w.chain = newCommitChain()
	if opts.Outage != nil {
		w.outage = newOutage(w, *opts.Outage)
		w.m.outageOldest = func() float64 { return w.outage.oldest().Seconds() }
	}
	return w
}

// Append adds one validated batch to the open segment and returns its
// future, for a sender the writer does not track (see Begin): the segment
// it lands in is then never flushed early. Batches appended by one
// goroutine are committed in that order. Append blocks while the open
// segment is full and every flush slot is busy, which pushes back on the
// connection that sends too fast.
func (w *Writer) Append(topicID metastore.TopicID, topic string, partition int32, batch []byte) *Pending {
	return w.append(nil, 0, topicID, topic, partition, batch)
}

// append adds a batch for r (nil: untracked) to the open segment of the
// stream of linger (0: the agent's).
func (w *Writer) append(r *Request, linger time.Duration, topicID metastore.TopicID, topic string, partition int32, batch []byte) *Pending {
	p := &Pending{done: make(chan struct{}), appended: time.Now()}
	w.mu.Lock()
	defer w.mu.Unlock()
	var st *stream
	for {
		// Chosen again after every wait: the segment that held the
		// topic may have gone. A topic is in one open segment at most,
		// so while the request's previous batch's segment is open and
		// was for this topic, it is the choice (no lookups per batch).
		if r != nil && r.lastSeg != nil && r.lastSeg.st.open == r.lastSeg && r.lastTopic == topicID && r.lastLinger == linger {
			st = r.lastSeg.st
		} else {
			st = w.streamForLocked(linger, topicID)
		}
		if w.closed || st.open == nil || st.open.builder.Size() < w.opts.MaxSegmentBytes {
			break
		}
		if w.slots < w.opts.MaxInflightFlushes {
			w.startFlushLocked(st, "size")
			break
		}
		w.cond.Wait()
	}
	if w.closed {
		p.err = ErrClosed
		close(p.done)
		return p
	}
	if st.open == nil {
		seg := &openSegment{st: st, builder: segment.NewBuilder(), started: time.Now(),
			conns: make(map[uint64]int), topics: make(map[metastore.TopicID]struct{})}
		st.open = seg
		st.timer = time.AfterFunc(st.linger, func() { w.lingerExpired(seg) })
	}
	seg := st.open
	seg.builder.Add(topicID, topic, partition, batch)
	seg.pending = append(seg.pending, p)
	if r == nil || r.lastSeg != seg || r.lastTopic != topicID {
		seg.topics[topicID] = struct{}{}
	}
	if r != nil {
		r.lastSeg, r.lastTopic, r.lastLinger = seg, topicID, linger
	}
	w.track(r, seg, batch)
	if seg.builder.Size() >= w.opts.MaxSegmentBytes && w.slots < w.opts.MaxInflightFlushes {
		w.startFlushLocked(st, "size")
	}
	return p
}

// lingerExpired flushes seg if it is still its stream's open segment: a
// size or early flush may have taken it while the timer fired.
func (w *Writer) lingerExpired(seg *openSegment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := seg.st
	for st.open == seg && w.slots >= w.opts.MaxInflightFlushes && !w.closed {
		w.cond.Wait()
	}
	if st.open == seg {
		w.startFlushLocked(st, "linger")
	}
}

// startFlushLocked takes st's open segment and flushes it in the
// background; trigger names why, for the metrics. w.mu must be held.
func (w *Writer) startFlushLocked(st *stream, trigger string) {
	seg := st.open
	st.open = nil
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	if st.early != nil {
		st.early.Stop()
		st.early = nil
	}
	st.lastFlush = time.Now()
	seg.trigger, seg.flushStart = trigger, st.lastFlush
	if w.opts.Observe != nil {
		seg.connsAtFlush = w.connsAtFlushLocked(seg)
	}
	w.m.triggers.WithLabelValues(trigger).Inc()
	w.slots++
	l := w.chain.add()
	w.flushes.Add(1)
	go func() {
		defer w.flushes.Done()
		took, ok := w.flush(seg, l)
		w.mu.Lock()
		w.slots--
		if ok {
			if w.flushTime == 0 {
				w.flushTime = took
			} else {
				w.flushTime += (took - w.flushTime) >> ewmaShift
			}
		}
		for _, st := range w.streams {
			// A segment that filled up while every slot was busy goes
			// now, not when its linger expires.
			if st.open != nil && st.open.builder.Size() >= w.opts.MaxSegmentBytes && w.slots < w.opts.MaxInflightFlushes {
				w.startFlushLocked(st, "size")
			}
			// An early flush that found every slot busy goes now.
			w.maybeFlushEarlyLocked(st)
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
}

// flush uploads one segment, waits for the previous flush to commit so
// that commits happen in append order, commits (or finds its segment
// committed with the previous one's: fold.go), and answers every batch.
// It returns how long that took and whether it succeeded.
func (w *Writer) flush(seg *openSegment, l *link) (time.Duration, bool) {
	// A segment in flight is not cancelled by any client's context: it
	// completes or fails on its own, within FlushTimeout per step.
	start := time.Now()
	object, placements := seg.builder.Build()
	key := segment.NewKey()

	commit := metastore.SegmentCommit{Object: key, Size: int64(len(object)), Batches: make([]metastore.BatchCommit, len(placements))}
	for i, pl := range placements {
		h, err := recordbatch.ParseHeader(object[pl.ByteOffset : pl.ByteOffset+pl.ByteLength])
		if err != nil { // validated on Append; cannot happen
			<-l.prev
			close(l.mine)
			w.failAll(seg, fmt.Errorf("%w: batch %d of %s: %v", ErrStorage, i, key, err))
			return 0, false
		}
		commit.Batches[i] = metastore.BatchCommit{
			TopicID: pl.TopicID, Partition: pl.Partition,
			ByteOffset: pl.ByteOffset, ByteLength: pl.ByteLength,
			OffsetCount:  int64(h.LastOffsetDelta) + 1,
			MaxTimestamp: h.MaxTimestamp,
			ProducerID:   h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
			Transactional: h.IsTransactional(),
		}
	}

	putCtx, cancelPut := context.WithTimeout(context.Background(), w.opts.FlushTimeout)
	putErr := w.bucket.Put(putCtx, key, object)
	cancelPut()
	putDone := time.Now()
	w.m.putSeconds.Observe(putDone.Sub(start).Seconds())
	if putErr == nil {
		if w.opts.Uploaded != nil {
			w.opts.Uploaded(key, object)
		}
		w.chain.uploaded(l, commit)
	}
	<-l.prev
	defer close(l.mine)
	chainWait := time.Since(putDone)
	if putErr != nil {
		w.m.flushes.WithLabelValues("put_error").Inc()
		w.log.Warn("segment upload failed", "object", key, "bytes", len(object), "batches", len(seg.pending), "err", putErr)
		if w.outage != nil {
			// Their producers' later batches must not be queued past them.
			w.outage.failed(commit)
		}
		w.failAll(seg, fmt.Errorf("%w: put %s: %v", ErrStorage, key, putErr))
		if w.opts.Observe != nil {
			w.observe(seg, object, placements, putDone, time.Time{}, putErr)
		}
		return 0, false
	}

	commitStart := time.Now()
	taken, results, err := w.chain.takenOutcome(l)
	if !taken {
		// During a store outage the commit goes behind those queued
		// before it; the batches are answered without offsets
		// (outage.go).
		if w.outage != nil && w.outage.offer(seg, commit, false, false) {
			w.m.flushes.WithLabelValues("outage").Inc()
			if w.opts.Observe != nil {
				w.observe(seg, object, placements, putDone, time.Now(), nil)
			}
			return 0, false
		}
		commitCtx, cancelCommit := context.WithTimeout(context.Background(), w.opts.FlushTimeout)
		results, err = w.commitTurn(commitCtx, l, commit)
		cancelCommit()
		w.m.commitSeconds.Observe(time.Since(commitStart).Seconds())
	}
	if err == nil && len(results) != len(seg.pending) {
		err = fmt.Errorf("the store answered %d batches of %d", len(results), len(seg.pending))
	}
	if err != nil && w.outage != nil && w.outage.opts.Unreachable(err) {
		w.log.Warn("metadata store unreachable: offering the segment's commit to the outage queue", "object", key, "batches", len(seg.pending), "err", err)
		w.outage.offer(seg, commit, true, true)
		w.m.flushes.WithLabelValues("outage").Inc()
		if w.opts.Observe != nil {
			w.observe(seg, object, placements, putDone, time.Now(), nil)
		}
		return 0, false
	}
	if err != nil {
		w.m.flushes.WithLabelValues("commit_error").Inc()
		w.log.Warn("segment commit failed", "object", key, "batches", len(seg.pending), "err", err)
		w.failAll(seg, fmt.Errorf("%w: commit %s: %v", ErrStorage, key, err))
		if w.opts.Observe != nil {
			w.observe(seg, object, placements, putDone, time.Time{}, err)
		}
		return 0, false
	}
	if w.outage != nil {
		w.outage.committed()
	}
	w.m.flushes.WithLabelValues("ok").Inc()
	w.m.segmentBytes.Observe(float64(len(object)))
	w.m.segmentBatches.Observe(float64(len(placements)))
	now := time.Now()
	for i, p := range seg.pending {
		p.result = results[i]
		w.m.ackSeconds.Observe(now.Sub(p.appended).Seconds())
		close(p.done)
	}
	w.log.Debug("segment committed", "object", key, "bytes", len(object), "batches", len(placements),
		"age", now.Sub(seg.started), "open", start.Sub(seg.started), "put", putDone.Sub(start),
		"chain_wait", chainWait, "commit", now.Sub(commitStart))
	if w.opts.Observe != nil {
		w.observe(seg, object, placements, putDone, now, nil)
	}
	return now.Sub(start), true
}

func (w *Writer) failAll(seg *openSegment, err error) {
	for _, p := range seg.pending {
		p.err = err
		close(p.done)
	}
}

// Linger is the configured linger time.
func (w *Writer) Linger() time.Duration { return w.opts.Linger }

// Flush starts flushing the open segments now, without waiting for linger.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushAllLocked("explicit")
}

// flushAllLocked starts a flush of every segment open when it is called,
// waiting for free slots. w.mu must be held.
func (w *Writer) flushAllLocked(trigger string) {
	var segs []*openSegment
	for _, st := range w.streams {
		if st.open != nil {
			segs = append(segs, st.open)
		}
	}
	for _, seg := range segs {
		for seg.st.open == seg && w.slots >= w.opts.MaxInflightFlushes {
			w.cond.Wait()
		}
		if seg.st.open == seg {
			w.startFlushLocked(seg.st, trigger)
		}
	}
}

// Close fails later appends with ErrClosed, flushes the open segment, and
// waits for every flush in flight to finish.
func (w *Writer) Close() {
	w.mu.Lock()
	// Closed first: no batch can slip into a segment nobody flushes.
	w.closed = true
	if w.outage != nil {
		// Segments flushed from now on fail rather than queue during an
		// outage: this agent may not be there to replay them.
		w.outage.stopQueueing()
	}
	w.cond.Broadcast()
	w.flushAllLocked("close")
	w.mu.Unlock()
	w.flushes.Wait()
	if w.outage != nil {
		// Commits still queued were acknowledged: try to replay them
		// for a while before giving up on them.
		ctx, cancel := context.WithTimeout(context.Background(), w.opts.FlushTimeout)
		w.outage.close(ctx)
		cancel()
	}
}

// OutageQueue reports the commits queued during a metadata store outage
// and their objects' bytes (0, 0 when the mode is off or nothing waits).
func (w *Writer) OutageQueue() (segments int, bytes int64) {
	if w.outage == nil {
		return 0, 0
	}
	w.outage.mu.Lock()
	defer w.outage.mu.Unlock()
	return len(w.outage.queue), w.outage.bytes
}

// Metrics are the write path's Prometheus metrics.
type Metrics struct {
	flushes        *prometheus.CounterVec
	triggers       *prometheus.CounterVec
	putSeconds     prometheus.Histogram
	commitSeconds  prometheus.Histogram
	ackSeconds     prometheus.Histogram
	segmentBytes   prometheus.Histogram
	segmentBatches prometheus.Histogram
	commitGroup    prometheus.Histogram

	outageSegments        prometheus.Gauge
	outageBytes           prometheus.Gauge
	outageQueued          prometheus.Counter
	outageRefused         *prometheus.CounterVec
	outageReplays         *prometheus.CounterVec
	outageReplayedBatches *prometheus.CounterVec
	outageLost            prometheus.Counter
	outageOldest          func() float64 // set by the writer with the mode on
}

// NewMetrics registers the write path's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_segment_flushes_total", Help: "Segment flushes by result.",
		}, []string{"result"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_segment_flush_triggers_total",
			Help: "Segment flushes started, by trigger: linger, size, early (every sender's window waiting on the segment), explicit, close.",
		}, []string{"trigger"}),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_segment_put_seconds", Help: "Time to upload a segment object.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_segment_commit_seconds", Help: "Time of each metadata store commit: of one segment, or of a group (floe_segment_commit_group_segments).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_produce_batch_ack_seconds", Help: "Time from a batch's arrival to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.005, 1.6, 16),
		}),
		segmentBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_segment_bytes", Help: "Size of flushed segment objects.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		segmentBatches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_segment_batches", Help: "Record batches per flushed segment.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		commitGroup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "floe_segment_commit_group_segments",
			Help:    "Segments per metadata store commit, for stores that commit uploaded segments queued behind a commit with it (1: alone).",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16},
		}),
	}
	m.outageSegments = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "floe_outage_queue_segments", Help: "Segment commits queued while the metadata store is unreachable (acknowledged, not yet visible).",
	})
	m.outageBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "floe_outage_queue_bytes", Help: "Bytes of the objects whose commits are queued while the metadata store is unreachable.",
	})
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "floe_outage_queue_oldest_seconds", Help: "Age of the oldest queued segment commit (0: none).",
	}, func() float64 {
		if m.outageOldest == nil {
			return 0
		}
		return m.outageOldest()
	})
	m.outageQueued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "floe_outage_queued_segments_total", Help: "Segments acknowledged with their commit queued because the metadata store was unreachable.",
	})
	m.outageRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "floe_outage_refused_batches_total", Help: "Batches answered with an error during a metadata store outage, by reason: segments, bytes, duration (queue bounds), producers, closing, transactional, sequence (out of order after a queued batch).",
	}, []string{"reason"})
	m.outageReplays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "floe_outage_replays_total", Help: "Attempts to commit the head of the outage queue, by result: committed, partial (some batches committed again without sequence checks), already_committed, unreachable, error.",
	}, []string{"result"})
	m.outageReplayedBatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "floe_outage_replayed_batches_total", Help: "Batches of replayed commits, by outcome: committed, duplicate, unchecked (refused by sequence, committed without the check), dropped (topic or partition gone).",
	}, []string{"outcome"})
	m.outageLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "floe_outage_lost_batches_total", Help: "Acknowledged batches still queued when the writer closed (lost).",
	})
	if reg != nil {
		reg.MustRegister(m.flushes, m.triggers, m.putSeconds, m.commitSeconds, m.ackSeconds, m.segmentBytes, m.segmentBatches, m.commitGroup,
			m.outageSegments, m.outageBytes, oldest, m.outageQueued, m.outageRefused, m.outageReplays, m.outageReplayedBatches, m.outageLost)
	}
	return m
}
