package produce

import (
	"slices"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
)

// Early flush.
//
// The linger exists to fill objects, not to make clients wait. A producer
// keeps a bounded window of produce requests in flight on a connection (5
// for idempotent Kafka clients); once that many are waiting on the open
// segment it cannot send another until one is answered, and no request is
// answered before the segment is flushed and committed. When every
// connection with data in the open segment is in that state, nothing more
// can arrive for it, and the rest of the linger only adds latency: the
// writer flushes it then ("early"), no sooner than FlushMinInterval after
// the previous flush started, so that producers whose windows fill quickly
// cannot make a PUT per request.
//
// The writer does not know a client's window; it learns it: a connection's
// window is the most produce requests it has been seen to have in flight
// at once. An idempotent producer (batches with a producer id) may have up
// to 5 in flight (Kafka's limit, the default of franz-go, the Java client
// and librdkafka), so for its first learnWindowRequests requests the
// window is taken to be at least 5; after that, what was seen. Without
// that prior, each early flush would come at the smallest window seen so
// far and keep the client from ever showing a larger one. A learnt window
// smaller than the client's real one makes the writer flush while the
// client could still send; that costs a PUT (bounded by the minimum
// interval), never correctness: where a batch lands changes only which
// object holds it, and commits stay in flush order.
//
// Requests whose senders do not wait (acks=0) may send at any time; a
// segment holding one of their batches is never flushed early.
//
// Waiting for the whole window has a price: from the flush until the
// answer (the PUT and the commit) the client can send nothing, and the
// records it makes meanwhile are sent after the answer, into a segment
// that then waits for a whole window again: two flushes and a window's
// fill. So the early flush can leave part of each window free, a reserve
// (Options.FlushWindowReserve; none by default): a fixed number of
// requests, or estimated per connection as the requests it sends during
// one flush (the writer's recent flush time over the connection's recent
// time between requests, rounded up), at most half its window. The
// client then keeps sending into the next segment while this one
// uploads. The reserve costs PUTs (segments of fewer requests), within
// the same bound of one early flush per FlushMinInterval.

// windowMaxReserveShare caps the reserve at this share of the window:
// with less than half the window in a segment, the rule that all of a
// connection's requests in flight wait on the open segment keeps each
// segment waiting for the previous one's answer, and segments of one
// request cost a PUT each for nothing.
const windowMaxReserveShare = 2

// ewmaShift weighs a new sample by 1 / 2^ewmaShift in the moving
// averages of flush time and of time between requests.
const ewmaShift = 2

// idempotentWindow is the most produce requests an idempotent producer
// keeps in flight on one connection (Kafka refuses more).
const idempotentWindow = 5

// learnWindowRequests is how many requests of a connection must end before
// the window seen replaces the idempotent prior.
const learnWindowRequests = 32

// connWindow is what the writer knows of one connection's produce
// requests.
type connWindow struct {
	inflight int // tracked requests appended and not yet ended
	seen     int // the most that were in flight at once
	ended    int // requests ended, up to learnWindowRequests
	prior    int // the window assumed until learnWindowRequests have ended

	lastBegin time.Time     // when its last tracked request appended its first batch
	interval  time.Duration // moving average of the time between those
}

// noteRequest updates the connection's time between requests with one
// that begins at now. A pause longer than maxRequestGap (an idle
// producer) is not a pace and is left out.
func (c *connWindow) noteRequest(now time.Time) {
	if !c.lastBegin.IsZero() {
		if gap := now.Sub(c.lastBegin); gap >= 0 && gap <= maxRequestGap {
			if c.interval == 0 {
				c.interval = gap
			} else {
				c.interval += (gap - c.interval) >> ewmaShift
			}
		}
	}
	c.lastBegin = now
}

// maxRequestGap is the longest time between two requests that counts in
// a connection's pace.
const maxRequestGap = 10 * time.Second

// ReserveEstimated, as Options.FlushWindowReserve, estimates each
// connection's reserve: the requests it sends during one flush, at most
// half its window.
const ReserveEstimated = -1

