package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Run runs the workload in cfg against tgt and returns its report. When
// ctx is cancelled (Ctrl-C) the run stops early, still drains what is in
// flight for a few seconds, and returns a partial report (Partial set)
// rather than an error.
func Run(ctx context.Context, cfg Config, tgt Target) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: &cfg, tgt: tgt, http: &http.Client{}, loadBefore: loadAverage()}
	r.topics = topicNames(cfg.TopicPrefix, cfg.Topics)
	if err := r.createTopics(ctx); err != nil {
		return nil, err
	}
	if cfg.CatchUp > 0 {
		return r.catchUp(ctx)
	}
	return r.live(ctx)
}

type runner struct {
	cfg    *Config
	tgt    Target
	http   *http.Client
	topics []string

	peakRSS    float64
	loadBefore float64
}

func topicNames(prefix string, n int) []string {
	var id [4]byte
	_, _ = rand.Read(id[:])
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%s-%d", prefix, hex.EncodeToString(id[:]), i)
	}
	return names
}

func (r *runner) createTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(clientOpts(r.cfg, r.tgt.Brokers(), "floe-bench-admin")...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var configs map[string]*string
	if r.cfg.TopicCompression != "" {
		configs = map[string]*string{"compression.type": &r.cfg.TopicCompression}
	}
	for k, v := range r.cfg.TopicConfigs {
		if configs == nil {
			configs = make(map[string]*string)
		}
		configs[k] = &v
	}
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, int32(r.cfg.Partitions), int16(r.cfg.ReplicationFactor), configs, r.topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil {
			return fmt.Errorf("create topic %s: %w", t.Topic, t.Err)
		}
	}
	return nil
}

// scrape samples the target's metrics, tracking the peak RSS; nil when the
// target has no metrics or is not Floe.
func (r *runner) scrape(ctx context.Context) Sample {
	url := r.tgt.MetricsURL()
	if url == "" {
		return nil
	}
	s, err := Scrape(ctx, r.http, url)
	if err != nil {
		r.cfg.Logger.Warn("scrape server metrics", "url", url, "err", err)
		return nil
	}
	if !isFloe(s) {
		return nil
	}
	r.peakRSS = max(r.peakRSS, s.Sum("process_resident_memory_bytes"))
	return s
}

