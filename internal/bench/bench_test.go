package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/testutil"
)

// TestRunAgainstFloe is the short run CI does: a few seconds against an
// in-process agent. It asserts only that the report is complete and
// consistent, never a speed.
// It runs over both simulated buckets: the bucket's request counts come
// from the agent's instrumented wrapper whichever is behind it.
func TestRunAgainstFloe(t *testing.T) {
	for _, sim := range []struct{ name, describe string }{
		{bench.SimBucketMemory, "in-memory bucket"},
		{bench.SimBucketDirectory, "local-directory bucket"},
	} {
		t.Run(sim.name, func(t *testing.T) { testRunAgainstFloe(t, sim.name, sim.describe) })
	}
}

func testRunAgainstFloe(t *testing.T, simBucket, describe string) {
	tgt, err := bench.StartFloe(bench.FloeOptions{
		Linger:        50 * time.Millisecond,
		SimBucket:     simBucket,
		BucketLatency: bench.LatencyRange{Min: time.Millisecond, Max: 5 * time.Millisecond},
		Logger:        testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if d := tgt.Describe(); !strings.Contains(d, describe) {
		t.Errorf("Describe() = %q, want it to name the %s", d, describe)
	}
	var progress bytes.Buffer
	rep, err := bench.Run(context.Background(), bench.Config{
		Topics: 2, Partitions: 3, Producers: 2, Consumers: 2, RecordSize: 256,
		Rate: 128 << 10, Linger: 5 * time.Millisecond,
		Warmup: 500 * time.Millisecond, Duration: 2 * time.Second, Drain: time.Minute,
		Progress: &progress, ProgressInterval: 500 * time.Millisecond,
		Logger: testutil.Logger(t),
	}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Consistency.OK {
		t.Fatalf("report not consistent: %v", rep.Consistency.Problems)
	}
	if rep.Partial {
		t.Error("a run that was not interrupted is marked partial")
	}
	c := rep.Consistency
	if c.Acked == 0 || c.ConsumedMin != c.Acked || c.ConsumedMax != c.Acked {
		t.Errorf("acked %d, consumed %d..%d: every consumer must read every record", c.Acked, c.ConsumedMin, c.ConsumedMax)
	}
	if rep.Produce.Records == 0 || rep.Produce.Latency.Count == 0 || rep.EndToEnd == nil || rep.EndToEnd.Count == 0 {
		t.Errorf("missing figures: produce %+v, end-to-end %+v", rep.Produce, rep.EndToEnd)
	}
	if !rep.Produce.Latency.Ordered() || !rep.EndToEnd.Ordered() {
		t.Errorf("percentiles out of order: %+v %+v", rep.Produce.Latency, *rep.EndToEnd)
	}
	if rep.Produce.Errors != 0 || rep.Consume.Errors != 0 {
		t.Errorf("errors: %s", rep.FirstError)
	}
	s := rep.ServerFigures
	if s == nil || s.Puts == 0 || s.Flushes == 0 || s.PutBytes == 0 || s.PeakRSSMiB == 0 {
		t.Fatalf("server figures missing or empty: %+v", s)
	}
	if rep.Cost == nil || rep.Cost.FloeTotal <= 0 || rep.Cost.KafkaTotal <= 0 || len(rep.Cost.Assumptions) == 0 {
		t.Errorf("cost estimate missing: %+v", rep.Cost)
	}
	if !strings.Contains(progress.String(), "[floe]") {
		t.Errorf("no progress line written: %q", progress.String())
	}

	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"produce", "end-to-end", "consistency: ok", "PUTs", "assumptions"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report does not marshal: %v", err)
	}
}

// TestRunInterrupted checks that cancelling a run (Ctrl-C) returns a
// partial report promptly instead of an error.
func TestRunInterrupted(t *testing.T) {
	tgt, err := bench.StartKfake()
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	began := time.Now()
	rep, err := bench.Run(ctx, bench.Config{
		Partitions: 2, Consumers: 1, RecordSize: 100, Rate: 50 << 10,
		Warmup: 200 * time.Millisecond, Duration: time.Minute,
	}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("interrupted run took %v to return", took)
	}
	if !rep.Partial || rep.Seconds <= 0 || rep.Seconds > 5 {
		t.Errorf("partial %v after %.1fs: want a partial report of the time that ran", rep.Partial, rep.Seconds)
	}
	if rep.Produce.Records == 0 || !rep.Produce.Latency.Ordered() {
		t.Errorf("partial report lacks produce figures: %+v", rep.Produce)
	}
	// The schedule after the interruption never came: it must not count
	// as records left behind. Counting it would report ~28,000 (57 s at
	// 512 records/s); the bound leaves room for a loaded machine falling
	// behind before the interruption.
	if rep.Produce.Missed > 2000 || rep.Produce.Latency.Max > 15000 {
		t.Errorf("interrupted run counts %d records behind schedule, max latency %.0f ms", rep.Produce.Missed, rep.Produce.Latency.Max)
	}
}

func TestCompare(t *testing.T) {
	a := &bench.Report{Produce: bench.ProduceFigures{RecPerSec: 100, Latency: bench.Summary{P50: 300}}}
	b := &bench.Report{Produce: bench.ProduceFigures{RecPerSec: 200, Latency: bench.Summary{P50: 3}}}
	rows := bench.Compare(a, b)
	got := map[string]float64{}
	for _, r := range rows {
		got[r.Metric] = r.Ratio
	}
	if got["produce records/s"] != 0.5 || got["produce p50 ms"] != 100 || got["produce p99 ms"] != 0 {
		t.Errorf("ratios %v", got)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"1024", 1024, false}, {"1KiB", 1024, false}, {"4MiB", 4 << 20, false}, {"4MiB/s", 4 << 20, false},
		{"1.5GiB", 3 << 29, false}, {"10MB", 10e6, false}, {"256mib", 256 << 20, false}, {"2k", 2048, false},
		{"", 0, true}, {"fast", 0, true}, {"-1KiB", 0, true}, {"3 parsecs", 0, true},
	} {
		got, err := bench.ParseBytes(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseLatencyRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bench.LatencyRange
		err  bool
	}{
		{"0", bench.LatencyRange{}, false},
		{"30ms", bench.LatencyRange{Min: 30 * time.Millisecond, Max: 30 * time.Millisecond}, false},
		{"20ms-50ms", bench.LatencyRange{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}, false},
		{"50ms-20ms", bench.LatencyRange{}, true},
		{"soon", bench.LatencyRange{}, true},
	} {
		got, err := bench.ParseLatencyRange(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLatencyRange(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP floe_objstore_requests_total Object-store requests.
# TYPE floe_objstore_requests_total counter
floe_objstore_requests_total{op="put",result="ok"} 12
floe_objstore_requests_total{op="put",result="error"} 1
floe_objstore_requests_total{op="get",result="ok"} 3
process_cpu_seconds_total 1.5
floe_segment_put_seconds_sum 0.25
floe_segment_put_seconds_count 5
`
	s, err := bench.ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sum("floe_objstore_requests_total", "op", "put"); got != 13 {
		t.Errorf("puts = %v, want 13", got)
	}
	if got := s.Sum("floe_objstore_requests_total", "result", "error"); got != 1 {
		t.Errorf("errors = %v, want 1", got)
	}
	if got := s.Sum("process_cpu_seconds_total"); got != 1.5 {
		t.Errorf("cpu = %v", got)
	}
}

func TestPresetsParse(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range bench.Presets() {
		if seen[p.Name] || p.Title == "" || len(p.Args) == 0 {
			t.Errorf("preset %+v: duplicate or incomplete", p)
		}
		seen[p.Name] = true
		if _, ok := bench.FindPreset(p.Name); !ok {
			t.Errorf("FindPreset(%q) failed", p.Name)
		}
	}
	for _, want := range []string{"default", "low-latency", "max-throughput", "partitions-1k", "partitions-10k", "fan-out", "catch-up"} {
		if !seen[want] {
			t.Errorf("preset %q missing", want)
		}
	}
}

func TestEstimateCost(t *testing.T) {
	// 4 PUT/s at list price is the architecture brief's ~$52 per month.
	c := bench.EstimateCost(bench.Prices{}, 4<<20, 1, 4, 0)
	var puts, repl float64
	for _, l := range c.Floe {
		if l.Item == "object PUTs" {
			puts = l.Dollars
		}
	}
	for _, l := range c.Kafka {
		if l.Item == "replication across zones" {
			repl = l.Dollars
		}
	}
	if puts < 51.8 || puts > 51.9 {
		t.Errorf("4 PUT/s cost $%.2f a month, want $51.84", puts)
	}
	// 4 MiB/s for 30 days is 10,125 GiB; two follower copies at $0.02.
	if repl < 404 || repl > 406 {
		t.Errorf("replication $%.2f, want about $405", repl)
	}
	if c.KafkaTotal <= c.FloeTotal {
		t.Errorf("Kafka $%.0f vs Floe $%.0f: the model lost its main term", c.KafkaTotal, c.FloeTotal)
	}
}
