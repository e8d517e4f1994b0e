package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/telemetry"
)

// agentFlags are the flags shared by playground and agent.
type agentFlags struct {
	cfg        agent.Config
	logs       logFlags
	security   securityFlags
	authz      authzFlags
	listeners  listenerFlags
	autoCreate bool
	partitions int
	// clockSkew offsets the agent's clock (hidden, for floe torture).
	clockSkew time.Duration
	finish    func() error // copies parsed values into cfg
}

func (f *agentFlags) register(fs *flag.FlagSet, adminDefault string) {
	fs.StringVar(&f.cfg.Listen, "listen", "127.0.0.1:9092", "Kafka listener `HOST:PORT`")
	fs.StringVar(&f.cfg.Advertise, "advertise", "", "`HOST:PORT` clients are told to connect to (default: the listener address)")
	fs.StringVar(&f.cfg.AdminListen, "admin-listen", adminDefault, "`HOST:PORT` for /metrics, /healthz, /jobs and the web console (empty: off)")
	registerConsoleFlags(fs, &f.cfg)
	fs.DurationVar(&f.cfg.Linger, "linger", 250*time.Millisecond, "how long the open segment gathers batches before it is flushed")
	fs.IntVar(&f.cfg.SegmentMaxBytes, "segment-bytes", 8<<20, "flush the open segment once it holds this many bytes")
	commitGroups := fs.Bool("commit-groups", true, "commit the uploaded segments queued behind a metadata store commit in its transaction, where the store can (PostgreSQL, embedded, floe control)")
	earlyFlush := fs.Bool("early-flush", true, "flush the open segment before the linger ends when every producer with data in it has its whole window of requests waiting on it")
	fs.DurationVar(&f.cfg.FlushMinInterval, "flush-min-interval", 0, "shortest time from one flush to an early flush of the next segment, bounding the PUTs early flushes add (0: linger / 2)")
	fs.IntVar(&f.cfg.FlushWindowReserve, "flush-window-reserve", 0, "requests of each producer's window the early flush leaves free, so that it keeps sending while a segment uploads (0: none, wait for whole windows; -1: estimated per connection, the requests it sends during one flush, at most half its window)")
	var maxFrame int
	fs.IntVar(&maxFrame, "max-request-bytes", 100<<20, "largest request frame accepted (socket.request.max.bytes)")
	fs.Int64Var(&f.cfg.CacheBytes, "cache-bytes", 256<<20, "memory for the block cache")
	fs.Int64Var(&f.cfg.CacheBlockBytes, "cache-block-bytes", 4<<20, "block size of the read cache: each bucket GET fetches whole blocks, and each block has one owner agent per zone")
	fs.Int64Var(&f.cfg.ReadAheadBytes, "read-ahead-bytes", 0, "memory for read-ahead of consumers reading history: blocks fetched ahead of them, all partitions together (0: half of --cache-bytes; -1: no read-ahead)")
	fs.IntVar(&f.cfg.ReadAheadGets, "read-ahead-gets", 16, "read-ahead GETs in flight at once")
	fs.BoolVar(&f.autoCreate, "auto-create-topics", true, "create unknown topics when clients ask for them (auto.create.topics.enable)")
	fs.IntVar(&f.partitions, "default-partitions", 1, "partitions of auto-created topics (num.partitions)")
	var nodeID int
	fs.IntVar(&nodeID, "node-id", -1, "this agent's broker id (-1: assigned by the metadata store)")
	fs.StringVar(&f.cfg.Zone, "zone", "", "this agent's availability zone, reported to clients as its rack; clients with floe_az=ZONE in their client id see only this zone's agents")
	zoneLabel := fs.String("zone-from-node-label", "", "when --zone is empty, take the zone from this `LABEL` (e.g. topology.kubernetes.io/zone) of the Kubernetes node named by --node-name, read with the pod's service account (which needs get on nodes)")
	nodeName := fs.String("node-name", "", "the Kubernetes node this agent runs on, for --zone-from-node-label (in a pod: spec.nodeName through the downward API, e.g. FLOE_NODE_NAME)")
	roles := fs.String("roles", "produce,fetch,jobs", "what this agent does: any of produce, fetch, jobs")
	fs.StringVar(&f.cfg.ClusterID, "cluster-id", "floe", "cluster id reported to clients")
	fs.DurationVar(&f.cfg.Jobs.Interval, "job-interval", 5*time.Second, "time between two passes of each background job (retention, compaction, key compaction, cleaner) on agents with the jobs role")
	fs.DurationVar(&f.cfg.Jobs.DeleteDelay, "file-delete-delay", time.Minute, "default file.delete.delay.ms: how long an unreferenced object is kept before the cleaner deletes it")
	fs.DurationVar(&f.cfg.Jobs.OrphanGrace, "orphan-grace", time.Hour, "how old an object no metadata refers to (a PUT whose commit never happened) must be before the cleaner deletes it")
	fs.Int64Var(&f.cfg.Jobs.BytesPerSecond, "job-bytes-per-second", 0, "bytes per second background jobs may move, all together (0: unlimited)")
	fs.IntVar(&f.cfg.QuotaSamples, "quota-window-num", 11, "samples client quotas are measured over (quota.window.num)")
	fs.DurationVar(&f.cfg.QuotaSampleWindow, "quota-window-size", time.Second, "length of one quota sample (quota.window.size.seconds)")
	fs.DurationVar(&f.cfg.Groups.Groups.MinSessionTimeout, "group-min-session-timeout", 6*time.Second, "shortest session timeout a consumer may ask for (group.min.session.timeout.ms; shorter: INVALID_SESSION_TIMEOUT)")
	fs.DurationVar(&f.cfg.Groups.Groups.MaxSessionTimeout, "group-max-session-timeout", 30*time.Minute, "longest session timeout a consumer may ask for (group.max.session.timeout.ms)")
	initialDelay := fs.Duration("group-initial-rebalance-delay", 3*time.Second, "how long a new group waits for more members before its first rebalance (group.initial.rebalance.delay.ms; 0: none)")
	migration := fs.String("group-consumer-migration-policy", "bidirectional", "whether groups with members move between the classic and the KIP-848 consumer protocol (group.consumer.migration.policy): bidirectional, upgrade, downgrade or disabled")
	fs.DurationVar(&f.cfg.Groups.OffsetsRetention, "offsets-retention", 7*24*time.Hour, "how long an empty group's committed offsets are kept (offsets.retention.minutes)")
	fs.DurationVar(&f.cfg.ClientTelemetry.PushInterval, "client-metrics-interval", telemetry.DefaultPushInterval, "how often clients that support KIP-714 (librdkafka >= 2.5, the Java client >= 3.7) push their metrics, shown on /metrics per client id (100ms to 1h)")
	clientMetrics := fs.String("client-metrics", "default", "metric name prefixes clients are asked to push, comma-separated: default (a few standard producer and consumer metrics), * (all of them) or none")
	txnVersion := fs.Int("transaction-version", 2, "transaction.version level clients are told is finalized: 2 (KIP-890 part 2: an epoch bump per transaction, no AddPartitionsToTxn round trip), or 1 or 0 to keep clients on transaction version 1")
	fs.DurationVar(&f.clockSkew, "clock-skew", 0, "testing only: offset the agent's wall clock by this much (floe torture's clock fault)")
	hideFlags(fs, "clock-skew")
	f.logs.register(fs)
	f.security.register(fs, &f.cfg)
	f.authz.register(fs)
	registerLimits(fs, &f.cfg)
	registerShares(fs, &f.cfg)
	f.listeners.register(fs)
	f.finish = func() error {
		f.cfg.Groups.Groups.InitialRebalanceDelay = *initialDelay
		if *initialDelay == 0 {
			f.cfg.Groups.Groups.InitialRebalanceDelay = -1 // none, not the default
		}
		if g := f.cfg.Groups.Groups; g.MinSessionTimeout <= 0 || g.MaxSessionTimeout < g.MinSessionTimeout {
			return fmt.Errorf("--group-min-session-timeout %v and --group-max-session-timeout %v: want 0 < min <= max", g.MinSessionTimeout, g.MaxSessionTimeout)
		}
		policy, ok := consumer.ParseMigrationPolicy(*migration)
		if !ok {
			return fmt.Errorf("--group-consumer-migration-policy %q: want bidirectional, upgrade, downgrade or disabled", *migration)
		}
		f.cfg.Groups.Consumer.MigrationPolicy = policy
		if d := f.cfg.ClientTelemetry.PushInterval; d < telemetry.MinPushInterval || d > telemetry.MaxPushInterval {
			return fmt.Errorf("--client-metrics-interval %v: want %v to %v", d, telemetry.MinPushInterval, telemetry.MaxPushInterval)
		}
		switch *clientMetrics {
		case "default":
		case "none":
			f.cfg.ClientTelemetry.Metrics = []string{}
		default:
			f.cfg.ClientTelemetry.Metrics = strings.Split(*clientMetrics, ",")
		}
		switch *txnVersion {
		case 0:
			f.cfg.TransactionVersion = -1 // level 0, not the default
		case 1, 2:
			f.cfg.TransactionVersion = int16(*txnVersion)
		default:
			return fmt.Errorf("--transaction-version %d: want 0, 1 or 2", *txnVersion)
		}
		f.cfg.MaxFrameBytes = int32(min(maxFrame, 1<<31-1))
		f.cfg.NodeID = int32(nodeID)
		f.cfg.AutoCreateTopics = f.autoCreate
		f.cfg.DefaultPartitions = int32(f.partitions)
		f.cfg.Roles = strings.Split(*roles, ",")
		f.cfg.DisableEarlyFlush = !*earlyFlush
		f.cfg.DisableCommitGroups = !*commitGroups
		if f.cfg.Zone == "" && *zoneLabel != "" {
			if *nodeName == "" {
				return errors.New("--zone-from-node-label needs --node-name (FLOE_NODE_NAME)")
			}
			src, err := inClusterNodeLabels(serviceAccountDir)
			if err != nil {
				return fmt.Errorf("--zone-from-node-label: %w", err)
			}
			if f.cfg.Zone, err = src.label(context.Background(), *nodeName, *zoneLabel); err != nil {
				return fmt.Errorf("--zone-from-node-label: %w", err)
			}
		}
		if skew := f.clockSkew; skew != 0 {
			f.cfg.Clock = func() time.Time { return time.Now().Add(skew) }
		}
		if err := f.authz.apply(&f.cfg); err != nil {
			return err
		}
		if err := f.listeners.apply(context.Background(), &f.cfg, func() *slog.Logger { return f.cfg.Logger }); err != nil {
			return err
		}
		return f.security.apply(&f.cfg)
	}
}

