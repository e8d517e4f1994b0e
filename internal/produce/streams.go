package produce

import (
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Segment streams.
//
// The agent's linger suits most topics: few PUTs, a quarter of a second of
// latency. A topic whose producers need less sets a latency target (the
// topic config floe.latency.target.ms): its batches go to a stream whose
// linger is that target, shared by every topic with the same target, with
// its own open segment, timers and early flushes, so that only they pay
// its PUTs. Flush slots and the commit chain are shared by all streams:
// commits follow flush order, whichever stream a segment came from.
//
// A topic whose target changes while batches of it wait in one stream's
// open segment keeps going to that segment until it is flushed, so that a
// partition's batches are never committed out of order.

// minStreamLinger is the shortest linger a latency target asks for.
const minStreamLinger = 5 * time.Millisecond

// maxStreams bounds the streams a writer keeps (the agent's included): a
// target for which no stream is left goes to the nearest faster one.
const maxStreams = 8

// streamForLocked returns the stream a batch of topicID asking for linger
// goes to. w.mu must be held.
func (w *Writer) streamForLocked(linger time.Duration, topicID metastore.TopicID) *stream {
	want := w.targetStreamLocked(linger)
	for _, st := range w.streams {
		if st == want || st.open == nil {
			continue
		}
		if _, ok := st.open.topics[topicID]; ok {
			return st // the topic's earlier batches wait there
		}
	}
	return want
}

// targetStreamLocked returns the stream for linger, making it if need be.
// w.mu must be held.
func (w *Writer) targetStreamLocked(linger time.Duration) *stream {
	if linger <= 0 || linger >= w.main.linger {
		return w.main
	}
	linger = max(linger, minStreamLinger)
	if st := w.streams[linger]; st != nil {
		return st
	}
	if len(w.streams) >= maxStreams {
		// The slowest stream at least as fast as asked, or else the
		// fastest there is.
		var best *stream
		for _, st := range w.streams {
			if st.linger <= linger && (best == nil || st.linger > best.linger) {
				best = st
			}
		}
		if best == nil {
			for _, st := range w.streams {
				if best == nil || st.linger < best.linger {
					best = st
				}
			}
		}
		return best
	}
	st := &stream{linger: linger, minInterval: w.opts.FlushMinInterval * linger / w.main.linger}
	if st.minInterval <= 0 {
		st.minInterval = linger / 2
	}
	w.streams[linger] = st
	return st
}
