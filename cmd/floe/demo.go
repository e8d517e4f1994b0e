package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// floe demo: a playground, a demo topic set, a producer and a consumer
// group at a modest rate, and a live view of what flows and what it
// costs in bucket requests.

// S3 standard list prices the demo's cost column uses (per request).
const (
	putPrice        = 0.005 / 1000
	getPrice        = 0.0004 / 1000
	secondsPerMonth = 30 * 24 * 3600
)

var demoTopics = []string{"demo-orders", "demo-clicks", "demo-payments"}

const demoGroup = "demo-consumers"

type demoFlags struct {
	rate        float64
	partitions  int
	recordBytes int
	refresh     time.Duration
	plain       bool
	dataDir     string
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f agentFlags
	f.register(fs, "127.0.0.1:9644")
	var d demoFlags
	fs.Float64Var(&d.rate, "rate", 200, "records per second the producer sends, over the demo topics")
	fs.IntVar(&d.partitions, "partitions", 3, "partitions of each demo topic")
	fs.IntVar(&d.recordBytes, "record-bytes", 200, "approximate size of each record's value")
	fs.DurationVar(&d.refresh, "refresh", time.Second, "how often the view is refreshed")
	fs.BoolVar(&d.plain, "plain", false, "print one line per refresh even on a terminal")
	fs.StringVar(&d.dataDir, "data-dir", "", "keep data in `DIR` (default: a temporary directory, removed on exit)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe demo [--rate N] [--partitions N] [--refresh D] [--plain] [playground flags]")
		fmt.Fprintln(stderr, "\nStarts a playground, creates the topics "+strings.Join(demoTopics, ", ")+",")
		fmt.Fprintln(stderr, "runs a producer and a consumer group ("+demoGroup+") on them and shows, refreshed")
		fmt.Fprintln(stderr, "in place (one line per refresh when stdout is not a terminal), records/s in and out,")
		fmt.Fprintln(stderr, "produce and end-to-end latency, bucket PUTs and GETs per second with their cost per")
		fmt.Fprintln(stderr, "month, and the consumer lag. Ctrl-C stops everything.")
		fs.PrintDefaults()
	}
	// Quieter than the playground by default (a flag, FLOE_LOG_LEVEL or
	// the file may say otherwise): the view and the logs share a terminal.
	f.logs.level = "warn"
	fs.Lookup("log-level").DefValue = "warn"
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if d.rate <= 0 || d.rate > 100_000 || d.partitions < 1 || d.partitions > 1000 || d.recordBytes < 16 || d.recordBytes > 1<<20 || d.refresh < 50*time.Millisecond {
		return errors.New("demo: want 0 < --rate <= 100000, 1 <= --partitions <= 1000, 16 <= --record-bytes <= 1048576, --refresh >= 50ms")
	}
	if err := f.finish(); err != nil {
		return err
	}
	log, err := f.logs.logger(stderr)
	if err != nil {
		return err
	}
	lc, err := startLocal(ctx, &f, d.dataDir, "floe-demo-", log)
	if err != nil {
		return err
	}
	defer lc.close()
	a := lc.agent

	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := createDemoTopics(setupCtx, a.Addr(), d.partitions); err != nil {
		return err
	}
	s := &demoStats{produceLat: newLatencyWindow(), e2eLat: newLatencyWindow()}
	runCtx, stopClients := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID("floe-demo-producer"), kgo.ProducerLinger(20*time.Millisecond))
	if err != nil {
		stopClients()
		return err
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID("floe-demo-consumer"),
		kgo.ConsumerGroup(demoGroup), kgo.ConsumeTopics(demoTopics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		prod.Close()
		stopClients()
		return err
	}
	wg.Add(2)
	go func() { defer wg.Done(); produceDemo(runCtx, prod, d, s, log) }()
	go func() { defer wg.Done(); consumeDemo(runCtx, cons, s) }()
	stop := func() {
		stopClients()
		wg.Wait()
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		prod.Flush(flushCtx)
		cancel()
		prod.Close()
		cons.Close() // commits what was consumed and leaves the group
	}

	view := &demoView{
		w: stdout, live: !d.plain && isTerminal(stdout), started: time.Now(),
		bootstrap: a.Addr(), admin: demoAdminURL(a.AdminAddr(), f.cfg.AdminTLS != nil, f.cfg.NoConsole), dir: lc.dir, partitions: d.partitions,
	}
	admin := kadm.NewClient(cons)
	sampler := newBucketSampler(a.Registry())
	ticker := time.NewTicker(d.refresh)
	defer ticker.Stop()
	view.header()
	for {
		select {
		case <-ctx.Done():
			view.stopping()
			stop()
			view.footer(s)
			return nil
		case <-ticker.C:
		}
		lagCtx, cancel := context.WithTimeout(ctx, d.refresh)
		lag := int64(-1)
		if lags, err := admin.Lag(lagCtx, demoGroup); err == nil {
			if l, ok := lags[demoGroup]; ok && l.Error() == nil {
				lag = l.Lag.Total()
			}
		}
		cancel()
		view.frame(s.snapshot(), sampler.sample(), lag)
	}
}