// reserve is how many requests of window the early flush leaves free for
// a connection that sends one every interval while a flush takes
// flushTime: setting (Options.FlushWindowReserve) if it is > 0 (at most
// the window less one), the estimate if it is ReserveEstimated (or any
// negative value), none if it is 0.
func reserve(window int, interval, flushTime time.Duration, setting int) int {
	limit := window / windowMaxReserveShare
	switch {
	case setting == 0 || window <= 1:
		return 0
	case setting > 0:
		return min(setting, window-1)
	case limit <= 0 || interval <= 0 || flushTime <= 0:
		return 0
	}
	n := (flushTime + interval - 1) / interval
	return int(min(n, time.Duration(limit)))
}

// window is the connection's window as the early flush assumes it.
func (c *connWindow) window() int {
	if c.ended < learnWindowRequests {
		return max(c.seen, c.prior)
	}
	return c.seen
}

// connWait is one connection with data in the open segment, as the early
// flush decision sees it.
type connWait struct {
	Inflight int // its produce requests in flight (read, not answered)
	Window   int // the most it has had in flight at once
	InOpen   int // of Inflight, those with batches in the open segment
	Reserve  int // of Window, how many the early flush leaves free
}

// windowsFull reports whether the open segment should go: it holds no
// batch of an untracked sender, and every connection with data in it has
// its window, less its reserve, in flight, all of it waiting on the open
// segment (a request still waiting on an earlier segment will be answered
// before this one is flushed, and its sender may then send again).
func windowsFull(conns []connWait, untracked bool) bool {
	if untracked || len(conns) == 0 {
		return false
	}
	for _, c := range conns {
		if c.InOpen < c.Inflight || c.Inflight < max(c.Window-c.Reserve, 1) {
			return false
		}
	}
	return true
}

// earlyFlushAt decides an early flush of a segment whose senders' windows
// are full: now, if the minimum interval since the last flush started has
// passed, or else at the returned time (when the decision must be made
// again, as a sender may have come since).
func earlyFlushAt(now, lastFlush time.Time, minInterval time.Duration) (flushNow bool, at time.Time) {
	at = lastFlush.Add(minInterval)
	if !now.Before(at) {
		return true, now
	}
	return false, at
}

// Request is one produce request's batches, appended to the writer by the
// connection that read it. Begin it before its first batch, End it once
// its answer is known.
type Request struct {
	w       *Writer
	conn    uint64
	waits   bool           // the sender waits for the answer (acks != 0)
	tracked bool           // counted in its connection's inflight
	segs    []*openSegment // the segments it is counted in (one per stream at most, while open)
	ended   bool

	// The segment, topic and linger of its last batch, so that the next
	// batch of the same topic needs no stream lookup.
	lastSeg    *openSegment
	lastTopic  metastore.TopicID
	lastLinger time.Duration
}

// Begin starts a produce request from connection conn (0: not a client
// connection). waits is false for acks=0, whose sender does not wait for
// the answer and so never stops sending.
func (w *Writer) Begin(conn uint64, waits bool) *Request {
	return &Request{w: w, conn: conn, waits: waits && conn != 0}
}

// Append adds one validated batch of the request to the open segment
// (see Writer.Append).
func (r *Request) Append(topicID metastore.TopicID, topic string, partition int32, batch []byte) *Pending {
	return r.w.append(r, 0, topicID, topic, partition, batch)
}

// AppendWithin is Append for a topic whose batches should wait at most
// linger in an open segment (a latency target, streams.go); 0 or anything
// not below the agent's linger is the agent's stream.
func (r *Request) AppendWithin(linger time.Duration, topicID metastore.TopicID, topic string, partition int32, batch []byte) *Pending {
	return r.w.append(r, linger, topicID, topic, partition, batch)
}

