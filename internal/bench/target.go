package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
	"github.com/floe-io/floe/internal/objstore/localdir"
)

// Target is a Kafka-compatible server under test.
type Target interface {
	// Name identifies the target in reports ("floe", "kfake", or the
	// bootstrap address).
	Name() string
	// Brokers are the bootstrap addresses.
	Brokers() []string
	// MetricsURL is the Prometheus endpoint to scrape for server figures,
	// or "" when there is none.
	MetricsURL() string
	// InProcess reports whether the server runs in this process, so that
	// the process's CPU time covers both clients and server.
	InProcess() bool
	// Restart drops the server's in-memory caches while keeping its data,
	// when it can, and reports whether it did.
	Restart(ctx context.Context) (bool, error)
	// Describe says, in a line, what runs behind the target.
	Describe() string
	Close() error
}

// Compacter is a target that can compact its history and restart cold
// (an in-process Floe).
type Compacter interface {
	Compact(ctx context.Context) (CompactFigures, error)
}

var _ Compacter = (*Floe)(nil)

// External is a server started elsewhere: only its address is known, and
// its metrics URL when given.
type External struct {
	Addrs   []string
	Metrics string // http://host:port/metrics, or ""
}

var _ Target = (*External)(nil)

// NewExternal returns a target for the given bootstrap addresses; admin is
// the server's metrics address (host:port, or a URL), or "".
func NewExternal(brokers []string, admin string) *External {
	return &External{Addrs: brokers, Metrics: MetricsURL(admin)}
}

// MetricsURL turns host:port or a URL without a path into a /metrics URL.
func MetricsURL(admin string) string {
	admin = strings.TrimSpace(admin)
	if admin == "" {
		return ""
	}
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	if i := strings.Index(admin, "://"); !strings.Contains(admin[i+3:], "/") {
		admin += "/metrics"
	}
	return admin
}

func (e *External) Name() string       { return strings.Join(e.Addrs, ",") }
func (e *External) Brokers() []string  { return e.Addrs }
func (e *External) MetricsURL() string { return e.Metrics }
func (e *External) InProcess() bool    { return false }
func (e *External) Describe() string   { return "external server at " + e.Name() }
func (e *External) Close() error       { return nil }

// Restart cannot restart a server it does not own.
func (e *External) Restart(context.Context) (bool, error) { return false, nil }

// FloeOptions configure an in-process Floe agent.
type FloeOptions struct {
	Linger       time.Duration // agent linger (default 250ms)
	SegmentBytes int           // flush size (default 8 MiB)
	CacheBytes   int64         // block cache (default 256 MiB)
	// DisableEarlyFlush and FlushMinInterval: the agent's early flush
	// (agent.Config).
	DisableEarlyFlush bool
	FlushMinInterval  time.Duration
	// FlushWindowReserve: the agent's early flush leaves this many
	// requests of each window free (agent.Config; -1: estimated).
	FlushWindowReserve int
	// Bucket is a bucket URL (see bucketurl) for the agent's objects; ""
	// uses the simulated bucket SimBucket names. Each run writes
	// under a fresh prefix of the bucket (a subdirectory for file URLs)
	// and deletes it on Close: the metadata that refers to the objects is
	// temporary too.
	Bucket string
	// SimBucket is the bucket used when Bucket is "": SimBucketMemory
	// (the default: objects in memory, so that a request costs exactly
	// BucketLatency) or SimBucketDirectory (a local directory in the
	// temporary directory, which writes and fsyncs every PUT on top of
	// BucketLatency, as the bench did before).
	SimBucket string
	// BucketLatency delays every bucket request inside the process (a
	// wrapper around the bucket), to resemble a cloud object store instead
	// of a local disk.
	BucketLatency LatencyRange
	// MetastoreNoSync opens the embedded metadata store without fsync
	// (embedded.Options.NoSync): a commit then costs bbolt's work, not
	// the disk's flush, which on a shared, loaded disk is most of it.
	// Production stores (PostgreSQL, floe control) sync on their own
	// disks; the playground's embedded store syncs.
	MetastoreNoSync bool
	// ProxyLatency, when set, puts a LatencyProxy in front of the Bucket
	// URL's endpoint (a local S3-compatible server), so that every
	// request crosses the network and waits like one to a cloud bucket.
	ProxyLatency LatencyRange
	// NoJobs runs the agent without the jobs role: no compaction rewrites
	// history while it is read (the catch-up scenario).
	NoJobs bool
	// ReadAheadBytes is the agent's read-ahead memory (0: its default,
	// negative: none).
	ReadAheadBytes int64
	Logger         *slog.Logger
}

// The simulated buckets of FloeOptions.SimBucket.
const (
	SimBucketMemory    = "memory"
	SimBucketDirectory = "directory"
)