// createDemoTopics creates the demo topics if they do not exist yet.
func createDemoTopics(ctx context.Context, bootstrap string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ClientID("floe-demo-setup"))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), 1, nil, demoTopics...)
	if err != nil {
		return fmt.Errorf("demo: create topics: %w", err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil && !strings.Contains(t.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("demo: create topic %s: %w", t.Topic, t.Err)
		}
	}
	return nil
}

// produceDemo sends records at d.rate, spread over the demo topics,
// until ctx ends; each record's latency is taken in its promise.
func produceDemo(ctx context.Context, cl *kgo.Client, d demoFlags, s *demoStats, log *slog.Logger) {
	start := time.Now()
	var sent int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	pad := strings.Repeat("x", max(d.recordBytes-60, 0))
	items := []string{"kayak", "tent", "stove", "lamp", "boots", "map"}
	var failures atomic.Int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * d.rate)
		for ; sent < due; sent++ {
			if ctx.Err() != nil {
				return
			}
			topic := demoTopics[sent%int64(len(demoTopics))]
			value := fmt.Sprintf(`{"id":%d,"item":%q,"amount":%.2f,"pad":%q}`, sent, items[rand.IntN(len(items))], rand.Float64()*100, pad)
			at := time.Now()
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", sent%97), Value: []byte(value)}, func(_ *kgo.Record, err error) {
				if err != nil {
					if ctx.Err() == nil && failures.Add(1)%100 == 1 {
						log.Warn("demo: produce failed", "err", err)
					}
					return
				}
				s.produced.Add(1)
				s.produceLat.add(time.Since(at))
			})
		}
	}
}

// consumeDemo polls the demo group until ctx ends, measuring each
// record's end-to-end latency from its producer timestamp.
func consumeDemo(ctx context.Context, cl *kgo.Client, s *demoStats) {
	for ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, 1000)
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) {
			s.consumed.Add(1)
			s.e2eLat.add(now.Sub(r.Timestamp))
		})
	}
}

// demoStats are counted by the demo's clients.
type demoStats struct {
	produced, consumed atomic.Int64
	produceLat, e2eLat *latencyWindow
}

type statsSnapshot struct {
	at                 time.Time
	produced, consumed int64
	produce, e2e       [2]time.Duration // p50, p99 over the last window
}

func (s *demoStats) snapshot() statsSnapshot {
	return statsSnapshot{
		at: time.Now(), produced: s.produced.Load(), consumed: s.consumed.Load(),
		produce: s.produceLat.percentiles(), e2e: s.e2eLat.percentiles(),
	}
}

// latencyWindow keeps the latencies of the last few seconds, bounded in
// count, for percentiles that follow what happens now.
type latencyWindow struct {
	mu      sync.Mutex
	samples []latencySample
}

