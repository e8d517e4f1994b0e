package produce

import (
	"time"

	"github.com/floe-io/floe/internal/segment"
)

// FlushTrace describes one flushed segment for Options.Observe: when it
// opened, started its flush, was uploaded and committed, when each of its
// batches arrived, and how many produce requests each connection with
// data in it had in flight when the flush started. It exists to measure
// where produce latency goes (floe bench); nothing in the write path
// depends on it.
type FlushTrace struct {
	Trigger    string // linger, size, early, explicit, close
	Opened     time.Time
	FlushStart time.Time
	Uploaded   time.Time // the PUT returned
	Committed  time.Time // the commit returned and the batches were answered; zero on failure
	Err        error
	// Batches are the segment's batches in append order. Batch aliases
	// the object: valid only during the call, never to be modified.
	Batches []TracedBatch
	// Conns are the connections with tracked requests in the segment.
	Conns []ConnAtFlush
}

// TracedBatch is one batch of a FlushTrace.
type TracedBatch struct {
	Appended time.Time
	Batch    []byte
}

// ConnAtFlush is one connection's produce window when its segment's flush
// started.
type ConnAtFlush struct {
	Inflight int // its tracked requests in flight
	Window   int // the window the early flush assumed
	InOpen   int // of Inflight, those with batches in the segment
}

// connsAtFlushLocked snapshots the windows of seg's connections. w.mu
// must be held.
func (w *Writer) connsAtFlushLocked(seg *openSegment) []ConnAtFlush {
	out := make([]ConnAtFlush, 0, len(seg.conns))
	for id, n := range seg.conns {
		c := ConnAtFlush{InOpen: n}
		if cw := w.conns[id]; cw != nil {
			c.Inflight, c.Window = cw.inflight, cw.window()
		}
		out = append(out, c)
	}
	return out
}

// observe hands the trace of a finished flush to Options.Observe.
func (w *Writer) observe(seg *openSegment, object []byte, placements []segment.Placement, putDone, committed time.Time, err error) {
	t := FlushTrace{
		Trigger: seg.trigger, Opened: seg.started, FlushStart: seg.flushStart,
		Uploaded: putDone, Committed: committed, Err: err, Conns: seg.connsAtFlush,
		Batches: make([]TracedBatch, len(seg.pending)),
	}
	for i, p := range seg.pending {
		t.Batches[i].Appended = p.appended
		if i < len(placements) && err == nil {
			pl := placements[i]
			t.Batches[i].Batch = object[pl.ByteOffset : pl.ByteOffset+pl.ByteLength]
		}
	}
	w.opts.Observe(t)
}