// track records that r (nil: an untracked sender) just appended a batch
// to seg. w.mu must be held.
func (w *Writer) track(r *Request, seg *openSegment, batch []byte) {
	if r == nil || !r.waits || r.ended {
		seg.untracked = true
		return
	}
	if !r.tracked {
		r.tracked = true
		cw := w.conns[r.conn]
		if cw == nil {
			cw = &connWindow{}
			w.conns[r.conn] = cw
		}
		cw.inflight++
		cw.seen = max(cw.seen, cw.inflight)
		cw.noteRequest(time.Now())
		if h, err := recordbatch.ParseHeader(batch); err == nil && h.ProducerID >= 0 {
			cw.prior = idempotentWindow
		}
	}
	for _, s := range r.segs {
		if s == seg {
			return
		}
	}
	// Segments flushed since are no longer counted.
	r.segs = slices.DeleteFunc(r.segs, func(s *openSegment) bool { return s.st.open != s })
	r.segs = append(r.segs, seg)
	seg.conns[r.conn]++
}

// Parked tells the writer that every batch of the request is in: the
// moment a request can complete its connection's window.
func (r *Request) Parked() {
	if !r.tracked {
		return
	}
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	for _, seg := range r.segs {
		if seg.st.open == seg {
			r.w.maybeFlushEarlyLocked(seg.st)
		}
	}
}

// End tells the writer the request is answered (or abandoned): its
// connection may send another.
func (r *Request) End() {
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	if !r.tracked {
		return
	}
	if cw := w.conns[r.conn]; cw != nil {
		cw.inflight--
		cw.ended = min(cw.ended+1, learnWindowRequests)
	}
	// Abandoned while its batches wait (the agent is stopping): it no
	// longer waits on those open segments.
	for _, seg := range r.segs {
		if seg.st.open == seg {
			if seg.conns[r.conn]--; seg.conns[r.conn] <= 0 {
				delete(seg.conns, r.conn)
			}
		}
	}
	r.segs = nil
	// Its connection may now complete a window elsewhere.
	for _, st := range w.streams {
		w.maybeFlushEarlyLocked(st)
	}
}

// CloseConn forgets connection conn's window once it has closed.
func (w *Writer) CloseConn(conn uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cw := w.conns[conn]; cw != nil && cw.inflight <= 0 {
		delete(w.conns, conn)
	}
}

// maybeFlushEarlyLocked flushes st's open segment early if nothing more
// can arrive for it, or arranges to decide again when the minimum interval
// ends. w.mu must be held.
func (w *Writer) maybeFlushEarlyLocked(st *stream) {
	seg := st.open
	if w.opts.DisableEarlyFlush || seg == nil || w.closed || !w.segmentWaitedOn(seg) {
		return
	}
	now, at := earlyFlushAt(time.Now(), st.lastFlush, st.minInterval)
	switch {
	case !now:
		if st.early == nil {
			st.early = time.AfterFunc(time.Until(at), func() {
				w.mu.Lock()
				defer w.mu.Unlock()
				if st.open == seg {
					st.early = nil
					w.maybeFlushEarlyLocked(st)
				}
			})
		}
	case w.slots < w.opts.MaxInflightFlushes:
		w.startFlushLocked(st, "early")
	}
	// Every slot busy: the flush that frees one decides again.
}

// segmentWaitedOn reports whether every sender with data in seg has its
// whole window waiting on it. w.mu must be held.
func (w *Writer) segmentWaitedOn(seg *openSegment) bool {
	if seg.untracked || len(seg.conns) == 0 {
		return false
	}
	waits := make([]connWait, 0, len(seg.conns))
	for id, n := range seg.conns {
		cw := w.conns[id]
		if cw == nil { // closed: it sends nothing more
			continue
		}
		win := cw.window()
		waits = append(waits, connWait{Inflight: cw.inflight, Window: win, InOpen: n,
			Reserve: reserve(win, cw.interval, w.flushTime, w.opts.FlushWindowReserve)})
	}
	if len(waits) == 0 {
		return true
	}
	return windowsFull(waits, false)
}
