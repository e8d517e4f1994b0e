package bench

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run against one target.
type Report struct {
	Target  string    `json:"target"`
	Server  string    `json:"server"`
	Date    time.Time `json:"date"`
	Partial bool      `json:"partial"` // interrupted before the planned end

	Workload Workload `json:"workload"`
	Seconds  float64  `json:"measured_seconds"`

	Produce  ProduceFigures  `json:"produce"`
	EndToEnd *Summary        `json:"end_to_end_latency,omitempty"` // nil when reading history
	Consume  ConsumeFigures  `json:"consume"`
	CatchUp  *CatchUpFigures `json:"catch_up,omitempty"`

	Consistency Consistency `json:"consistency"`
	FirstError  string      `json:"first_error,omitempty"`

	// ClientCPUSeconds is this process's CPU time over the window; with
	// an in-process target it includes the server's.
	ClientCPUSeconds float64 `json:"process_cpu_seconds"`
	CPUCores         float64 `json:"process_cpu_cores"`
	CPUIncludesServ  bool    `json:"process_cpu_includes_server"`

	// Load is the machine's 1-minute load average before and after the
	// run (-1: unknown), to tell a quiet run from one that shared the
	// machine; Cores is runtime.NumCPU.
	Load  [2]float64 `json:"load_average_before_after"`
	Cores int        `json:"cores"`

	ServerFigures *ServerFigures `json:"server_metrics,omitempty"`
	Cost          *Cost          `json:"monthly_cost,omitempty"`

	// Breakdown is where the produce latency of a live run went (the
	// agent's part only for an in-process Floe).
	Breakdown *Breakdown `json:"produce_breakdown,omitempty"`
}

// Workload is the part of the Config that defines the load.
type Workload struct {
	Topics      int     `json:"topics"`
	Partitions  int     `json:"partitions_per_topic"`
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers"`
	RecordSize  int     `json:"record_bytes"`
	Keys        KeyDist `json:"keys"`
	RateMiBps   float64 `json:"target_mib_per_sec"` // 0: as fast as possible
	Acks        string  `json:"acks"`
	Compression string  `json:"compression"`
	// TopicCompression is the topics' compression.type, when set.
	TopicCompression string  `json:"topic_compression,omitempty"`
	LingerMs         float64 `json:"client_linger_ms"`
	WarmupSec        float64 `json:"warmup_seconds"`
	DurationSec      float64 `json:"duration_seconds"`
	CatchUpMiB       float64 `json:"catch_up_mib,omitempty"`
	// TopicConfigs were set on the created topics.
	TopicConfigs map[string]string `json:"topic_configs,omitempty"`
}