// Floe is an in-process agent with an embedded metadata store in a
// temporary directory and a bucket: a simulated one (in memory or a local
// directory there), or any bucket
// URL, optionally behind an injected-latency wrapper or proxy.
type Floe struct {
	opts    FloeOptions
	dir     string
	store   *embedded.Store
	bucket  objstore.Bucket
	bucketD string         // the bucket, for Describe
	mem     *memBucket     // the simulated bucket in memory, if it is the one
	proxy   *LatencyProxy  // nil without ProxyLatency
	latency *latencyBucket // nil without BucketLatency
	cleanup func() error   // removes what this run wrote to a given bucket URL
	agent   *agent.Agent
	tracer  *flushTracer // every flushed segment, for the produce breakdown
}

var _ Target = (*Floe)(nil)

// StartFloe starts an in-process Floe agent on free loopback ports.
func StartFloe(opts FloeOptions) (*Floe, error) {
	if opts.Linger <= 0 {
		opts.Linger = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch opts.SimBucket {
	case "":
		opts.SimBucket = SimBucketMemory
	case SimBucketMemory, SimBucketDirectory:
	default:
		return nil, fmt.Errorf("simulated bucket %q: want %s or %s", opts.SimBucket, SimBucketMemory, SimBucketDirectory)
	}
	dir, err := os.MkdirTemp("", "floe-bench-")
	if err != nil {
		return nil, err
	}
	f := &Floe{opts: opts, dir: dir, tracer: newFlushTracer()}
	f.store, err = embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{Logger: opts.Logger, NoSync: opts.MetastoreNoSync})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := f.openBucket(); err != nil {
		f.Close()
		return nil, err
	}
	if opts.BucketLatency.Max > 0 {
		f.latency = newLatencyBucket(f.bucket, opts.BucketLatency)
		f.bucket = f.latency
	}
	if err := f.startAgent(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openBucket opens the simulated bucket (in memory or a temporary local
// directory), or a fresh prefix of the bucket URL, behind the latency
// proxy when asked.
func (f *Floe) openBucket() error {
	if f.opts.Bucket == "" {
		if f.opts.ProxyLatency.Max > 0 {
			return errors.New("a latency proxy needs a bucket URL with an endpoint (an S3-compatible server)")
		}
		if f.opts.SimBucket == SimBucketMemory {
			f.mem = newMemBucket()
			f.bucket, f.bucketD = f.mem, "in-memory bucket"
			return nil
		}
		local, err := localdir.Open(filepath.Join(f.dir, "bucket"))
		if err != nil {
			return err
		}
		f.bucket, f.bucketD = local, "local-directory bucket"
		return nil
	}
	spec, err := bucketurl.Parse(f.opts.Bucket)
	if err != nil {
		return err
	}
	run := "floe-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if spec.Scheme == bucketurl.SchemeFile {
		spec.Bucket = filepath.Join(spec.Bucket, run)
	} else {
		spec.Prefix += run + "/"
	}
	f.bucketD = "bucket " + spec.String()
	if f.opts.ProxyLatency.Max > 0 {
		if spec.Endpoint == "" {
			return fmt.Errorf("a latency proxy needs an endpoint parameter in the bucket URL %s", spec)
		}
		if f.proxy, err = StartLatencyProxy(spec.Endpoint, f.opts.ProxyLatency, f.opts.Logger); err != nil {
			return err
		}
		spec.Endpoint = f.proxy.Endpoint()
		f.bucketD += fmt.Sprintf(" through a proxy adding %v per request", f.opts.ProxyLatency)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f.bucket, err = bucketurl.OpenSpec(ctx, spec); err != nil {
		return err
	}
	if spec.Scheme == bucketurl.SchemeFile {
		f.cleanup = func() error { return os.RemoveAll(spec.Bucket) }
	} else {
		b := f.bucket // without the in-process latency wrapper
		f.cleanup = func() error { return deleteAll(b) }
	}
	return nil
}

// deleteAll deletes every object of a bucket, a few at a time.
func deleteAll(b objstore.Bucket) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var keys []string
	if err := b.List(ctx, "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return fmt.Errorf("list the run's objects: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 16)
	)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.Delete(ctx, k); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *Floe) startAgent() error { return f.startAgentWith(nil) }

// startAgentWith starts the agent, with adjust (if not nil) applied to
// its config.
func (f *Floe) startAgentWith(adjust func(*agent.Config)) error {
	cfg := agent.Config{
		Listen:             "127.0.0.1:0",
		AdminListen:        "127.0.0.1:0",
		Linger:             f.opts.Linger,
		SegmentMaxBytes:    f.opts.SegmentBytes,
		DisableEarlyFlush:  f.opts.DisableEarlyFlush,
		FlushMinInterval:   f.opts.FlushMinInterval,
		FlushWindowReserve: f.opts.FlushWindowReserve,
		CacheBytes:         f.opts.CacheBytes,
		ReadAheadBytes:     f.opts.ReadAheadBytes,
		AutoCreateTopics:   true,
		DefaultPartitions:  1,
		FlushObserver:      f.tracer.observe,
		Logger:             f.opts.Logger,
	}
	if f.opts.NoJobs {
		cfg.Roles = []string{"produce", "fetch"}
	}
	if adjust != nil {
		adjust(&cfg)
	}
	a, err := agent.Start(cfg, f.store, f.bucket)
	if err != nil {
		return fmt.Errorf("start in-process agent: %w", err)
	}
	f.agent = a
	return nil
}

func (f *Floe) Name() string       { return "floe" }
func (f *Floe) Brokers() []string  { return []string{f.agent.Addr()} }
func (f *Floe) MetricsURL() string { return "http://" + f.agent.AdminAddr() + "/metrics" }
func (f *Floe) InProcess() bool    { return true }

func (f *Floe) Describe() string {
	store := "embedded metadata store"
	if f.opts.MetastoreNoSync {
		store += " without fsync"
	}
	d := fmt.Sprintf("in-process Floe agent: linger %v, %s, %s", f.opts.Linger, store, f.bucketD)
	if f.opts.DisableEarlyFlush {
		d += ", early flush off"
	} else if f.opts.FlushMinInterval > 0 {
		d += fmt.Sprintf(", early flush at most every %v", f.opts.FlushMinInterval)
	}
	switch r := f.opts.FlushWindowReserve; {
	case f.opts.DisableEarlyFlush || r == 0:
	case r > 0:
		d += fmt.Sprintf(", early flush with %d request(s) of each window free", r)
	default:
		d += ", early flush with an estimated reserve of each window free"
	}
	if f.opts.BucketLatency.Max > 0 {
		d += fmt.Sprintf(", injected bucket latency %v", f.opts.BucketLatency)
	}
	return d
}

// BucketLatencyStats describes the requests the injected-latency wrapper
// delayed (see latencyBucket.Stats), or returns "" when there is none.
func (f *Floe) BucketLatencyStats() string {
	if f.latency == nil {
		return ""
	}
	return f.latency.Stats()
}

// ProxyStats counts the requests that went through the latency proxy, or
// returns "" when there is none.
func (f *Floe) ProxyStats() string {
	if f.proxy == nil {
		return ""
	}
	return f.proxy.Stats()
}

// Restart stops the agent and starts a new one on the same metadata store
// and bucket: the data stays, the block cache and extent caches are gone,
// and the metrics start again from zero. Clients must reconnect (the port
// changes).
func (f *Floe) Restart(context.Context) (bool, error) {
	if err := f.agent.Close(); err != nil {
		return false, fmt.Errorf("stop agent: %w", err)
	}
	f.agent = nil
	return true, f.startAgent()
}

// Compact rewrites the history into compacted objects, as the agents'
// compaction job does (docs/jobs.md): it restarts the agent with the
// jobs role and passes every 200 ms, waits until every partition's
// extents have been merged (at most one extent per partition, or no
// change for 3 s after a first one: a pass swaps each object's extents
// at once), then restarts the agent as configured, with cold caches. It
// reports the extents before and after.
func (f *Floe) Compact(ctx context.Context) (CompactFigures, error) {
	var fig CompactFigures
	start := time.Now()
	count := func() (extents, partitions int64, err error) {
		topics, err := f.store.Topics(ctx)
		if err != nil {
			return 0, 0, err
		}
		for _, t := range topics {
			usage, err := f.store.PartitionUsage(ctx, t.ID)
			if err != nil {
				return 0, 0, err
			}
			for _, u := range usage {
				extents += u.Extents
				partitions++
			}
		}
		return extents, partitions, nil
	}
	var err error
	var partitions int64
	if fig.ExtentsBefore, partitions, err = count(); err != nil {
		return fig, err
	}
	if err := f.agent.Close(); err != nil {
		return fig, fmt.Errorf("stop agent: %w", err)
	}
	f.agent = nil
	if err := f.startAgentWith(func(c *agent.Config) {
		c.Roles = []string{"produce", "fetch", "jobs"}
		c.Jobs.Options.Interval = 200 * time.Millisecond
	}); err != nil {
		return fig, err
	}
	last, lastChange, changed := fig.ExtentsBefore, time.Now(), false
	deadline := time.Now().Add(5 * time.Minute)
	for fig.ExtentsAfter = last; fig.ExtentsAfter > partitions && (!changed || time.Since(lastChange) < 3*time.Second); {
		if time.Now().After(deadline) {
			return fig, errors.New("compaction did not finish within 5 minutes")
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fig, err
		}
		n, _, err := count()
		if err != nil {
			return fig, err
		}
		if n != last {
			last, lastChange, changed = n, time.Now(), true
		}
		fig.ExtentsAfter = n
	}
	fig.Seconds = time.Since(start).Seconds()
	if err := f.agent.Close(); err != nil {
		return fig, fmt.Errorf("stop agent: %w", err)
	}
	f.agent = nil
	return fig, f.startAgent()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the agent and removes its data, from a given bucket URL too.
func (f *Floe) Close() error {
	var errs []error
	if f.agent != nil {
		errs = append(errs, f.agent.Close())
	}
	if f.store != nil {
		f.store.Close()
	}
	if f.cleanup != nil {
		if err := f.cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("remove the run's objects from %s: %w", f.bucketD, err))
		}
	}
	if f.proxy != nil {
		errs = append(errs, f.proxy.Close())
	}
	if f.mem != nil {
		f.mem.release() // its bytes are off the heap
	}
	os.RemoveAll(f.dir)
	return errors.Join(errs...)
}

// Kfake is franz-go's in-memory fake Kafka cluster (one broker): no disk,
// no replication, one goroutine serving every request. It stands for the
// protocol speed this machine allows when storage costs nothing.
type Kfake struct {
	c *kfake.Cluster
}

var _ Target = (*Kfake)(nil)

// StartKfake starts a one-broker kfake cluster on a free loopback port.
func StartKfake() (*Kfake, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return &Kfake{c: c}, nil
}

func (k *Kfake) Name() string       { return "kfake" }
func (k *Kfake) Brokers() []string  { return k.c.ListenAddrs() }
func (k *Kfake) MetricsURL() string { return "" }
func (k *Kfake) InProcess() bool    { return true }
func (k *Kfake) Describe() string {
	return "in-process kfake (franz-go's in-memory fake Kafka), one broker"
}
func (k *Kfake) Close() error { k.c.Close(); return nil }

// Restart is not possible: kfake's data lives only in memory.
func (k *Kfake) Restart(context.Context) (bool, error) { return false, nil }

// latencyBucket delays every request by a random duration in a range, so
// that a simulated bucket behaves more like a cloud bucket (tens of
// milliseconds per request, never the same twice). In front of memBucket
// a request takes the drawn delay and the Go timer's lateness, nothing
// else.
//
// It records, for PUTs and GETs, the delay drawn and the time the request
// took inside the bucket (delay and inner bucket), so that a report can
// tell the bucket's latency from the agent's wait around it.
type latencyBucket struct {
	inner objstore.Bucket
	lat   LatencyRange

	putDrawn, putServed *Histogram
	getDrawn, getServed *Histogram
}

var _ objstore.Bucket = (*latencyBucket)(nil)

func newLatencyBucket(inner objstore.Bucket, lat LatencyRange) *latencyBucket {
	return &latencyBucket{inner: inner, lat: lat,
		putDrawn: NewHistogram(), putServed: NewHistogram(),
		getDrawn: NewHistogram(), getServed: NewHistogram()}
}

// wait sleeps for one draw and returns it.
func (l *latencyBucket) wait(ctx context.Context) (time.Duration, error) {
	d := l.lat.draw()
	return d, sleepCtx(ctx, d)
}

func (l *latencyBucket) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	d, err := l.wait(ctx)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	err = l.inner.Put(ctx, key, data)
	l.putDrawn.Record(d)
	l.putServed.Record(time.Since(start))
	return err
}

func (l *latencyBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	start := time.Now()
	d, err := l.wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	b, err := l.inner.GetRange(ctx, key, offset, length)
	l.getDrawn.Record(d)
	l.getServed.Record(time.Since(start))
	return b, err
}

func (l *latencyBucket) Delete(ctx context.Context, key string) error {
	if _, err := l.wait(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return l.inner.Delete(ctx, key)
}

func (l *latencyBucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if _, err := l.wait(ctx); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return l.inner.List(ctx, prefix, fn)
}

// Stats describes the PUTs and GETs so far: how many, the injected delay
// drawn and the time each took in the bucket (p50 / p99 / max, ms).
func (l *latencyBucket) Stats() string {
	line := func(op string, drawn, served *Histogram) string {
		d, s := drawn.Summary(), served.Summary()
		return fmt.Sprintf("%d %ss, injected p50/p99/max %.1f/%.1f/%.1f ms, taken %.1f/%.1f/%.1f ms",
			s.Count, op, d.P50, d.P99, d.Max, s.P50, s.P99, s.Max)
	}
	return line("PUT", l.putDrawn, l.putServed) + "; " + line("GET", l.getDrawn, l.getServed)
}
