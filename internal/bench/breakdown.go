package bench

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

// Where produce latency goes.
//
// A record's produce latency (intended send time → acknowledgement in the
// client) is split, for an in-process Floe, into the time before the
// agent appended its batch (the client's linger, its wait for a free slot
// in its window of requests in flight, the network), the time its batch
// waited in the open segment, and the segment's PUT and commit. The agent
// side comes from the writer's flush trace (produce.Options.Observe) and
// the records' timestamps, which the bench sets to the intended send
// time; producers and agent share this process's clock. The client side
// comes from franz-go's hooks: the produce requests each connection had
// in flight when it wrote one, and the time its window was full.

// maxTracedRecords bounds the per-record splits one run keeps (12 bytes
// each).
const maxTracedRecords = 1 << 22

// recSplit is one record's time, in microseconds, before the agent
// appended it (client), in the open segment (open), and in the segment's
// PUT and commit (flush); trig indexes the segment's trigger.
type recSplit struct {
	client, open, flush int32
	trig                uint8
}

func (r recSplit) total() int32 { return r.client + r.open + r.flush }

// flushTracer gathers the agent side of the breakdown. Records count when
// their timestamp is inside [from, to).
type flushTracer struct {
	from, to atomic.Int64

	mu        sync.Mutex
	recs      []recSplit
	dropped   int64
	trigs     []string
	segments  int
	failed    int
	triggers  map[string]int
	segOpen   *Histogram
	segPut    *Histogram
	segCommit *Histogram
	// inflight counts, per connection with data in a flushed segment,
	// its requests in flight when the flush started; windowFull those
	// whose window was full.
	inflight   map[int]int
	conns      int
	windowFull int
}

func newFlushTracer() *flushTracer {
	t := &flushTracer{}
	t.reset(0, 1<<63-1)
	return t
}

// reset forgets everything and counts records whose timestamps fall in
// [from, to) (Unix ns) from now on.
func (t *flushTracer) reset(from, to int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.from.Store(from)
	t.to.Store(to)
	t.recs, t.dropped, t.trigs, t.segments, t.failed = nil, 0, nil, 0, 0
	t.triggers = make(map[string]int)
	t.segOpen, t.segPut, t.segCommit = NewHistogram(), NewHistogram(), NewHistogram()
	t.inflight = make(map[int]int)
	t.conns, t.windowFull = 0, 0
}

func (t *flushTracer) closeWindow(to int64) { t.to.Store(to) }

// observe is the writer's Observe hook.
func (t *flushTracer) observe(ft produce.FlushTrace) {
	if ft.Err != nil || ft.Committed.IsZero() {
		t.mu.Lock()
		t.failed++
		t.mu.Unlock()
		return
	}
	from, to := t.from.Load(), t.to.Load()
	flushUs := int32(ft.Committed.Sub(ft.FlushStart).Microseconds())
	var splits []recSplit
	inWindow := false
	for _, b := range ft.Batches {
		recs, err := recordbatch.Records(b.Batch)
		if err != nil {
			continue
		}
		open := int32(ft.FlushStart.Sub(b.Appended).Microseconds())
		appended := b.Appended.UnixNano()
		for _, r := range recs {
			ts := r.Timestamp * int64(time.Millisecond)
			// The records' timestamps are milliseconds; the send time in
			// the value is exact.
			if len(r.Value) >= headerBytes {
				ts = int64(binary.BigEndian.Uint64(r.Value))
			}
			if ts < from || ts >= to {
				continue
			}
			inWindow = true
			splits = append(splits, recSplit{client: int32((appended - ts) / 1e3), open: open, flush: flushUs})
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !inWindow {
		return
	}
	ti := slices.Index(t.trigs, ft.Trigger)
	if ti < 0 {
		t.trigs = append(t.trigs, ft.Trigger)
		ti = len(t.trigs) - 1
	}
	for _, s := range splits {
		if len(t.recs) >= maxTracedRecords {
			t.dropped++
			continue
		}
		s.trig = uint8(min(ti, 255))
		t.recs = append(t.recs, s)
	}
	t.segments++
	t.triggers[ft.Trigger]++
	t.segOpen.Record(ft.FlushStart.Sub(ft.Opened))
	t.segPut.Record(ft.Uploaded.Sub(ft.FlushStart))
	t.segCommit.Record(ft.Committed.Sub(ft.Uploaded))
	for _, c := range ft.Conns {
		t.conns++
		t.inflight[c.Inflight]++
		if c.Inflight >= max(c.Window, 1) {
			t.windowFull++
		}
	}
}

// clientTrace is one producer client's side of the breakdown (franz-go
// hooks on its produce requests).
type clientTrace struct {
	st     *stats
	window int // the client's most produce requests in flight per broker

	mu        sync.Mutex
	inflight  int
	fullSince time.Time
	fullFor   time.Duration
	requests  int64
	atWrite   map[int]int64
	writeWait *Histogram
	roundTrip *Histogram
}

var (
	_ kgo.HookBrokerWrite = (*clientTrace)(nil)
	_ kgo.HookBrokerE2E   = (*clientTrace)(nil)
)

func newClientTrace(st *stats, window int) *clientTrace {
	return &clientTrace{st: st, window: window, atWrite: make(map[int]int64), writeWait: NewHistogram(), roundTrip: NewHistogram()}
}

// OnBrokerWrite counts a produce request written: how many the client
// then had in flight, and how long the request waited to be written.
func (c *clientTrace) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, writeWait, _ time.Duration, err error) {
	if key != 0 || err != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight++
	if c.inflight >= c.window && c.fullSince.IsZero() {
		c.fullSince = now
	}
	if c.st.inWindow(now.UnixNano()) {
		c.requests++
		c.atWrite[c.inflight]++
		c.writeWait.Record(writeWait)
	}
}

// OnBrokerE2E counts a produce response read: the request's round trip.
func (c *clientTrace) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != 0 || e2e.WriteErr != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if c.inflight < c.window && !c.fullSince.IsZero() {
		c.fullFor += c.clipped(c.fullSince, now)
		c.fullSince = time.Time{}
	}
	if c.st.inWindow(now.UnixNano()) && e2e.ReadErr == nil {
		c.roundTrip.Record(e2e.DurationE2E())
	}
}

