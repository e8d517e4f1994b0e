package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/cliconfig"
)

// benchFlags are the flags of `floe bench` that need parsing beyond the
// flag package's types.
type benchFlags struct {
	cfg           bench.Config
	brokers       string
	admin         string
	targets       string
	floe          bench.FloeOptions
	bucketLat     string
	proxyLat      string
	recordSize    string
	rate          string
	catchUp       string
	maxBuffered   string
	keys          string
	jsonOut       bool
	progress      time.Duration
	cpuProfile    string
	memProfile    string
	runs          int
	isolate       bool
	vsPartitions  int
	windowProfile string
	preset        string
	listPresets   bool
	logLevel      string
	retentionDay  float64
	security      clientSecurityFlags
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	c := &b.cfg
	fs.StringVar(&b.brokers, "brokers", "127.0.0.1:9092", "bootstrap `HOST:PORT[,HOST:PORT...]` of any Kafka-compatible server")
	fs.StringVar(&b.admin, "admin", "", "Floe admin `URL` (or HOST:PORT) to scrape /metrics from before and after the run")
	fs.StringVar(&b.targets, "target", "", "run against in-process servers instead of --brokers: floe, kfake, or floe,kfake (side by side, with ratios)")
	fs.BoolVar(&b.isolate, "isolate", false, "with --target: run each target of each run in a process of its own (this command again, its report read back), so that no target runs on a heap that another one, or an earlier run, left behind")
	fs.DurationVar(&b.floe.Linger, "floe-linger", 250*time.Millisecond, "in-process Floe: agent linger")
	fs.IntVar(&b.floe.SegmentBytes, "floe-segment-bytes", 8<<20, "in-process Floe: flush the open segment at this size")
	fs.BoolVar(&b.floe.DisableEarlyFlush, "floe-no-early-flush", false, "in-process Floe: keep every segment open for its whole linger (the agent's --early-flush=false)")
	fs.DurationVar(&b.floe.FlushMinInterval, "floe-flush-min-interval", 0, "in-process Floe: the agent's --flush-min-interval (0: linger / 2)")
	fs.IntVar(&b.floe.FlushWindowReserve, "floe-flush-window-reserve", 0, "in-process Floe: the agent's --flush-window-reserve (0: none; -1: estimated per connection)")
	fs.Int64Var(&b.floe.CacheBytes, "floe-cache-bytes", 256<<20, "in-process Floe: block cache size")
	fs.StringVar(&b.floe.Bucket, "floe-bucket", "", "in-process Floe: bucket `URL` (file://, s3://, gs://, azblob://); each run uses a fresh prefix and deletes it (default: the simulated bucket of --floe-sim-bucket)")
	fs.StringVar(&b.floe.SimBucket, "floe-sim-bucket", bench.SimBucketMemory, "in-process Floe without --floe-bucket: memory (objects in memory, a request costs exactly --bucket-latency) or directory (a temporary local directory that also writes and fsyncs every PUT)")
	fs.BoolVar(&b.floe.MetastoreNoSync, "floe-metastore-nosync", false, "in-process Floe: open the embedded metadata store without fsync (commits cost bbolt's work, not the disk's flush)")
	fs.StringVar(&b.bucketLat, "bucket-latency", "0", "in-process Floe: delay every bucket request in the process, e.g. 20ms-50ms (uniform) or 30ms")
	fs.StringVar(&b.proxyLat, "bucket-proxy-latency", "0", "in-process Floe: put an HTTP proxy delaying every request, e.g. 20ms-50ms, in front of the --floe-bucket endpoint")

	fs.IntVar(&c.Topics, "topics", 1, "topics to create and use")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions per topic")
	fs.IntVar(&c.ReplicationFactor, "replication-factor", -1, "replication factor of created topics (-1: broker default)")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", "floe-bench", "created topics are named `PREFIX`-RUNID-N")
	fs.Func("topic-config", "set `NAME=VALUE` on the created topics (repeatable, or comma-separated), e.g. floe.latency.target.ms=50", func(v string) error {
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return fmt.Errorf("%q is not NAME=VALUE", kv)
			}
			if c.TopicConfigs == nil {
				c.TopicConfigs = make(map[string]string)
			}
			c.TopicConfigs[k] = val
		}
		return nil
	})
	fs.IntVar(&c.Producers, "producers", 1, "producer clients")
	fs.IntVar(&c.Consumers, "consumers", 1, "consumer clients; each reads every partition, like one consumer group")
	fs.StringVar(&b.recordSize, "record-size", "1KiB", "record value `SIZE` (at least 8 bytes)")
	fs.StringVar(&b.keys, "keys", "none", "key distribution: none (round-robin partitions), uniform, zipf, sequential")
	fs.IntVar(&c.KeyCount, "key-count", 10000, "distinct keys for keyed distributions")
	fs.StringVar(&b.rate, "rate", "4MiB", "target produce `RATE` in bytes/s over all producers (e.g. 4MiB), or max")
	fs.StringVar(&c.Acks, "acks", "all", "acks: all, leader, none (leader and none disable idempotence)")
	fs.StringVar(&c.Compression, "compression", "none", "batch compression: none, gzip, snappy, lz4, zstd")
	fs.StringVar(&c.TopicCompression, "topic-compression", "", "compression.type of the created topics: producer, uncompressed, gzip, snappy, lz4, zstd (default: not set); batches of another codec are recompressed by the server")
	fs.DurationVar(&c.Linger, "linger", 10*time.Millisecond, "producer client linger")
	fs.StringVar(&b.maxBuffered, "max-buffered", "256MiB", "unacknowledged bytes each producer may buffer")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "warm-up excluded from the figures")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured duration")
	fs.StringVar(&b.catchUp, "catch-up", "0", "catch-up scenario: write `SIZE` of history as fast as possible, then measure reading it from the start")
	fs.BoolVar(&c.CatchUpCompact, "catch-up-compact", false, "catch-up scenario, in-process Floe: compact the history (few large objects) before the cold read")
	fs.Int64Var(&b.floe.ReadAheadBytes, "floe-read-ahead-bytes", 0, "in-process Floe: read-ahead memory (0: half the cache; -1: no read-ahead)")
	fs.DurationVar(&c.Drain, "drain", time.Minute, "how long to wait after the run for acks and consumers")

	p := &c.Prices
	fs.Float64Var(&p.PutPer1000, "price-put", 0.005, "object PUT price in $ per 1,000")
	fs.Float64Var(&p.GetPer1000, "price-get", 0.0004, "object GET price in $ per 1,000")
	fs.Float64Var(&p.StorageGiBMonth, "price-storage", 0.023, "object storage price in $ per GiB-month")
	fs.Float64Var(&p.CrossZoneGiB, "price-cross-zone", 0.02, "cross-zone transfer price in $ per GiB (both directions)")
	fs.Float64Var(&p.DiskGiBMonth, "price-disk", 0.08, "Kafka broker disk price in $ per GiB-month")
	fs.Float64Var(&b.retentionDay, "retention-days", 7, "retention assumed by the cost estimate")
	fs.IntVar(&p.Zones, "zones", 3, "availability zones assumed by the cost estimate")
	fs.IntVar(&p.ReplicationFact, "kafka-replication", 3, "Kafka replication factor assumed by the cost estimate")
	fs.Float64Var(&p.DiskUtilisation, "kafka-disk-use", 0.5, "fraction of Kafka's disks that is data (the rest is headroom)")

	fs.BoolVar(&b.jsonOut, "json", false, "print the report as JSON")
	fs.DurationVar(&b.progress, "progress", time.Second, "progress line interval on stderr (0: none)")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (clients and in-process servers) to `FILE`")
	fs.StringVar(&b.memProfile, "memprofile", "", "write an allocation profile of the whole run (clients and in-process servers) to `FILE`")
	fs.IntVar(&b.runs, "runs", 1, "repeat the whole workload `N` times (every target each time) and print the medians and the per-run ratios")
	fs.IntVar(&b.vsPartitions, "vs-partitions", 0, "run the workload a second time with `N` partitions per topic after each --partitions run, on every target, and print the ratios between the two (e.g. 10,000 against 12)")
	fs.StringVar(&b.windowProfile, "cpuprofile-window", "", "write a CPU profile of each target's measured window only (the read, for --catch-up) to `PREFIX`-TARGET.pprof")
	fs.StringVar(&b.preset, "preset", "", "start from a named preset (see --list-presets); later flags override it")
	fs.BoolVar(&b.listPresets, "list-presets", false, "list the presets and their command lines")
	fs.StringVar(&b.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	b.security.register(fs)
}