func playground(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("playground", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f agentFlags
	f.register(fs, "127.0.0.1:9644")
	dataDir := fs.String("data-dir", "", "keep data in `DIR` so it survives a restart (default: a temporary directory, removed on exit)")
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if err := f.finish(); err != nil {
		return err
	}
	log, err := f.logs.logger(stderr)
	if err != nil {
		return err
	}
	pg, err := startLocal(ctx, &f, *dataDir, "floe-playground-", log)
	if err != nil {
		return err
	}
	defer pg.close()
	a, dir := pg.agent, pg.dir
	fmt.Fprintf(stdout, `Floe playground is running.

  bootstrap server:  %s
  data directory:    %s%s
  metrics, health:   %s
  web console:       %s

Try it (Debian package kcat):
  echo hello | kcat -b %s -t greetings -P
  kcat -b %s -t greetings -C -e

Inspect what is stored (while it runs, or after):
  floe inspect segment --data-dir %s segments/<id>
  floe groups --data-dir %s
  floe jobs --data-dir %s

Ctrl-C stops it.
`, a.Addr(), dir, tempNote(*dataDir), adminURL(a.AdminAddr(), f.cfg.AdminTLS != nil), consoleURL(a.AdminAddr(), f.cfg.NoConsole), a.Addr(), a.Addr(), dir, dir, dir)
	<-ctx.Done()
	return nil
}

// localCluster is a playground's agent with its embedded metadata store
// and local-directory bucket.
type localCluster struct {
	agent *agent.Agent
	dir   string
	close func() // stops the agent, closes the store, removes a temporary dir
}

// startLocal starts an agent configured by f on an embedded metadata
// store and a local-directory bucket in dataDir (a new temporary
// directory named tempPrefix... when empty, removed by close).
func startLocal(ctx context.Context, f *agentFlags, dataDir, tempPrefix string, log *slog.Logger) (*localCluster, error) {
	if f.cfg.NodeID < 0 {
		// One agent alone: a stable broker id across restarts, so clients
		// reconnecting after a restart find the same broker.
		f.cfg.NodeID = 0
	}
	f.cfg.Logger = log
	var cleanup []func()
	undo := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	dir := dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", tempPrefix)
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(tmp) })
		dir = tmp
	}
	lc, err := func() (*localCluster, error) {
		dir, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		f.cfg.MetastoreName = "embedded://" + filepath.Join(dir, "metadata.db")
		store, err := embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { store.Close() })
		bucketSpec, err := bucketurl.Parse("file://" + filepath.Join(dir, "bucket"))
		if err != nil {
			return nil, err
		}
		bucket, err := bucketurl.OpenSpec(ctx, bucketSpec)
		if err != nil {
			return nil, err
		}
		f.cfg.LogDir = bucketSpec.Location()
		a, err := agent.Start(f.cfg, store, bucket)
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { a.Close() })
		if admin := a.AdminAddr(); admin != "" {
			// Commands given --data-dir find the running playground here
			// (its metadata store is locked while it runs).
			scheme := "http://"
			if f.cfg.AdminTLS != nil {
				scheme = "https://"
			}
			urlFile := filepath.Join(dir, adminURLFile)
			if err := os.WriteFile(urlFile, []byte(scheme+admin+"\n"), 0o600); err != nil {
				log.Warn("cannot write the admin address; commands given --data-dir will not reach this playground", "err", err)
			}
			cleanup = append(cleanup, func() { os.Remove(urlFile) })
		}
		return &localCluster{agent: a, dir: dir}, nil
	}()
	if err != nil {
		undo()
		return nil, err
	}
	var once sync.Once
	lc.close = func() { once.Do(undo) }
	return lc, nil
}