// live runs producers on a schedule while consumers read the live edge.
func (r *runner) live(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	start := time.Now().Add(500 * time.Millisecond) // time to connect
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	st := newStats(measureStart, true)

	consumers, err := r.startConsumers(st)
	if err != nil {
		return nil, err
	}
	defer closeConsumers(consumers)
	consumeCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	var cwg sync.WaitGroup
	for _, c := range consumers {
		cwg.Go(func() { c.run(consumeCtx) })
	}

	// The breakdown of produce latency: the agent's flush trace (an
	// in-process Floe) and the producer clients' hooks.
	var tracer *flushTracer
	if f, ok := r.tgt.(*Floe); ok {
		tracer = f.tracer
		tracer.reset(measureStart.UnixNano(), end.UnixNano())
	}
	inflightMax := 1 // franz-go's in-flight limit without idempotence
	if cfg.Acks == "all" {
		inflightMax = 5
	}
	var traces []*clientTrace

	keys := makeKeys(cfg)
	perProducer := cfg.recordsPerSecond() / float64(cfg.Producers)
	producers := make([]*producer, 0, cfg.Producers)
	defer func() {
		for _, p := range producers {
			p.cl.Close()
		}
	}()
	for i := range cfg.Producers {
		// Stagger the producers' schedules so their sends interleave.
		offset := time.Duration(0)
		if perProducer > 0 {
			offset = time.Duration(float64(time.Second) / perProducer * float64(i) / float64(cfg.Producers))
		}
		ct := newClientTrace(st, inflightMax)
		traces = append(traces, ct)
		p, err := newProducer(cfg, r.tgt.Brokers(), i, r.topics, st, NewPacer(start.Add(offset), perProducer), keys, 0, ct)
		if err != nil {
			stopConsumers()
			return nil, err
		}
		producers = append(producers, p)
	}

	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var pwg sync.WaitGroup
	sleep(ctx, time.Until(start))
	for _, p := range producers {
		pwg.Go(func() { p.run(ctx, sendCtx, end) })
	}

	// Watch the run: progress lines, the scrape that opens the window, and
	// the one that closes it (at end, or at Ctrl-C).
	var before, after Sample
	var cpuBefore, cpuAfter float64
	windowOpen := false
	openWindow := func() {
		windowOpen = true
		if cfg.Measuring != nil {
			cfg.Measuring(true)
		}
		before = r.scrape(ctx)
		cpuBefore = processCPU()
	}
	prog := newProgress(cfg, r.tgt.Name(), st, consumers)
	tick := time.NewTicker(cfg.ProgressInterval)
	openAt := time.NewTimer(time.Until(measureStart))
	endAt := time.NewTimer(time.Until(end))
	partial := false
watch:
	for {
		select {
		case <-openAt.C:
			openWindow()
		case <-tick.C:
			if windowOpen {
				r.scrape(ctx) // peak RSS
			}
			prog.line(phaseOf(time.Now(), measureStart, end))
		case <-endAt.C:
			break watch
		case <-ctx.Done():
			partial = true
			break watch
		}
	}
	tick.Stop()
	openAt.Stop()
	endAt.Stop()
	closedAt := time.Now()
	if partial && !windowOpen {
		closedAt = measureStart // nothing was measured
	}
	st.measureEnd.Store(closedAt.UnixNano())
	if tracer != nil {
		tracer.closeWindow(closedAt.UnixNano())
	}
	if windowOpen && cfg.Measuring != nil {
		cfg.Measuring(false)
	}
	if windowOpen {
		after = r.scrape(context.WithoutCancel(ctx))
		cpuAfter = processCPU()
	}

	// Drain: wait for every send to be acknowledged, then for every
	// consumer to have read everything that was acknowledged.
	drain := cfg.Drain
	if partial {
		drain = min(drain, 5*time.Second)
	}
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancelDrain()
	var fwg sync.WaitGroup
	fwg.Go(func() {
		pwg.Wait()
		for _, p := range producers {
			if err := p.cl.Flush(drainCtx); err != nil {
				cfg.Logger.Warn("flush producer", "err", err)
			}
		}
	})
	waitTicking(drainCtx, &fwg, cfg.ProgressInterval, func() { prog.line("drain") })
	cancelSends()
	drained := waitConsumers(drainCtx, consumers, st, prog)
	stopConsumers()
	cwg.Wait()
	prog.done()

	window := max(closedAt.Sub(measureStart), 0)
	rep := r.report(st, consumers, window, partial, drained)
	rep.Breakdown = breakdown(tracer, traces, window)
	if before != nil && after != nil {
		rep.ServerFigures = serverFigures(before, after, window.Seconds(), r.peakRSS)
		rep.ServerFigures.SameProcess = r.tgt.InProcess()
	}
	rep.ClientCPUSeconds = cpuAfter - cpuBefore
	r.finish(rep)
	return rep, nil
}

