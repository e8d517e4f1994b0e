package jobs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/testutil"
)

// cutStore is a LeaseStore that, once cut, fails every call: an agent
// that lost the metadata store or was killed (it releases nothing).
type cutStore struct {
	metastore.LeaseStore
	cut atomic.Bool
}

var errCut = errors.New("cut off from the store")

func (c *cutStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	if c.cut.Load() {
		return metastore.Lease{}, false, errCut
	}
	return c.LeaseStore.AcquireLease(ctx, name, holder, ttl)
}

func (c *cutStore) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) (metastore.Lease, error) {
	if c.cut.Load() {
		return metastore.Lease{}, errCut
	}
	return c.LeaseStore.RenewLease(ctx, l, ttl)
}

func (c *cutStore) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	if c.cut.Load() {
		return errCut
	}
	return c.LeaseStore.ReleaseLease(ctx, l)
}

// exclusiveJob records who runs it and fails the test if two run at once.
type exclusiveJob struct {
	t      *testing.T
	holder string
	shared *jobState
}

type jobState struct {
	mu      sync.Mutex
	running string
	runs    map[string]int
}

func (j *exclusiveJob) Name() string { return "exclusive" }

func (j *exclusiveJob) Run(ctx context.Context, env *jobs.Env) error {
	s := j.shared
	s.mu.Lock()
	if s.running != "" {
		j.t.Errorf("%s runs the job while %s does", j.holder, s.running)
	}
	s.running = j.holder
	s.runs[j.holder]++
	s.mu.Unlock()
	env.Stats.In(1, 10)
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Millisecond):
	}
	s.mu.Lock()
	s.running = ""
	s.mu.Unlock()
	return nil
}

func (s *jobState) count(holder string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[holder]
}

func TestSchedulerTakeover(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "m.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	state := &jobState{runs: map[string]int{}}
	regs := map[string]*prometheus.Registry{}
	cuts := map[string]*cutStore{}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, holder := range []string{"a", "b"} {
		cuts[holder] = &cutStore{LeaseStore: store}
		regs[holder] = prometheus.NewRegistry()
		s := jobs.NewScheduler(cuts[holder], []jobs.Job{&exclusiveJob{t: t, holder: holder, shared: state}}, jobs.Options{
			Holder: holder, Interval: 20 * time.Millisecond, LeaseTTL: 600 * time.Millisecond, Registerer: regs[holder],
		})
		wg.Go(func() { s.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	testutil.WaitFor(t, 5*time.Second, "a first run", func() bool { return state.count("a")+state.count("b") > 0 })
	leases, err := store.Leases(t.Context())
	if err != nil || len(leases) != 1 {
		t.Fatalf("Leases = %+v, %v", leases, err)
	}
	first := leases[0].Holder
	other := map[string]string{"a": "b", "b": "a"}[first]
	// The holder keeps the job while it lives.
	time.Sleep(200 * time.Millisecond)
	if n := state.count(other); n != 0 {
		t.Fatalf("%s ran the job %d times while %s held it", other, n, first)
	}
	if got := metricValue(t, regs[first], "floe_job_lease_held"); got != 1 {
		t.Errorf("%s: floe_job_lease_held = %v, want 1", first, got)
	}
	// Cut the holder off: the other agent takes over after the TTL.
	cuts[first].cut.Store(true)
	before := state.count(first)
	testutil.WaitFor(t, 5*time.Second, other+" taking over", func() bool { return state.count(other) > 0 })
	if n := state.count(first); n > before+1 {
		t.Errorf("%s ran %d more passes after it was cut off", first, n-before)
	}
	if runs := metricValue(t, regs[other], "floe_job_runs_total"); runs < 1 {
		t.Errorf("%s: floe_job_runs_total = %v", other, runs)
	}
}

// metricValue returns the value of the one series of name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

func TestThrottle(t *testing.T) {
	th := jobs.NewThrottle(1000)
	start := time.Now()
	// One second's burst passes at once; the next 500 bytes wait ~0.5s.
	for range 3 {
		if err := th.Wait(t.Context(), 500); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Errorf("1500 bytes at 1000 B/s with a 1 s burst took %v, want about 0.5 s", d)
	}
	var unlimited *jobs.Throttle
	if err := unlimited.Wait(t.Context(), 1<<40); err != nil {
		t.Fatal(err)
	}
}

// TestSchedulerCorrectsTheAgentsClock: an agent whose clock runs two
// hours ahead gives its jobs the store's time (Env.Now), and its cleaner
// keeps a young object the store does not know (a PUT whose commit may
// still be on its way) while it deletes an old one. Before the cleaner
// read Env.Now, the skewed clock made every unknown object an orphan.
func TestSchedulerCorrectsTheAgentsClock(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(filepath.Join(dir, "m.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bucket, err := localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"segments/young", "segments/old"} {
		if err := bucket.Put(t.Context(), key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "bucket", "segments", "old"), old, old); err != nil {
		t.Fatal(err)
	}
	skewed := func() time.Time { return time.Now().Add(2 * time.Hour) }
	var seen atomic.Int64 // |Env.Now - time.Now| of the probe's last pass, ns
	seen.Store(-1)
	probe := &funcJob{name: "probe", run: func(_ context.Context, env *jobs.Env) error {
		seen.Store(int64((env.Now().Sub(time.Now())).Abs()))
		return nil
	}}
	cleaner := &jobs.Cleaner{Store: store, Bucket: bucket, OrphanGrace: time.Hour}
	s := jobs.NewScheduler(store, []jobs.Job{probe, cleaner}, jobs.Options{
		Holder: "skewed", Interval: 20 * time.Millisecond, Clock: skewed,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 10*time.Second, "the old orphan deleted", func() bool {
		_, err := os.Stat(filepath.Join(dir, "bucket", "segments", "old"))
		return os.IsNotExist(err)
	})
	testutil.WaitFor(t, 10*time.Second, "a pass of the probe", func() bool { return seen.Load() >= 0 })
	if d := time.Duration(seen.Load()); d > 5*time.Second {
		t.Errorf("Env.Now is %v from the store's clock, with the agent's clock 2h ahead; want the skew corrected", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "bucket", "segments", "young")); err != nil {
		t.Errorf("the young unknown object was deleted as an orphan: %v", err)
	}
}

type funcJob struct {
	name string
	run  func(context.Context, *jobs.Env) error
}

func (j *funcJob) Name() string                                 { return j.name }
func (j *funcJob) Run(ctx context.Context, env *jobs.Env) error { return j.run(ctx, env) }