type latencySample struct {
	at time.Time
	d  time.Duration
}

const (
	latencyWindowSpan = 10 * time.Second
	latencyWindowMax  = 50_000
)

func newLatencyWindow() *latencyWindow { return &latencyWindow{} }

func (w *latencyWindow) add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) >= latencyWindowMax {
		w.samples = w.samples[len(w.samples)/2:] // drop the older half
	}
	w.samples = append(w.samples, latencySample{time.Now(), d})
}

// percentiles returns p50 and p99 of the window (zero when empty).
func (w *latencyWindow) percentiles() [2]time.Duration {
	w.mu.Lock()
	cut := time.Now().Add(-latencyWindowSpan)
	i := 0
	for i < len(w.samples) && w.samples[i].at.Before(cut) {
		i++
	}
	w.samples = w.samples[i:]
	ds := make([]time.Duration, len(w.samples))
	for j, s := range w.samples {
		ds[j] = s.d
	}
	w.mu.Unlock()
	if len(ds) == 0 {
		return [2]time.Duration{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(int(q*float64(len(ds))), len(ds)-1)] }
	return [2]time.Duration{at(0.50), at(0.99)}
}

// bucketSampler reads the agent's bucket request counters.
type bucketSampler struct {
	reg      prometheus.Gatherer
	at       time.Time
	put, get float64
}

type bucketRates struct{ putsPerSec, getsPerSec float64 }

func newBucketSampler(reg prometheus.Gatherer) *bucketSampler {
	b := &bucketSampler{reg: reg, at: time.Now()}
	b.put, b.get = b.read()
	return b
}

func (b *bucketSampler) read() (put, get float64) {
	mfs, err := b.reg.Gather()
	if err != nil {
		return b.put, b.get
	}
	for _, mf := range mfs {
		if mf.GetName() != "floe_objstore_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "op" {
					continue
				}
				switch l.GetValue() {
				case "put":
					put += m.GetCounter().GetValue()
				case "get":
					get += m.GetCounter().GetValue()
				}
			}
		}
	}
	return put, get
}

// sample returns the request rates since the previous sample.
func (b *bucketSampler) sample() bucketRates {
	now := time.Now()
	put, get := b.read()
	secs := now.Sub(b.at).Seconds()
	r := bucketRates{}
	if secs > 0 {
		r = bucketRates{(put - b.put) / secs, (get - b.get) / secs}
	}
	b.at, b.put, b.get = now, put, get
	return r
}

// demoView draws the demo's state: in place on a terminal, one line per
// refresh otherwise.
type demoView struct {
	w                io.Writer
	live             bool
	started          time.Time
	bootstrap, admin string
	dir              string
	partitions       int
	last             statsSnapshot
	inRate, outRate  float64
}

const (
	ansiHome       = "\x1b[H"
	ansiClearBelow = "\x1b[J"
	ansiClearLine  = "\x1b[K"
	ansiClearAll   = "\x1b[2J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
)

func (v *demoView) header() {
	v.last = statsSnapshot{at: time.Now()}
	if v.live {
		fmt.Fprint(v.w, ansiHideCursor+ansiClearAll+ansiHome)
		return
	}
	fmt.Fprintf(v.w, "floe demo: bootstrap %s, console %s, data %s\n", v.bootstrap, v.admin, v.dir)
	fmt.Fprintf(v.w, "floe demo: producing to %s (%d partitions each), consumer group %s; Ctrl-C stops\n",
		strings.Join(demoTopics, ", "), v.partitions, demoGroup)
}