// catchUp writes cfg.CatchUp bytes of history as fast as it can, restarts
// the target when possible (cold caches), then measures consumers reading
// it all from the start.
func (r *runner) catchUp(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	fillStart := time.Now()
	st := newStats(fillStart, false)
	total := cfg.CatchUp / int64(cfg.RecordSize)
	per := max(total/int64(cfg.Producers), 1)
	keys := makeKeys(cfg)
	prog := newProgress(cfg, r.tgt.Name(), st, nil)

	var pwg sync.WaitGroup
	producers := make([]*producer, 0, cfg.Producers)
	closeProducers := func() {
		for _, p := range producers {
			p.cl.Close()
		}
		producers = nil
	}
	defer closeProducers()
	far := fillStart.Add(24 * time.Hour)
	for i := range cfg.Producers {
		p, err := newProducer(cfg, r.tgt.Brokers(), i, r.topics, st, NewPacer(fillStart, 0), keys, per)
		if err != nil {
			return nil, err
		}
		producers = append(producers, p)
		pwg.Go(func() { p.run(ctx, ctx, far) })
	}
	waitTicking(ctx, &pwg, cfg.ProgressInterval, func() { prog.line("fill") })
	for _, p := range producers {
		if err := p.cl.Flush(ctx); err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("flush history: %w", err)
		}
	}
	fillEnd := time.Now()
	fillSeconds := fillEnd.Sub(fillStart).Seconds()
	closeProducers()
	fillProduce := ProduceFigures{
		Records:   st.acked.Load(),
		Bytes:     st.ackedBytes.Load(),
		Errors:    st.failed.Load(),
		Latency:   st.produceLat.Summary(),
		RecPerSec: float64(st.acked.Load()) / fillSeconds,
		MiBPerSec: float64(st.ackedBytes.Load()) / fillSeconds / (1 << 20),
	}

	restarted := false
	var compacted *CompactFigures
	if c, ok := r.tgt.(Compacter); ok && cfg.CatchUpCompact && ctx.Err() == nil {
		prog.line("compact")
		fig, err := c.Compact(ctx)
		if err != nil {
			return nil, fmt.Errorf("compact history: %w", err)
		}
		compacted, restarted = &fig, true
	} else if ctx.Err() == nil {
		var err error
		if restarted, err = r.tgt.Restart(ctx); err != nil {
			return nil, err
		}
	}

	readStart := time.Now()
	st.measureStart = readStart.UnixNano()
	if cfg.Measuring != nil {
		cfg.Measuring(true)
	}
	before := r.scrape(ctx)
	cpuBefore := processCPU()
	consumers, err := r.startConsumers(st)
	if err != nil {
		return nil, err
	}
	defer closeConsumers(consumers)
	consumeCtx, stopConsumers := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for _, c := range consumers {
		cwg.Go(func() { c.run(consumeCtx) })
	}
	drainCtx, cancelDrain := context.WithTimeout(ctx, cfg.Drain)
	drained := waitConsumers(drainCtx, consumers, st, prog)
	cancelDrain()
	readEnd := time.Now()
	if drained {
		// waitConsumers notices the end within a 50 ms tick; the read
		// ended when the last consumer received its last records.
		var last int64
		for _, c := range consumers {
			last = max(last, c.lastAt.Load())
		}
		if last > readStart.UnixNano() {
			readEnd = time.Unix(0, last)
		}
	}
	st.measureEnd.Store(readEnd.UnixNano())
	if cfg.Measuring != nil {
		cfg.Measuring(false)
	}
	after := r.scrape(context.WithoutCancel(ctx))
	cpuAfter := processCPU()
	stopConsumers()
	cwg.Wait()
	prog.done()

	window := readEnd.Sub(readStart)
	rep := r.report(st, consumers, window, ctx.Err() != nil, drained)
	rep.Produce = fillProduce
	rep.Produce.Seconds = fillSeconds
	rep.CatchUp = &CatchUpFigures{Bytes: fillProduce.Bytes, Seconds: window.Seconds(), ColdRestart: restarted, Compacted: compacted}
	if before != nil && after != nil {
		rep.ServerFigures = serverFigures(before, after, window.Seconds(), r.peakRSS)
		rep.ServerFigures.SameProcess = r.tgt.InProcess()
	}
	rep.ClientCPUSeconds = cpuAfter - cpuBefore
	r.finish(rep)
	return rep, nil
}

func (r *runner) startConsumers(st *stats) ([]*consumer, error) {
	var cs []*consumer
	for i := range r.cfg.Consumers {
		c, err := newConsumer(r.cfg, r.tgt.Brokers(), i, r.topics, r.cfg.Partitions, st)
		if err != nil {
			closeConsumers(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeConsumers(cs []*consumer) {
	for _, c := range cs {
		c.cl.Close()
	}
}

// waitConsumers waits until every consumer has read every acknowledged
// record, or ctx ends; it reports whether they all did.
func waitConsumers(ctx context.Context, cs []*consumer, st *stats, prog *progress) bool {
	if len(cs) == 0 {
		return true
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		target := st.acked.Load()
		done := true
		for _, c := range cs {
			if c.consumed.Load() < target {
				done = false
			}
		}
		if done {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case now := <-t.C:
			if now.Sub(last) >= prog.interval {
				prog.line("drain")
				last = now
			}
		}
	}
}

// waitTicking waits for wg, calling tick every interval meanwhile.
func waitTicking(ctx context.Context, wg *sync.WaitGroup, interval time.Duration, tick func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			tick()
		case <-ctx.Done():
			<-done
			return
		}
	}
}

func phaseOf(now, measureStart, end time.Time) string {
	switch {
	case now.Before(measureStart):
		return "warm-up"
	case now.Before(end):
		return "measure"
	}
	return "drain"
}

// processCPU is this process's user+system CPU time in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// machineBusyCPU is the CPU time, in seconds, the machine's cores have
// spent on anything but idling and waiting for I/O since it booted
// (/proc/stat's first line, in the 1/100 s ticks of Linux's USER_HZ), or
// 0 where the machine does not say.
func machineBusyCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is counted in user already
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0
		}
		busy += float64(n)
	}
	return busy / 100
}

// loadAverage is the machine's 1-minute load average (Linux), or -1. A
// load well above the core count means other work shared the machine and
// the figures are noisier than usual.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