// ProduceFigures describe the producers. Latency runs from each record's
// intended send time to its acknowledgement.
type ProduceFigures struct {
	Records   int64   `json:"records"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	RecPerSec float64 `json:"records_per_sec"`
	MiBPerSec float64 `json:"mib_per_sec"`
	Errors    int64   `json:"errors"`
	// Missed counts records due on the schedule that were never sent
	// because the producers had fallen more than a second behind.
	Missed  int64   `json:"behind_schedule"`
	Latency Summary `json:"latency"`
}

// ConsumeFigures add up all consumers.
type ConsumeFigures struct {
	Consumers int     `json:"consumers"`
	Records   int64   `json:"records"`
	Bytes     int64   `json:"bytes"`
	RecPerSec float64 `json:"records_per_sec"`
	MiBPerSec float64 `json:"mib_per_sec"`
	Errors    int64   `json:"errors"`
}

// CatchUpFigures describe a read of history.
type CatchUpFigures struct {
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	ColdRestart bool    `json:"server_restarted_cold"`
	// Compacted is set when the history was compacted before the read
	// (Config.CatchUpCompact, a target that can).
	Compacted *CompactFigures `json:"compacted,omitempty"`
}

// CompactFigures describe a compaction of the history before a catch-up
// read: the partitions' extents before and after, and how long it took.
type CompactFigures struct {
	ExtentsBefore int64   `json:"extents_before"`
	ExtentsAfter  int64   `json:"extents_after"`
	Seconds       float64 `json:"seconds"`
}

// Consistency checks what can be checked without trusting speed: every
// acknowledged record was read by every consumer, and the percentiles are
// ordered.
type Consistency struct {
	Acked       int64    `json:"acked"`
	ConsumedMin int64    `json:"consumed_min"`
	ConsumedMax int64    `json:"consumed_max"`
	OK          bool     `json:"ok"`
	Problems    []string `json:"problems,omitempty"`
}

func (r *runner) report(st *stats, cs []*consumer, window time.Duration, partial, drained bool) *Report {
	cfg := r.cfg
	secs := window.Seconds()
	rep := &Report{
		Target: r.tgt.Name(), Server: r.tgt.Describe(), Date: time.Now().UTC(), Partial: partial,
		Seconds: secs,
		Workload: Workload{
			Topics: cfg.Topics, Partitions: cfg.Partitions, Producers: cfg.Producers, Consumers: cfg.Consumers,
			RecordSize: cfg.RecordSize, Keys: cfg.Keys, RateMiBps: float64(cfg.Rate) / (1 << 20),
			Acks: cfg.Acks, Compression: cfg.Compression, TopicCompression: cfg.TopicCompression, LingerMs: float64(cfg.Linger) / float64(time.Millisecond),
			WarmupSec: cfg.Warmup.Seconds(), DurationSec: cfg.Duration.Seconds(), CatchUpMiB: float64(cfg.CatchUp) / (1 << 20),
			TopicConfigs: cfg.TopicConfigs,
		},
		Produce: ProduceFigures{
			Records: st.winAcked.Load(), Bytes: st.winBytes.Load(), Seconds: secs,
			Errors: st.failed.Load(), Missed: st.missed.Load(), Latency: st.produceLat.Summary(),
		},
		Consume: ConsumeFigures{
			Consumers: len(cs), Records: st.winConsumed.Load(), Bytes: st.winConsumedBytes.Load(),
			Errors: st.consumeErrors.Load(),
		},
		FirstError:      st.firstError(),
		CPUIncludesServ: r.tgt.InProcess(),
	}
	if secs > 0 {
		rep.Produce.RecPerSec = float64(rep.Produce.Records) / secs
		rep.Produce.MiBPerSec = float64(rep.Produce.Bytes) / secs / (1 << 20)
		rep.Consume.RecPerSec = float64(rep.Consume.Records) / secs
		rep.Consume.MiBPerSec = float64(rep.Consume.Bytes) / secs / (1 << 20)
	}
	if st.e2e {
		s := st.e2eLat.Summary()
		rep.EndToEnd = &s
	}

	c := &rep.Consistency
	c.Acked = st.acked.Load()
	for i, cn := range cs {
		n := cn.consumed.Load()
		if i == 0 || n < c.ConsumedMin {
			c.ConsumedMin = n
		}
		c.ConsumedMax = max(c.ConsumedMax, n)
	}
	if len(cs) > 0 && (c.ConsumedMin != c.Acked || c.ConsumedMax != c.Acked) {
		c.Problems = append(c.Problems, fmt.Sprintf("acknowledged %d records, consumers read %d to %d", c.Acked, c.ConsumedMin, c.ConsumedMax))
	}
	if !drained {
		c.Problems = append(c.Problems, "consumers had not read everything when the drain timed out")
	}
	if n := st.failed.Load() + st.consumeErrors.Load(); n > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d errors (first: %s)", n, rep.FirstError))
	}
	if !rep.Produce.Latency.Ordered() || (rep.EndToEnd != nil && !rep.EndToEnd.Ordered()) {
		c.Problems = append(c.Problems, "percentiles out of order")
	}
	if sent, done := st.sent.Load(), st.acked.Load()+st.failed.Load(); sent != done {
		c.Problems = append(c.Problems, fmt.Sprintf("%d records sent, %d answered", sent, done))
	}
	c.OK = len(c.Problems) == 0
	return rep
}

// finish adds the figures derived from the others.
func (r *runner) finish(rep *Report) {
	if rep.Seconds > 0 {
		rep.CPUCores = rep.ClientCPUSeconds / rep.Seconds
	}
	rep.Load = [2]float64{r.loadBefore, loadAverage()}
	rep.Cores = runtime.NumCPU()
	if s := rep.ServerFigures; s != nil && rep.CatchUp == nil {
		rep.Cost = EstimateCost(r.cfg.Prices, float64(rep.Produce.Bytes)/max(rep.Seconds, 1e-9), rep.Workload.Consumers, s.PutsPerSec, s.GetsPerSec)
	}
}

// WriteText renders the report as tables for people.
func (rep *Report) WriteText(w io.Writer) {
	wl := rep.Workload
	title := "floe bench: " + rep.Target
	if rep.Partial {
		title += "  (PARTIAL: interrupted)"
	}
	fmt.Fprintf(w, "%s\n  server:   %s\n", title, rep.Server)
	rate := "as fast as possible"
	if wl.RateMiBps > 0 {
		rate = fmt.Sprintf("%.2f MiB/s", wl.RateMiBps)
	}
	fmt.Fprintf(w, "  workload: %d topic(s) × %d partitions, %d producer(s), %d consumer(s), %d-byte records, keys %s, rate %s, acks %s, compression %s, client linger %gms\n",
		wl.Topics, wl.Partitions, wl.Producers, wl.Consumers, wl.RecordSize, wl.Keys, rate, wl.Acks, wl.Compression, wl.LingerMs)
	if wl.TopicCompression != "" {
		fmt.Fprintf(w, "  topics: compression.type=%s\n", wl.TopicCompression)
	}
	if len(wl.TopicConfigs) > 0 {
		keys := slices.Sorted(maps.Keys(wl.TopicConfigs))
		for i, k := range keys {
			keys[i] = k + "=" + wl.TopicConfigs[k]
		}
		fmt.Fprintf(w, "  topics:   created with %s\n", strings.Join(keys, ", "))
	}
	if rep.CatchUp != nil {
		fmt.Fprintf(w, "  catch-up: %.0f MiB of history written as fast as possible, then read from offset 0 (server restarted cold: %v)\n",
			float64(rep.CatchUp.Bytes)/(1<<20), rep.CatchUp.ColdRestart)
		if c := rep.CatchUp.Compacted; c != nil {
			fmt.Fprintf(w, "  compacted before the read: %d extents → %d in %.1f s\n", c.ExtentsBefore, c.ExtentsAfter, c.Seconds)
		}
	} else {
		fmt.Fprintf(w, "  window:   %.1fs measured after %.0fs warm-up; latency from each record's intended send time\n", rep.Seconds, wl.WarmupSec)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\trecords/s\tMiB/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	p := rep.Produce
	name := "produce"
	if rep.CatchUp != nil {
		name = "produce (fill)"
	}
	fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t\n", name, count(int64(p.RecPerSec)), p.MiBPerSec, latencyCells(p.Latency))
	if e := rep.EndToEnd; e != nil {
		fmt.Fprintf(tw, "end-to-end\t\t\t%s\t\n", latencyCells(*e))
	}
	if c := rep.Consume; c.Consumers > 0 {
		name := fmt.Sprintf("consume (all %d)", c.Consumers)
		if rep.CatchUp != nil {
			name = "catch-up read"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t\t\t\t\t\t\n", name, count(int64(c.RecPerSec)), c.MiBPerSec)
	}
	tw.Flush()
	fmt.Fprintln(w)

	fmt.Fprintf(w, "  errors:      produce %d, consume %d; behind schedule %d records\n", p.Errors, rep.Consume.Errors, p.Missed)
	c := rep.Consistency
	if c.OK {
		fmt.Fprintf(w, "  consistency: ok: %s records acknowledged, every consumer read them all; percentiles ordered\n", count(c.Acked))
	} else {
		fmt.Fprintf(w, "  consistency: NOT OK: %s\n", strings.Join(c.Problems, "; "))
	}
	who := "clients"
	if rep.CPUIncludesServ {
		who = "clients + in-process server"
	}
	fmt.Fprintf(w, "  CPU:         %.1f s over the window = %.2f cores (this process: %s); machine load average %.1f → %.1f on %d cores\n",
		rep.ClientCPUSeconds, rep.CPUCores, who, rep.Load[0], rep.Load[1], rep.Cores)
	if s := rep.ServerFigures; s != nil {
		fmt.Fprintf(w, "  server:      %.0f PUTs (%.2f/s, avg %.0f KiB, avg %.1f ms), %.0f GETs (%.2f/s, %.1f MiB), %.0f segment commits (avg %.1f ms, %.0f flushed early), cache %0.f hits / %.0f misses, store errors %.0f\n",
			s.Puts, s.PutsPerSec, s.AvgObjectKB, s.AvgPutMillis, s.Gets, s.GetsPerSec, s.GetBytes/(1<<20), s.Flushes, s.AvgCommitMilli, s.EarlyFlushes, s.CacheHits, s.CacheMisses, s.Errors)
		cpu := fmt.Sprintf("%.1f s", s.CPUSeconds)
		if s.SameProcess {
			cpu += " (same process as the clients)"
		}
		fmt.Fprintf(w, "               server CPU %s, peak RSS %.0f MiB\n", cpu, s.PeakRSSMiB)
	}
	if rep.ServerFigures == nil {
		fmt.Fprintln(w, "  server:      no Floe metrics (not a Floe agent, or no --admin URL)")
	}
	if rep.Breakdown != nil {
		rep.Breakdown.WriteText(w)
	}
	if rep.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", rep.FirstError)
	}
	if rep.Cost != nil {
		fmt.Fprintln(w)
		rep.Cost.WriteText(w)
	}
}

func latencyCells(s Summary) string {
	if s.Count == 0 {
		return "-\t-\t-\t-\t-"
	}
	return fmt.Sprintf("%.1f\t%.1f\t%.1f\t%.1f\t%.1f", s.P50, s.P90, s.P99, s.P999, s.Max)
}

// WriteText renders the cost comparison with its assumptions.
func (c *Cost) WriteText(w io.Writer) {
	fmt.Fprintf(w, "  estimated monthly cost of this workload (%.2f MiB/s), storage and network only:\n", c.WriteMiBps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range c.Floe {
		fmt.Fprintf(tw, "    Floe\t%s\t$%.2f\t%s\n", l.Item, l.Dollars, l.How)
	}
	fmt.Fprintf(tw, "    Floe\ttotal\t$%.2f\t\n", c.FloeTotal)
	for _, l := range c.Kafka {
		fmt.Fprintf(tw, "    Kafka\t%s\t$%.2f\t%s\n", l.Item, l.Dollars, l.How)
	}
	fmt.Fprintf(tw, "    Kafka\ttotal\t$%.2f\t\n", c.KafkaTotal)
	tw.Flush()
	fmt.Fprintln(w, "  assumptions:")
	for _, a := range c.Assumptions {
		fmt.Fprintf(w, "    - %s\n", a)
	}
}

// Ratio is one figure of two runs side by side.
type Ratio struct {
	Metric string  `json:"metric"`
	A      float64 `json:"a"`
	B      float64 `json:"b"`
	Ratio  float64 `json:"a_over_b"` // 0 when B is 0
}

// Compare lines up the figures of two runs of the same workload.
func Compare(a, b *Report) []Ratio {
	cpuPerMiB := func(r *Report) float64 {
		mib := float64(r.Produce.Bytes+r.Consume.Bytes) / (1 << 20)
		if mib == 0 {
			return 0
		}
		return r.ClientCPUSeconds / mib * 1000
	}
	rows := []Ratio{
		{Metric: "produce records/s", A: a.Produce.RecPerSec, B: b.Produce.RecPerSec},
		{Metric: "produce MiB/s", A: a.Produce.MiBPerSec, B: b.Produce.MiBPerSec},
		{Metric: "produce p50 ms", A: a.Produce.Latency.P50, B: b.Produce.Latency.P50},
		{Metric: "produce p99 ms", A: a.Produce.Latency.P99, B: b.Produce.Latency.P99},
		{Metric: "produce p99.9 ms", A: a.Produce.Latency.P999, B: b.Produce.Latency.P999},
	}
	if a.EndToEnd != nil && b.EndToEnd != nil {
		rows = append(rows,
			Ratio{Metric: "end-to-end p50 ms", A: a.EndToEnd.P50, B: b.EndToEnd.P50},
			Ratio{Metric: "end-to-end p99 ms", A: a.EndToEnd.P99, B: b.EndToEnd.P99})
	}
	rows = append(rows,
		Ratio{Metric: "consume MiB/s (all consumers)", A: a.Consume.MiBPerSec, B: b.Consume.MiBPerSec},
		Ratio{Metric: "process CPU ms per MiB moved", A: cpuPerMiB(a), B: cpuPerMiB(b)})
	for i := range rows {
		if rows[i].B != 0 {
			rows[i].Ratio = rows[i].A / rows[i].B
		}
	}
	return rows
}

// WriteComparison renders Compare's rows.
func WriteComparison(w io.Writer, nameA, nameB string, rows []Ratio) {
	fmt.Fprintf(w, "side by side: %s vs %s (same workload, same machine, one after the other)\n\n", nameA, nameB)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t%s\t%s\t%s / %s\t\n", nameA, nameB, nameA, nameB)
	for _, r := range rows {
		ratio := "-"
		if r.B != 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t\n", r.Metric, r.A, r.B, ratio)
	}
	tw.Flush()
}
