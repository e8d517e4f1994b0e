package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// benchMetastoreCmd is "floe bench metastore": a metadata store under
// simulated agents' segment commits and fetch-side reads.
func benchMetastoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if handled, err := benchMetastoreCompare(ctx, args, stdout, stderr); handled {
		return err
	}
	fs := flag.NewFlagSet("bench metastore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := bench.MetastoreConfig{}
	url := fs.String("metastore", "", "metadata store URL: embedded:///abs/path or postgres://user@host:port/db (default: a new embedded file in a temporary directory)")
	fs.IntVar(&cfg.Agents, "agents", 50, "simulated agents, each committing one segment after another")
	fs.IntVar(&cfg.PartitionsPerCommit, "partitions-per-commit", 10, "partitions each segment commit touches (one idempotent batch each)")
	fs.IntVar(&cfg.Partitions, "partitions", 1000, "partitions of the benchmark's topic")
	fs.IntVar(&cfg.Readers, "readers", 10, "simulated fetch loops reading offsets and extents")
	fs.Float64Var(&cfg.ReadsPerSec, "reads-per-sec", 2000, "reads per second of all readers together (0: as fast as they can)")
	fs.DurationVar(&cfg.Duration, "duration", 20e9, "how long to measure")
	fs.DurationVar(&cfg.Warmup, "warmup", 3e9, "load before measuring")
	fs.DurationVar(&cfg.ProgressInterval, "progress", 1e9, "progress line interval (0: none)")
	fs.BoolVar(&cfg.KeepTopic, "keep-topic", false, "leave the benchmark topic in the store")
	fs.IntVar(&cfg.InflightSegments, "segments-in-flight", 1, "segments each agent has uploading or waiting for their commit at once (agents' flush slots, 4 by default); those ready at a commit's turn go in its transaction where the store commits groups")
	fs.BoolVar(&cfg.NoGroups, "no-groups", false, "commit one segment per transaction even where the store commits groups")
	putLatency := fs.String("put-latency", "0", "each segment's upload before its commit, e.g. 20ms-50ms (uniform) or 30ms")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	logLevel := fs.String("log-level", "warn", "log level")
	storePerAgent := fs.Bool("store-per-agent", false, "PostgreSQL: open the store once per simulated agent (its own pool, listener and notifier, as real agents have), not once for all")
	relayNotices := fs.Bool("relay-notices", false, "with --store-per-agent: the agents' stores relay commit notices to each other over loopback peer connections, as agents do, instead of through the database")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe bench metastore [--metastore URL] [--agents N] [--partitions-per-commit K] [--partitions P] [--readers R] [--duration D] [--store-per-agent [--relay-notices]] [--segments-in-flight K [--put-latency 20ms-50ms]]")
		fmt.Fprintln(stderr, "       floe bench metastore --metastore URL --compare URL2 [--rounds N] [flags]: both stores alternately, and the ratios")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.PutLatency, err = bench.ParseLatencyRange(*putLatency); err != nil {
		return fmt.Errorf("--put-latency: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	if cfg.ProgressInterval > 0 {
		cfg.Progress = stderr
	}
	if *url == "" {
		dir, err := os.MkdirTemp("", "floe-bench-metastore-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*url = "embedded://" + filepath.Join(dir, "metadata.db")
	}
	if *storePerAgent && !isPostgresURL(*url) {
		return errors.New("--store-per-agent needs a PostgreSQL --metastore URL")
	}
	if *relayNotices && !*storePerAgent {
		return errors.New("--relay-notices needs --store-per-agent")
	}
	given := *url
	*url = withPoolSize(given, cfg.Agents+cfg.Readers+4)
	store, err := openMetastoreURL(ctx, *url, log)
	if err != nil {
		return err
	}
	defer store.Close()
	cfg.Connections = poolSize(*url)
	if *storePerAgent {
		// Each agent's store gets connections for its commit, its share
		// of the readers and the store's own work.
		per := withPoolSize(given, 2+(cfg.Readers+cfg.Agents-1)/cfg.Agents)
		for i := range cfg.Agents {
			s, err := openMetastoreURL(ctx, per, log)
			if err != nil {
				return fmt.Errorf("store of agent %d: %w", i, err)
			}
			defer s.Close()
			cfg.AgentStores = append(cfg.AgentStores, s)
		}
		cfg.Connections = cfg.Agents * poolSize(per)
	}
	if *relayNotices {
		stop, err := bench.RelayNotices(cfg.AgentStores, log)
		if err != nil {
			return err
		}
		defer stop()
		cfg.NoticesRelayed = true
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stderr, "floe bench metastore: %d agents × %d partitions per commit, %d readers, on %s\n", cfg.Agents, cfg.PartitionsPerCommit, cfg.Readers, redactedURL(*url))
	rep, err := bench.RunMetastore(ctx, store, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteText(stdout)
	return nil
}

// withPoolSize gives a PostgreSQL URL without pool_max_conns a pool of n
// connections: the simulated agents share one store, where real agents
// would each have their own pool, and must not queue for a handful of
// connections (n leaves a few for the store's own: its commit notifier
// and lost-notice poll take one each now and then). Other URLs are
// returned as they are.
func withPoolSize(raw string, n int) string {
	if !isPostgresURL(raw) {
		return raw
	}
	u, _ := neturl.Parse(raw) // parsed by isPostgresURL
	q := u.Query()
	if q.Has("pool_max_conns") {
		return raw
	}
	q.Set("pool_max_conns", strconv.Itoa(max(n, 1)))
	u.RawQuery = q.Encode()
	return u.String()
}

// poolSize is the pool_max_conns of a PostgreSQL URL that withPoolSize
// returned (0 for other URLs).
func poolSize(raw string) int {
	if !isPostgresURL(raw) {
		return 0
	}
	u, _ := neturl.Parse(raw) // parsed by isPostgresURL
	n, err := strconv.Atoi(u.Query().Get("pool_max_conns"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// isPostgresURL reports a PostgreSQL metadata store URL.
func isPostgresURL(raw string) bool {
	u, err := neturl.Parse(raw)
	return err == nil && slices.Contains(postgres.URLSchemes, u.Scheme)
}
