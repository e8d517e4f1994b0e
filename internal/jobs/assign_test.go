package jobs_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/testutil"
)

// blockingJob runs until its pass is cancelled, and records when its
// passes end.
type blockingJob struct {
	t      *testing.T
	holder string
	shared *jobState
	ended  chan time.Time
}

func (j *blockingJob) Name() string { return "exclusive" }

func (j *blockingJob) Run(ctx context.Context, env *jobs.Env) error {
	s := j.shared
	s.mu.Lock()
	if s.running != "" {
		j.t.Errorf("%s runs the job while %s does", j.holder, s.running)
	}
	s.running = j.holder
	s.runs[j.holder]++
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.running = ""
	s.mu.Unlock()
	select {
	case j.ended <- time.Now():
	default:
	}
	return nil
}

// TestAssignmentMovesJob: with an Assignment, a scheduler runs only the
// jobs assigned to it. Moving a job stops the old agent's pass, which
// then releases the lease, and the new agent starts after that, well
// before the lease would have expired; unassigned, neither runs it.
func TestAssignmentMovesJob(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "m.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	state := &jobState{runs: map[string]int{}}
	const ttl = 10 * time.Second
	assign := map[string]*jobs.Assignment{}
	regs := map[string]*prometheus.Registry{}
	ended := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, holder := range []string{"a", "b"} {
		assign[holder] = jobs.NewAssignment()
		regs[holder] = prometheus.NewRegistry()
		s := jobs.NewScheduler(store, []jobs.Job{&blockingJob{t: t, holder: holder, shared: state, ended: ended}}, jobs.Options{
			Holder: holder, Interval: 20 * time.Millisecond, LeaseTTL: ttl, Registerer: regs[holder], Assignment: assign[holder],
		})
		wg.Go(func() { s.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	time.Sleep(200 * time.Millisecond)
	if n := state.count("a") + state.count("b"); n != 0 {
		t.Fatalf("the job ran %d times before it was assigned", n)
	}
	assign["a"].Set([]string{"exclusive"})
	testutil.WaitFor(t, 5*time.Second, "a running the job", func() bool { return state.count("a") == 1 })
	if got := metricValue(t, regs["a"], "floe_job_assigned"); got != 1 {
		t.Errorf("a: floe_job_assigned = %v", got)
	}

	// Move it: a stops, releases, b starts.
	moved := time.Now()
	assign["a"].Set(nil)
	assign["b"].Set([]string{"exclusive"})
	var stopped time.Time
	select {
	case stopped = <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("a's pass not stopped when the job moved")
	}
	testutil.WaitFor(t, 5*time.Second, "b running the job", func() bool { return state.count("b") == 1 })
	started := time.Now()
	t.Logf("moved: a stopped after %v, b started after %v (lease TTL %v)", stopped.Sub(moved).Round(time.Millisecond), started.Sub(moved).Round(time.Millisecond), ttl)
	if started.Sub(moved) > ttl/2 {
		t.Errorf("b started %v after the move: a did not release the lease", started.Sub(moved))
	}
	if n := state.count("a"); n != 1 {
		t.Errorf("a ran %d passes, want 1", n)
	}
	if got := metricValue(t, regs["a"], "floe_job_lease_held"); got != 0 {
		t.Errorf("a: floe_job_lease_held = %v after the move", got)
	}

	// Taken from b too (its session lost, say): nobody runs it.
	assign["b"].Set(nil)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("b's pass not stopped when the job was taken away")
	}
	before := state.count("a") + state.count("b")
	time.Sleep(200 * time.Millisecond)
	if n := state.count("a") + state.count("b"); n != before {
		t.Errorf("%d passes ran with the job assigned to nobody", n-before)
	}
}
