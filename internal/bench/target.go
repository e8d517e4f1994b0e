package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
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
	// BucketLatency delays every bucket request, to resemble a cloud
	// object store instead of a local disk.
	BucketLatency LatencyRange
	Logger        *slog.Logger
}

// Floe is an in-process agent with an embedded metadata store and a
// local-directory bucket in a temporary directory, optionally behind an
// injected-latency wrapper.
type Floe struct {
	opts   FloeOptions
	dir    string
	store  *embedded.Store
	bucket objstore.Bucket
	agent  *agent.Agent
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
	dir, err := os.MkdirTemp("", "floe-bench-")
	if err != nil {
		return nil, err
	}
	f := &Floe{opts: opts, dir: dir}
	f.store, err = embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{Logger: opts.Logger})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	local, err := localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		f.Close()
		return nil, err
	}
	f.bucket = local
	if opts.BucketLatency.Max > 0 {
		f.bucket = &latencyBucket{inner: local, lat: opts.BucketLatency}
	}
	if err := f.startAgent(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Floe) startAgent() error {
	a, err := agent.Start(agent.Config{
		Listen:            "127.0.0.1:0",
		AdminListen:       "127.0.0.1:0",
		Linger:            f.opts.Linger,
		SegmentMaxBytes:   f.opts.SegmentBytes,
		CacheBytes:        f.opts.CacheBytes,
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		Logger:            f.opts.Logger,
	}, f.store, f.bucket)
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
	return fmt.Sprintf("in-process Floe agent: linger %v, embedded metadata store, local-directory bucket, injected bucket latency %v",
		f.opts.Linger, f.opts.BucketLatency)
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

// Close stops the agent and removes its data.
func (f *Floe) Close() error {
	var err error
	if f.agent != nil {
		err = f.agent.Close()
	}
	if f.store != nil {
		f.store.Close()
	}
	os.RemoveAll(f.dir)
	return err
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
// that a local directory behaves more like a cloud bucket (tens of
// milliseconds per request, never the same twice).
type latencyBucket struct {
	inner objstore.Bucket
	lat   LatencyRange
}

var _ objstore.Bucket = (*latencyBucket)(nil)

func (l *latencyBucket) wait(ctx context.Context) error {
	d := l.lat.Min
	if spread := l.lat.Max - l.lat.Min; spread > 0 {
		d += rand.N(spread + 1)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *latencyBucket) Put(ctx context.Context, key string, data []byte) error {
	if err := l.wait(ctx); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return l.inner.Put(ctx, key, data)
}

func (l *latencyBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := l.wait(ctx); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return l.inner.GetRange(ctx, key, offset, length)
}

func (l *latencyBucket) Delete(ctx context.Context, key string) error {
	if err := l.wait(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return l.inner.Delete(ctx, key)
}

func (l *latencyBucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := l.wait(ctx); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return l.inner.List(ctx, prefix, fn)
}