// clipped is the part of [a, b) inside the measured window.
func (c *clientTrace) clipped(a, b time.Time) time.Duration {
	lo := max(a.UnixNano(), c.st.measureStart)
	hi := min(b.UnixNano(), c.st.measureEnd.Load())
	return time.Duration(max(hi-lo, 0))
}

// Breakdown is where the produce latency of the measured window went.
type Breakdown struct {
	// Agent side, per record of the window (ms): before the agent
	// appended its batch (the client's linger and window, the network),
	// in the open segment, in the PUT and commit, and the three
	// together (its time to the agent's answer).
	Records    uint64  `json:"records"`
	InClient   Summary `json:"in_client"`
	InOpen     Summary `json:"in_open_segment"`
	InFlush    Summary `json:"in_put_and_commit"`
	ToAnswer   Summary `json:"to_answer"`
	TailFrom   float64 `json:"tail_from_ms"` // the slowest 1% of ToAnswer start here
	TailClient float64 `json:"tail_in_client_mean_ms"`
	TailOpen   float64 `json:"tail_in_open_segment_mean_ms"`
	TailFlush  float64 `json:"tail_in_put_and_commit_mean_ms"`
	// TailTriggers counts the slowest 1%'s records by their segment's
	// flush trigger.
	TailTriggers map[string]int `json:"tail_triggers"`

	Segments        int            `json:"segments"`
	FailedSegments  int            `json:"failed_segments"`
	Triggers        map[string]int `json:"triggers"`
	SegOpen         Summary        `json:"segment_open"`
	SegPut          Summary        `json:"segment_put"`
	SegCommit       Summary        `json:"segment_commit"`
	InflightAtFlush map[int]int    `json:"inflight_at_flush"` // per connection in a flushed segment
	WindowFullShare float64        `json:"window_full_at_flush"`

	// Client side (franz-go hooks), over all producers.
	ClientRequests  int64         `json:"client_requests"`
	ClientWindow    int           `json:"client_window"`
	InflightAtWrite map[int]int64 `json:"client_inflight_at_write"`
	WindowFullPct   float64       `json:"client_window_full_pct"` // of the window's time, averaged over producers
	WriteWait       Summary       `json:"client_write_wait"`
	RoundTrip       Summary       `json:"client_round_trip"`
}

