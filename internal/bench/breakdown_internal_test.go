package bench

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

// TestBreakdownSplitsEachRecord: a record sent at t0, appended 30 ms
// later, in a segment whose flush started 20 ms after that and committed
// 40 ms after the start, counts 30 ms before the agent, 20 ms in the open
// segment and 40 ms in the PUT and commit; records outside the window and
// failed segments count nowhere.
func TestBreakdownSplitsEachRecord(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	value := func(sent time.Time) []byte {
		v := make([]byte, 16)
		binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
		return v
	}
	batch := recordbatch.Build(recordbatch.BuildOptions{},
		recordbatch.Record{Value: value(t0)},
		recordbatch.Record{Value: value(t0.Add(10 * ms))},
		recordbatch.Record{Value: value(t0.Add(-time.Hour))}) // before the window
	tr := newFlushTracer()
	tr.reset(t0.Add(-ms).UnixNano(), math.MaxInt64)
	trace := produce.FlushTrace{
		Trigger: "early", Opened: t0.Add(25 * ms), FlushStart: t0.Add(50 * ms),
		Uploaded: t0.Add(85 * ms), Committed: t0.Add(90 * ms),
		Batches: []produce.TracedBatch{{Appended: t0.Add(30 * ms), Batch: batch}},
		Conns:   []produce.ConnAtFlush{{Inflight: 5, Window: 5, InOpen: 5}, {Inflight: 2, Window: 5, InOpen: 2}},
	}
	tr.observe(trace)
	failed := trace
	failed.Err, failed.Committed = errors.New("injected"), time.Time{}
	tr.observe(failed)

	b := breakdown(tr, nil, time.Second)
	if b.Records != 2 || b.Segments != 1 || b.FailedSegments != 1 {
		t.Fatalf("records %d, segments %d, failed %d; want 2, 1, 1", b.Records, b.Segments, b.FailedSegments)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.02+0.01 }
	if !near(b.InClient.Max, 30) || !near(b.InClient.Min, 20) {
		t.Errorf("before the agent: min %.2f max %.2f ms, want 20 and 30", b.InClient.Min, b.InClient.Max)
	}
	if !near(b.InOpen.Max, 20) || !near(b.InFlush.Max, 40) || !near(b.ToAnswer.Max, 90) {
		t.Errorf("open %.2f, PUT + commit %.2f, to the answer %.2f ms; want 20, 40, 90", b.InOpen.Max, b.InFlush.Max, b.ToAnswer.Max)
	}
	if !near(b.TailClient, 30) || b.TailTriggers["early"] != 1 {
		t.Errorf("tail: before the agent %.2f ms, triggers %v; want 30 and early 1", b.TailClient, b.TailTriggers)
	}
	if !near(b.SegOpen.Max, 25) || !near(b.SegPut.Max, 35) || !near(b.SegCommit.Max, 5) {
		t.Errorf("segment open %.2f, PUT %.2f, commit %.2f ms; want 25, 35, 5", b.SegOpen.Max, b.SegPut.Max, b.SegCommit.Max)
	}
	if b.InflightAtFlush[5] != 1 || b.InflightAtFlush[2] != 1 || b.WindowFullShare != 0.5 {
		t.Errorf("in flight at flush %v, window full %.2f; want one each of 5 and 2, 0.5", b.InflightAtFlush, b.WindowFullShare)
	}
}