// finish turns the string flags into the config.
func (b *benchFlags) finish() error {
	var errs []error
	parse := func(name, v string, dst *int64) {
		n, err := bench.ParseBytes(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", name, err))
		}
		*dst = n
	}
	var size int64
	parse("record-size", b.recordSize, &size)
	b.cfg.RecordSize = int(size)
	if r := strings.ToLower(strings.TrimSpace(b.rate)); r == "max" {
		b.cfg.Rate = 0
	} else {
		parse("rate", b.rate, &b.cfg.Rate)
	}
	parse("catch-up", b.catchUp, &b.cfg.CatchUp)
	// No background job may rewrite the history while it is read: the
	// catch-up scenario compacts it first (--catch-up-compact) or not at
	// all.
	b.floe.NoJobs = b.cfg.CatchUp > 0
	parse("max-buffered", b.maxBuffered, &b.cfg.MaxBuffered)
	var err error
	if b.cfg.Keys, err = bench.ParseKeyDist(b.keys); err != nil {
		errs = append(errs, fmt.Errorf("--keys: %w", err))
	}
	if b.floe.BucketLatency, err = bench.ParseLatencyRange(b.bucketLat); err != nil {
		errs = append(errs, fmt.Errorf("--bucket-latency: %w", err))
	}
	if b.floe.ProxyLatency, err = bench.ParseLatencyRange(b.proxyLat); err != nil {
		errs = append(errs, fmt.Errorf("--bucket-proxy-latency: %w", err))
	}
	b.cfg.Prices.Retention = bench.Days(b.retentionDay)
	if b.cfg.ClientOpts, err = b.security.opts(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// presetName finds --preset in args before they are parsed, so that the
// preset's flags can be applied first and the user's on top.
func presetName(args []string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "preset="); ok {
			return v
		}
		if a == "preset" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "metastore" {
		return benchMetastoreCmd(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b benchFlags
	b.register(fs)
	var preset bench.Preset
	if name := presetName(args); name != "" {
		var ok bool
		if preset, ok = bench.FindPreset(name); !ok {
			return fmt.Errorf("unknown preset %q (see floe bench --list-presets)", name)
		}
		if err := fs.Parse(preset.Args); err != nil {
			return fmt.Errorf("preset %s: %w", name, err)
		}
	}
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if b.listPresets {
		for _, p := range bench.Presets() {
			fmt.Fprintf(stdout, "%-15s %s: %s\n    %s\n", p.Name, p.Title, p.Why, p.CommandLine())
		}
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := b.finish(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(b.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	b.cfg.Logger = log
	b.floe.Logger = log
	if b.progress > 0 {
		b.cfg.Progress, b.cfg.ProgressInterval = stderr, b.progress
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				b.cfg.ProgressInPlace = true
			}
		}
	}
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if b.memProfile != "" {
		defer writeAllocProfile(b.memProfile, stderr)
	}
	if b.runs < 1 {
		return fmt.Errorf("--runs %d: want at least 1", b.runs)
	}
	if b.isolate && strings.TrimSpace(b.targets) == "" {
		return errors.New("--isolate runs in-process targets: give --target")
	}
	limitBenchMemory()
	if b.vsPartitions < 0 {
		return fmt.Errorf("--vs-partitions %d: want a partition count", b.vsPartitions)
	}
	type variant struct {
		name       string
		partitions int
	}
	variants := []variant{{"", b.cfg.Partitions}}
	if b.vsPartitions > 0 {
		variants = []variant{
			{fmt.Sprintf("partitions=%d", b.cfg.Partitions), b.cfg.Partitions},
			{fmt.Sprintf("partitions=%d", b.vsPartitions), b.vsPartitions},
		}
	}
	var (
		sets    []reportSet
		results []bench.RunResult
	)
runs:
	for run := 1; run <= b.runs; run++ {
		for _, v := range variants {
			set := reportSet{run: run, variant: v.name}
			for _, name := range targetNames(b.targets) {
				if ctx.Err() != nil {
					break runs // interrupted: report what ran
				}
				var (
					rep *bench.Report
					err error
				)
				if b.isolate {
					rep, err = runIsolated(ctx, fs, b.cfg.TopicConfigs, name, v.partitions, windowProfileName(b.windowProfile, name, run, b.runs, v.name), b.windowProfile != "", stderr)
				} else {
					rep, err = b.runInProcess(ctx, name, run, v.name, v.partitions, stderr)
				}
				if err != nil {
					return err
				}
				set.reports = append(set.reports, rep)
				results = append(results, bench.RunResult{Run: run, Variant: v.name, Target: rep.Target, Figures: bench.FiguresOf(rep, b.cfg.Prices)})
			}
			sets = append(sets, set)
		}
	}
	var medians *bench.Medians
	if b.runs > 1 || len(variants) > 1 {
		m := bench.Summarize(results)
		medians = &m
	}
	return writeReports(stdout, b.jsonOut, preset, sets, results, medians)
}

// runInProcess runs one run of one target (variant, at partitions) in
// this process.
func (b *benchFlags) runInProcess(ctx context.Context, name string, run int, variant string, partitions int, stderr io.Writer) (*bench.Report, error) {
	tgt, err := startTarget(name, b.brokers, b.admin, b.floe)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "floe bench: %s\n", tgt.Describe())
	if b.runs > 1 || variant != "" {
		fmt.Fprintf(stderr, "floe bench: run %d of %d %s\n", run, b.runs, variant)
	}
	cfg := b.cfg
	cfg.Partitions = partitions
	if b.windowProfile != "" && b.cpuProfile == "" {
		cfg.Measuring = windowProfiler(windowProfileName(b.windowProfile, tgt.Name(), run, b.runs, variant), stderr)
	}
	rep, err := bench.Run(ctx, cfg, tgt)
	if f, ok := tgt.(*bench.Floe); ok && f.ProxyStats() != "" {
		fmt.Fprintf(stderr, "floe bench: the latency proxy forwarded %s over the whole run\n", f.ProxyStats())
	}
	if f, ok := tgt.(*bench.Floe); ok && f.BucketLatencyStats() != "" {
		fmt.Fprintf(stderr, "floe bench: simulated bucket over the whole run (warm-up included): %s\n", f.BucketLatencyStats())
	}
	if cerr := tgt.Close(); cerr != nil {
		fmt.Fprintf(stderr, "floe bench: closing %s: %v\n", tgt.Name(), cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tgt.Name(), err)
	}
	return rep, nil
}

// isolatedFlags are the flags runIsolated sets on the child's command
// line, or leaves unset, rather than passing on the parent's (nor their
// FLOE_* variables, nor the --config file, whose settings the parent
// passes as variables).
var isolatedFlags = map[string]bool{
	"target": true, "runs": true, "json": true, "isolate": true, "partitions": true, "vs-partitions": true,
	"preset": true, "list-presets": true, cliconfig.ConfigFlag: true, "cpuprofile": true, "cpuprofile-window": true, "memprofile": true,
	"topic-config": true,
}

// runIsolated runs one run of one target in a child process: this
// command again, with the parent's flags (passed as FLOE_* environment
// variables, so that no secret shows on a command line) and --target
// name, --runs 1, --json; the child's report is read from its output
// and its progress goes to stderr.
func runIsolated(ctx context.Context, fs *flag.FlagSet, topicConfigs map[string]string, name string, partitions int, profile string, profiling bool, stderr io.Writer) (*bench.Report, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--isolate: %w", err)
	}
	// The parent's own settings, from its command line, environment or
	// --config file, all go as variables; those the child must not
	// inherit (its --runs, its profiles, --vs-partitions, the file) go.
	drop := map[string]bool{}
	for name := range isolatedFlags {
		drop[cliconfig.EnvName(name)] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if !isolatedFlags[f.Name] {
			env = append(env, cliconfig.EnvName(f.Name)+"="+f.Value.String())
		}
	})
	if len(topicConfigs) > 0 {
		var kvs []string
		for _, k := range slices.Sorted(maps.Keys(topicConfigs)) {
			kvs = append(kvs, k+"="+topicConfigs[k])
		}
		env = append(env, cliconfig.EnvName("topic-config")+"="+strings.Join(kvs, ","))
	}
	args := []string{"bench", "--target", name, "--runs", "1", "--json", "--isolate=false", "--partitions", strconv.Itoa(partitions)}
	if profiling {
		// The child names it PREFIX-TARGET.pprof: the parent's name.
		args = append(args, "--cpuprofile-window", strings.TrimSuffix(profile, "-"+name+".pprof"))
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	// Interrupted, the child stops as the parent would: it drains for a
	// few seconds and prints its partial report, which is kept.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	var out bytes.Buffer
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, stderr
	runErr := cmd.Run()
	if runErr != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%s in a process of its own: %w", name, runErr)
	}
	var rep struct {
		Runs []*bench.Report `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("%s in a process of its own: its report: %w", name, errors.Join(err, runErr))
	}
	if len(rep.Runs) != 1 {
		return nil, fmt.Errorf("%s in a process of its own: %d reports, want 1", name, len(rep.Runs))
	}
	return rep.Runs[0], nil
}

// reportSet is every target's report of one run of one variant.
type reportSet struct {
	run     int
	variant string
	reports []*bench.Report
}

func windowProfileName(prefix, target string, run, runs int, variant string) string {
	name := prefix + "-" + target
	if variant != "" {
		name += "-" + strings.ReplaceAll(variant, "=", "")
	}
	if runs > 1 {
		name += fmt.Sprintf("-run%d", run)
	}
	return name + ".pprof"
}

// writeAllocProfile writes the allocations made since the process
// started (pprof's allocs profile) to file.
func writeAllocProfile(file string, stderr io.Writer) {
	f, err := os.Create(file)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "floe bench: allocation profile: %v\n", err)
	}
}

// windowProfiler returns a Config.Measuring hook that profiles the CPU
// while the window is open, into file.
func windowProfiler(file string, stderr io.Writer) func(bool) {
	var f *os.File
	return func(on bool) {
		if on {
			var err error
			if f, err = os.Create(file); err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintf(stderr, "floe bench: window profile: %v\n", err)
				f = nil
			}
			return
		}
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			f = nil
		}
	}
}

func targetNames(targets string) []string {
	if strings.TrimSpace(targets) == "" {
		return []string{""} // the external --brokers
	}
	return strings.Split(targets, ",")
}

func startTarget(name, brokers, admin string, floe bench.FloeOptions) (bench.Target, error) {
	switch strings.TrimSpace(name) {
	case "":
		return bench.NewExternal(strings.Split(brokers, ","), admin), nil
	case "floe":
		return bench.StartFloe(floe)
	case "kfake":
		return bench.StartKfake()
	}
	return nil, fmt.Errorf("--target %q: want floe, kfake, or both separated by a comma", name)
}

func writeReports(w io.Writer, asJSON bool, preset bench.Preset, sets []reportSet, results []bench.RunResult, medians *bench.Medians) error {
	if asJSON {
		type set struct {
			Run        int             `json:"run,omitempty"`
			Variant    string          `json:"variant,omitempty"`
			Comparison []bench.Ratio   `json:"comparison,omitempty"`
			Reports    []*bench.Report `json:"reports"`
		}
		out := struct {
			Preset     string            `json:"preset,omitempty"`
			Command    string            `json:"preset_command,omitempty"`
			Runs       []*bench.Report   `json:"runs"`
			Comparison []bench.Ratio     `json:"comparison,omitempty"`
			Sets       []set             `json:"sets,omitempty"`
			Results    []bench.RunResult `json:"results,omitempty"`
			Medians    *bench.Medians    `json:"medians,omitempty"`
		}{Preset: preset.Name, Command: commandOf(preset), Medians: medians}
		for _, s := range sets {
			out.Runs = append(out.Runs, s.reports...)
			js := set{Run: s.run, Variant: s.variant, Reports: s.reports}
			if len(s.reports) == 2 {
				js.Comparison = bench.Compare(s.reports[0], s.reports[1])
			}
			out.Sets = append(out.Sets, js)
		}
		if len(sets) == 1 {
			// One run of one variant: the layout of a single run.
			out.Comparison, out.Sets = out.Sets[0].Comparison, nil
		} else {
			out.Results = results
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for i, s := range sets {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if len(sets) > 1 {
			fmt.Fprintf(w, "=== run %d %s\n\n", s.run, s.variant)
		}
		for j, rep := range s.reports {
			if j > 0 {
				fmt.Fprintln(w)
			}
			rep.WriteText(w)
		}
		if len(s.reports) == 2 {
			fmt.Fprintln(w)
			bench.WriteComparison(w, s.reports[0].Target, s.reports[1].Target, bench.Compare(s.reports[0], s.reports[1]))
		}
	}
	if medians != nil {
		fmt.Fprintln(w)
		medians.WriteText(w)
	}
	return nil
}

func commandOf(p bench.Preset) string {
	if p.Name == "" {
		return ""
	}
	return p.CommandLine()
}

// limitBenchMemory gives the collector a memory limit of three quarters
// of the machine's memory, unless GOMEMLIMIT sets one. The in-process
// targets keep what they are sent (the simulated bucket, kfake's
// partitions): gigabytes a run at max throughput. Without a limit the
// heap grows to twice what is live before the collector runs, and
// `--preset max-throughput --runs 3` was killed for memory at 24 GiB on
// a machine of 24 GiB, the garbage of the runs before still there.
func limitBenchMemory() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if total := physicalMemory(); total > 0 {
		debug.SetMemoryLimit(total / 4 * 3)
	}
}

// physicalMemory is the machine's memory in bytes from /proc/meminfo, or
// 0 where that cannot be read.
func physicalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 || kb > 1<<40 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