func (v *demoView) frame(s statsSnapshot, b bucketRates, lag int64) {
	secs := s.at.Sub(v.last.at).Seconds()
	if secs > 0 {
		v.inRate = float64(s.produced-v.last.produced) / secs
		v.outRate = float64(s.consumed-v.last.consumed) / secs
	}
	v.last = s
	lagText := "unknown"
	if lag >= 0 {
		lagText = fmt.Sprintf("%d", lag)
	}
	if !v.live {
		fmt.Fprintf(v.w, "%s in=%.1f/s out=%.1f/s produce_p50=%s produce_p99=%s e2e_p50=%s e2e_p99=%s puts=%.1f/s ($%.2f/month) gets=%.1f/s ($%.2f/month) lag=%s\n",
			s.at.Format("15:04:05"), v.inRate, v.outRate, ms(s.produce[0]), ms(s.produce[1]), ms(s.e2e[0]), ms(s.e2e[1]),
			b.putsPerSec, b.putsPerSec*putPrice*secondsPerMonth, b.getsPerSec, b.getsPerSec*getPrice*secondsPerMonth, lagText)
		return
	}
	up := time.Since(v.started).Truncate(time.Second)
	lines := []string{
		fmt.Sprintf("Floe demo: a playground with a producer and a consumer group      up %s", up),
		"",
		fmt.Sprintf("  bootstrap   %s", v.bootstrap),
		fmt.Sprintf("  console     %s", v.admin),
		fmt.Sprintf("  data        %s", v.dir),
		fmt.Sprintf("  topics      %s (%d partitions each)", strings.Join(demoTopics, ", "), v.partitions),
		fmt.Sprintf("  group       %s", demoGroup),
		"",
		fmt.Sprintf("  %-18s %12s %14s", "", "now", "total"),
		fmt.Sprintf("  %-18s %10.1f/s %14d", "records in", v.inRate, s.produced),
		fmt.Sprintf("  %-18s %10.1f/s %14d", "records out", v.outRate, s.consumed),
		fmt.Sprintf("  %-18s p50 %8s   p99 %8s", "produce latency", ms(s.produce[0]), ms(s.produce[1])),
		fmt.Sprintf("  %-18s p50 %8s   p99 %8s", "end-to-end", ms(s.e2e[0]), ms(s.e2e[1])),
		fmt.Sprintf("  %-18s %10.1f/s   $%9.2f/month", "bucket PUTs", b.putsPerSec, b.putsPerSec*putPrice*secondsPerMonth),
		fmt.Sprintf("  %-18s %10.1f/s   $%9.2f/month", "bucket GETs", b.getsPerSec, b.getsPerSec*getPrice*secondsPerMonth),
		fmt.Sprintf("  %-18s %12s records", "consumer lag", lagText),
		"",
		"  (S3 standard list prices: $0.005 per 1,000 PUTs, $0.0004 per 1,000 GETs)",
		fmt.Sprintf("  Try: kcat -b %s -t %s -C -o -3 -e", v.bootstrap, demoTopics[0]),
		"  Ctrl-C stops everything.",
	}
	var sb strings.Builder
	sb.WriteString(ansiHome)
	for _, l := range lines {
		sb.WriteString(l)
		sb.WriteString(ansiClearLine + "\r\n")
	}
	sb.WriteString(ansiClearBelow)
	io.WriteString(v.w, sb.String())
}

func (v *demoView) stopping() {
	if v.live {
		fmt.Fprint(v.w, "\r\n  stopping: producer, consumer group, agent …"+ansiClearLine+"\r\n")
		return
	}
	fmt.Fprintln(v.w, "floe demo: stopping")
}

func (v *demoView) footer(s *demoStats) {
	end := "\n"
	if v.live {
		end = ansiShowCursor + "\r\n"
	}
	fmt.Fprintf(v.w, "floe demo: stopped after %s: %d records produced, %d consumed%s",
		time.Since(v.started).Truncate(time.Second), s.produced.Load(), s.consumed.Load(), end)
}

// demoAdminURL is the web console's URL (the admin listener's root), or
// its /metrics without the console, or "off".
func demoAdminURL(addr string, tls, noConsole bool) string {
	if addr == "" {
		return "off"
	}
	base := "http://" + addr + "/"
	if tls {
		base = "https://" + addr + "/"
	}
	if noConsole {
		return base + "metrics"
	}
	return base
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