func tempNote(dataDir string) string {
	if dataDir == "" {
		return " (temporary: removed on exit; use --data-dir to keep it)"
	}
	return ""
}

func adminURL(addr string, tls bool) string {
	if addr == "" {
		return "off"
	}
	base := "http://" + addr
	if tls {
		base = "https://" + addr
	}
	return base + "/metrics, " + base + "/healthz"
}

func agentCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f agentFlags
	f.register(fs, "127.0.0.1:9644")
	bucketURL := fs.String("bucket", "", "bucket `URL`: file:///path, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azblob://CONTAINER/PREFIX (README: URLs)")
	metaURL := fs.String("metastore", "", "metadata store `URL`: embedded:///path/to/file, postgres://user@host:port/db?sslmode=disable or floe://HOST:PORT/VCLUSTER?key=KEY (floe control)")
	throughOutage := fs.Bool("produce-through-metastore-outage", false, "keep acknowledging produce requests while the metadata store is unreachable: segments are uploaded, acknowledged without offsets (-1) and their commits queued in this agent's memory, replayed in order when the store answers; an agent that dies meanwhile loses its queue (docs/design.md: Producing through a metadata outage)")
	var outage produce.OutageOptions
	fs.Int64Var(&outage.MaxBytes, "outage-queue-bytes", 1<<30, "with --produce-through-metastore-outage: bytes of segments whose commits may be queued; beyond it produce fails (retriable) as without the mode")
	fs.IntVar(&outage.MaxSegments, "outage-queue-segments", 10_000, "with --produce-through-metastore-outage: segment commits that may be queued")
	fs.StringVar(&outage.ManifestName, "outage-manifest-name", "", "with --produce-through-metastore-outage: write each queued commit to the bucket under outage/`NAME`/ before acknowledging it, and replay those a previous run under this name left; NAME must be stable across restarts and unique among running agents (e.g. the StatefulSet pod name): the agent holds it in its registration, and fails to start while another live agent holds it (after waiting one registration TTL, 5s, for a killed previous run's to lapse). Empty: the queue is only in memory")
	fs.DurationVar(&outage.MaxDuration, "outage-max-duration", 5*time.Minute, "with --produce-through-metastore-outage: how long the agent acknowledges without the store; once the oldest queued commit is older, new segments fail (retriable) as without the mode, and the queue is still replayed")
	startWait := fs.Duration("metastore-start-wait", time.Minute, "how long a starting agent keeps retrying while the metadata store cannot be reached (down, or a floe control takeover in progress) before it gives up; 0: not at all")
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if err := f.finish(); err != nil {
		return err
	}
	if *bucketURL == "" || *metaURL == "" {
		return errors.New("agent needs --bucket and --metastore")
	}
	log, err := f.logs.logger(stderr)
	if err != nil {
		return err
	}
	f.cfg.Logger = log
	if f.clockSkew != 0 {
		log.Warn("the agent's clock is skewed (--clock-skew, for testing only)", "skew", f.clockSkew)
	}
	f.cfg.MetastoreName = redactedURL(*metaURL)
	retry := startRetry{ctx: ctx, log: log, deadline: time.Now().Add(*startWait)}
	var store metastore.Store
	openUnreachable := func(err error) bool { return remote.Unreachable(err) || postgres.Unreachable(err) }
	err = retry.do("open the metadata store", openUnreachable, func() (err error) {
		store, err = openMetastoreURL(ctx, *metaURL, log)
		return err
	})
	if err != nil {
		return err
	}
	defer store.Close()
	unreachable := storeUnreachable(store)
	if *throughOutage {
		if outage.MaxBytes <= 0 || outage.MaxSegments <= 0 || outage.MaxDuration <= 0 {
			return errors.New("--outage-queue-bytes, --outage-queue-segments and --outage-max-duration must be positive")
		}
		if outage.ManifestName != "" && !produce.ValidManifestName(outage.ManifestName) {
			return fmt.Errorf("--outage-manifest-name %q: want 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'", outage.ManifestName)
		}
		grace := f.cfg.Jobs.OrphanGrace
		if grace <= 0 {
			grace = time.Hour // the cleaner's default
		}
		if outage.MaxDuration*2 > grace {
			// A queued segment's object is an orphan until its commit is
			// replayed: a cleaner must not delete it meanwhile.
			return fmt.Errorf("--outage-max-duration %v must be at most half of --orphan-grace %v (queued objects are unreferenced until replayed)", outage.MaxDuration, grace)
		}
		outage.Unreachable = unreachable
		f.cfg.Outage = &outage
		log.Info("producing through metadata store outages", "manifest_name", outage.ManifestName, "queue_bytes", outage.MaxBytes,
			"queue_segments", outage.MaxSegments, "max_duration", outage.MaxDuration)
	}
	bucketSpec, err := bucketurl.Parse(*bucketURL)
	if err != nil {
		return err
	}
	f.cfg.LogDir = bucketSpec.Location()
	// A start that fails on the store (its calls to read the cluster's
	// secret, register, load topics, ACLs, quotas) is undone by Start and
	// tried again, each time with a registry of its own.
	var a *agent.Agent
	err = retry.do("start the agent", unreachable, func() error {
		// The bucket's retries and hedged GETs are counted on the agent's
		// /metrics (floe_objstore_retries_total, floe_objstore_hedges_total).
		cfg := f.cfg
		cfg.Registry = prometheus.NewRegistry()
		bucket, err := bucketurl.OpenSpecWith(ctx, bucketSpec, bucketurl.Options{
			Resilience: objstore.ResilientOptions{Metrics: objstore.NewResilienceMetrics(cfg.Registry)},
		})
		if err != nil {
			return err
		}
		a, err = agent.Start(cfg, store, bucket)
		return err
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down: draining")
	return a.Close()
}

// storeUnreachable returns the test for errors of store that mean it
// could not be reached (a call may be retried) rather than a refusal.
func storeUnreachable(store metastore.Store) func(error) bool {
	switch store.(type) {
	case *remote.Client:
		return remote.Unreachable
	case *postgres.Store:
		return postgres.Unreachable
	}
	return metastore.Unreachable
}

// startRetry retries a starting agent's steps while the metadata store
// cannot be reached, until its deadline: agents and the store (or a
// `floe control` taking a vcluster over) are often started together, and
// an agent that exits at once is only restarted by whatever supervises
// it, if anything does.
type startRetry struct {
	ctx      context.Context
	log      *slog.Logger
	deadline time.Time
}

// do runs step until it succeeds, fails with an error unreachable does
// not accept, the deadline would pass before the next try, or the
// context ends; it returns step's last error.
func (r startRetry) do(what string, unreachable func(error) bool, step func() error) error {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil || !unreachable(err) || time.Now().Add(wait).After(r.deadline) {
			return err
		}
		r.log.Warn("metadata store unreachable at start: retrying", "step", what, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-r.ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// hideFlags leaves names out of fs's usage: flags for tests, not for
// operators.
func hideFlags(fs *flag.FlagSet, names ...string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
		shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		shown.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(names, f.Name) {
				shown.Var(f.Value, f.Name, f.Usage)
				shown.Lookup(f.Name).DefValue = f.DefValue
			}
		})
		shown.PrintDefaults()
	}
}
