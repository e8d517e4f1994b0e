// Package agenttest starts real agents for tests: an in-process agent on a
// free loopback port, with an embedded metadata store and a local-directory
// bucket in the test's temporary directory. Helpers that need no agent live
// in internal/testutil, which packages below the agent can import.
package agenttest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/testutil"
)

// Agent is an agent started for a test, with the parts it runs on.
type Agent struct {
	*agent.Agent
	Dir    string
	Store  *embedded.Store
	Bucket objstore.Bucket
}

// Options tune Start.
type Options struct {
	Linger time.Duration // default 20ms, to keep tests fast
	// Wrap, when set, wraps the bucket (fault injection, counting).
	Wrap func(objstore.Bucket) objstore.Bucket
	// Config, when set, adjusts the agent config before start.
	Config func(*agent.Config)
	// WrapStore, when set, wraps the metadata store this agent uses
	// (fault injection: an agent cut off from the store).
	WrapStore func(metastore.Store) metastore.Store
	// Jobs gives the agent the jobs role, with passes every 100ms and
	// short grace periods (see JobsConfig). Without it a test agent runs
	// no background jobs: many tests write batches stamped near 1970,
	// which retention.ms (7 days by default) would delete at once, as
	// Kafka would.
	Jobs bool
}

// JobsConfig is the jobs configuration of agents started with
// Options.Jobs: passes every 100ms, unreferenced objects deleted after
// 200ms unless a topic sets a longer file.delete.delay.ms, orphans after
// 2s.
func JobsConfig() jobs.Config {
	return jobs.Config{
		Options:            jobs.Options{Interval: 100 * time.Millisecond, LeaseTTL: 2 * time.Second},
		DeleteDelay:        200 * time.Millisecond,
		OrphanGrace:        2 * time.Second,
		OrphanScanInterval: 200 * time.Millisecond,
	}
}

// Start starts an agent that stops when the test ends.
func Start(t testing.TB, opts Options) *Agent {
	t.Helper()
	dir := t.TempDir()
	store, err := embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var bucket objstore.Bucket
	bucket, err = localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Wrap != nil {
		bucket = opts.Wrap(bucket)
	}
	return start(t, dir, store, bucket, opts)
}

// StartPeer starts another agent on the same metadata store and bucket
// as a, in the same process: a cluster of agents for tests. It stops when
// the test ends, or earlier with Close. opts.Wrap wraps the bucket for
// this agent alone.
func StartPeer(t testing.TB, a *Agent, opts Options) *Agent {
	t.Helper()
	bucket := a.Bucket
	if opts.Wrap != nil {
		bucket = opts.Wrap(bucket)
	}
	ta := start(t, a.Dir, a.Store, bucket, opts)
	ta.Bucket = a.Bucket
	return ta
}

func start(t testing.TB, dir string, store *embedded.Store, bucket objstore.Bucket, opts Options) *Agent {
	t.Helper()
	if opts.Linger == 0 {
		opts.Linger = 20 * time.Millisecond
	}
	cfg := agent.Config{
		Listen:            "127.0.0.1:0",
		NodeID:            -1,
		AdminListen:       "127.0.0.1:0",
		Linger:            opts.Linger,
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		Roles:             []string{"produce", "fetch"},
		Logger:            testutil.Logger(t),
	}
	if opts.Jobs {
		cfg.Roles = append(cfg.Roles, "jobs")
		cfg.Jobs = JobsConfig()
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	var st metastore.Store = store
	if opts.WrapStore != nil {
		st = opts.WrapStore(store)
	}
	a, err := agent.Start(cfg, st, bucket)
	if err != nil {
		t.Fatal(err)
	}
	ta := &Agent{Agent: a, Dir: dir, Store: store, Bucket: bucket}
	t.Cleanup(func() { ta.Close() })
	return ta
}