// breakdown assembles the figures of t and the clients' traces.
func breakdown(t *flushTracer, clients []*clientTrace, window time.Duration) *Breakdown {
	b := &Breakdown{TailTriggers: map[string]int{}, InflightAtWrite: map[int]int64{}}
	if t != nil {
		t.mu.Lock()
		hc, ho, hf, ht := NewHistogram(), NewHistogram(), NewHistogram(), NewHistogram()
		us := func(v int32) time.Duration { return time.Duration(v) * time.Microsecond }
		for _, r := range t.recs {
			hc.Record(us(r.client))
			ho.Record(us(r.open))
			hf.Record(us(r.flush))
			ht.Record(us(r.total()))
		}
		b.Records = uint64(len(t.recs))
		b.InClient, b.InOpen, b.InFlush, b.ToAnswer = hc.Summary(), ho.Summary(), hf.Summary(), ht.Summary()
		if n := len(t.recs); n > 0 {
			sorted := slices.Clone(t.recs)
			slices.SortFunc(sorted, func(x, y recSplit) int { return cmp.Compare(y.total(), x.total()) })
			tail := sorted[:max(n/100, 1)]
			var sc, so, sf float64
			for _, r := range tail {
				sc += float64(r.client)
				so += float64(r.open)
				sf += float64(r.flush)
				b.TailTriggers[t.trigs[r.trig]]++
			}
			k := float64(len(tail)) * 1e3
			b.TailClient, b.TailOpen, b.TailFlush = sc/k, so/k, sf/k
			b.TailFrom = float64(tail[len(tail)-1].total()) / 1e3
		}
		b.Segments, b.FailedSegments = t.segments, t.failed
		b.Triggers = maps.Clone(t.triggers)
		b.SegOpen, b.SegPut, b.SegCommit = t.segOpen.Summary(), t.segPut.Summary(), t.segCommit.Summary()
		b.InflightAtFlush = maps.Clone(t.inflight)
		if t.conns > 0 {
			b.WindowFullShare = float64(t.windowFull) / float64(t.conns)
		}
		t.mu.Unlock()
	}
	ww, rt := NewHistogram(), NewHistogram()
	var full time.Duration
	for _, c := range clients {
		c.mu.Lock()
		b.ClientRequests += c.requests
		b.ClientWindow = c.window
		for k, v := range c.atWrite {
			b.InflightAtWrite[k] += v
		}
		f := c.fullFor
		if !c.fullSince.IsZero() {
			f += c.clipped(c.fullSince, time.Now())
		}
		full += f
		ww.Merge(c.writeWait)
		rt.Merge(c.roundTrip)
		c.mu.Unlock()
	}
	if len(clients) > 0 && window > 0 {
		b.WindowFullPct = 100 * full.Seconds() / window.Seconds() / float64(len(clients))
	}
	b.WriteWait, b.RoundTrip = ww.Summary(), rt.Summary()
	return b
}

// WriteText prints the breakdown under a run's report.
func (b *Breakdown) WriteText(w io.Writer) {
	pp := func(s Summary) string { return fmt.Sprintf("%.1f / %.1f", s.P50, s.P99) }
	if b.Records > 0 {
		fmt.Fprintf(w, "  where produce time went, per record at the agent (ms, p50 / p99), %s records:\n", count(int64(b.Records)))
		fmt.Fprintf(w, "               before the agent appended it (client linger and window) %s, in the open segment %s, PUT + commit %s; to the agent's answer %s\n",
			pp(b.InClient), pp(b.InOpen), pp(b.InFlush), pp(b.ToAnswer))
		fmt.Fprintf(w, "               slowest 1%% (≥ %.1f ms to the answer), means: before the agent %.1f, open segment %.1f, PUT + commit %.1f; their segments' triggers %s\n",
			b.TailFrom, b.TailClient, b.TailOpen, b.TailFlush, countsText(b.TailTriggers))
		fmt.Fprintf(w, "               segments %d (%s), open %s, PUT %s, commit %s; requests in flight per connection at flush %s (window full %.0f%%)\n",
			b.Segments, countsText(b.Triggers), pp(b.SegOpen), pp(b.SegPut), pp(b.SegCommit), intCountsText(b.InflightAtFlush), 100*b.WindowFullShare)
	}
	if b.ClientRequests > 0 {
		at := make(map[int]int, len(b.InflightAtWrite))
		for k, v := range b.InflightAtWrite {
			at[k] = int(v)
		}
		fmt.Fprintf(w, "  client:      %d produce requests, in flight when each was written %s; window of %d full %.0f%% of the time; round trip %s ms, wait to be written %s ms\n",
			b.ClientRequests, intCountsText(at), b.ClientWindow, b.WindowFullPct, pp(b.RoundTrip), pp(b.WriteWait))
	}
}

func countsText(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func intCountsText(m map[int]int) string {
	keys := slices.Sorted(maps.Keys(m))
	total := 0
	for _, v := range m {
		total += v
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d: %.0f%%", k, 100*float64(m[k])/float64(max(total, 1))))
	}
	return strings.Join(parts, ", ")
}
