package jobs

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

// Options configure a Scheduler. Zero values take the defaults.
type Options struct {
	// Holder names this agent in leases (its agent ID); required.
	Holder string
	// Interval is the time between two passes of each job (default 5s).
	Interval time.Duration
	// LeaseTTL is how long a lease lasts without renewal (default 30s, or
	// 3 Intervals if longer): how long a killed agent's jobs wait before
	// another agent takes them.
	LeaseTTL time.Duration
	// Concurrency bounds the passes running at once (default 2).
	Concurrency int
	// BytesPerSecond bounds the bytes jobs move per second, all jobs
	// together (0: unlimited).
	BytesPerSecond int64
	// Logger receives the scheduler's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the per-job metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Clock is the agent's wall clock (default time.Now). Env.Now
	// corrects it by the store's lease timestamps, so a job's decisions
	// do not depend on how wrong it is.
	Clock func() time.Time
	// Assignment, when set, says which jobs this agent may run (the
	// control plane's schedule): a job not assigned is not tried, and a
	// pass running when its job is taken away is cancelled and its lease
	// released. nil: every job, to whichever agent takes its lease.
	Assignment *Assignment
}

// Scheduler runs jobs under leases. It is an actor: Run until its context
// is done.
type Scheduler struct {
	store    metastore.LeaseStore
	jobs     []Job
	opts     Options
	log      *slog.Logger
	metrics  *metrics
	throttle *Throttle
}

// NewScheduler returns a scheduler of jobs, leased through store.
func NewScheduler(store metastore.LeaseStore, jobs []Job, opts Options) *Scheduler {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		// Long enough that the holder keeps the lease between passes.
		opts.LeaseTTL = max(30*time.Second, 3*opts.Interval)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		store: store, jobs: jobs, opts: opts, log: log,
		metrics: newMetrics(opts.Registerer), throttle: NewThrottle(opts.BytesPerSecond),
	}
}

// Run runs every job periodically until ctx is done, then releases the
// leases it holds so that other agents take the jobs at once.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.opts.Holder == "" {
		return errors.New("jobs: scheduler needs a holder id")
	}
	slots := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Go(func() { s.loop(ctx, j, slots) })
	}
	wg.Wait()
	return nil
}

// loop runs one job every Interval while this agent can hold its lease
// (and, with Options.Assignment, while the job is assigned to it).
// Between passes the lease is kept by acquiring it again (a renewal) as
// long as Interval < LeaseTTL.
func (s *Scheduler) loop(ctx context.Context, j Job, slots chan struct{}) {
	name := j.Name()
	log := s.log.With("job", name)
	held := s.metrics.held.WithLabelValues(name)
	stats := s.metrics.stats(name)
	assignment := s.opts.Assignment
	assigned := func() bool { return assignment == nil || assignment.Has(name) }
	var lease *metastore.Lease
	release := func() {
		held.Set(0)
		if lease == nil {
			return
		}
		releaseCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.store.ReleaseLease(releaseCtx, *lease); err != nil {
			log.Warn("release job lease failed; it will expire", "err", err)
		}
		lease = nil
	}
	defer release()
	// Agents started together do not all ask for the lease at once.
	wait := time.Duration(rand.Int64N(int64(s.opts.Interval)/4 + 1))
	for {
		var changed <-chan struct{} // nil without an assignment: never ready
		if assignment != nil {
			changed = assignment.Changed()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-changed:
		}
		wait = s.opts.Interval
		if assignment != nil {
			s.metrics.assigned.WithLabelValues(name).Set(b2f(assigned()))
		}
		if !assigned() {
			if lease != nil {
				// Released only now that no pass runs: the agent the job
				// moved to may take it at once.
				log.Info("job assigned to another agent: lease released", "epoch", lease.Epoch)
				release()
			}
			continue
		}
		l, ok, err := s.store.AcquireLease(ctx, name, s.opts.Holder, s.opts.LeaseTTL)
		local := s.opts.Clock()
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("acquire job lease failed", "err", err)
			}
			continue
		}
		if !ok {
			if lease != nil {
				log.Info("job lease taken by another agent", "holder", l.Holder)
			}
			lease = nil
			held.Set(0)
			if assignment != nil {
				// Assigned here: the previous holder releases the lease
				// once its pass stopped, or it expires. Ask again soon.
				wait = min(s.opts.Interval, time.Second)
			}
			continue
		}
		if lease == nil {
			log.Info("job lease acquired", "epoch", l.Epoch)
		}
		lease = &l
		held.Set(1)
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		final, lost := s.pass(ctx, j, l, local, stats, log)
		<-slots
		if lost {
			lease = nil
			held.Set(0)
		} else {
			lease = &final
		}
		if !assigned() {
			wait = 0 // release it now
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pass runs one pass of j under lease l, renewing it every third of its
// TTL, and cancels the pass if the lease is lost. It returns the lease as
// last renewed, and whether it was lost.
func (s *Scheduler) pass(ctx context.Context, j Job, l metastore.Lease, local time.Time, stats *Stats, log *slog.Logger) (metastore.Lease, bool) {
	name := j.Name()
	// The store's clock runs this far ahead of ours (less the round trip).
	skew := l.Renewed.Sub(local)
	env := &Env{
		Now:      func() time.Time { return s.opts.Clock().Add(skew) },
		Throttle: s.throttle,
		Stats:    stats,
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if a := s.opts.Assignment; a != nil {
		// The job moved to another agent: stop the pass (the loop then
		// releases the lease, once the pass returned).
		go func() {
			for {
				changed := a.Changed()
				if !a.Has(name) {
					log.Info("job assigned to another agent: stopping the pass")
					cancel()
					return
				}
				select {
				case <-changed:
				case <-runCtx.Done():
					return
				}
			}
		}()
	}
	type renewal struct {
		lease metastore.Lease
		lost  bool
	}
	stopRenew := make(chan struct{})
	renewed := make(chan renewal, 1)
	go func() {
		cur, lost := l, false
		deadline := local.Add(s.opts.LeaseTTL)
		ticker := time.NewTicker(s.opts.LeaseTTL / 3)
		defer ticker.Stop()
		defer func() { renewed <- renewal{cur, lost} }()
		for {
			select {
			case <-stopRenew:
				return
			case <-ticker.C:
			}
			asked := s.opts.Clock()
			next, err := s.store.RenewLease(runCtx, cur, s.opts.LeaseTTL)
			if err == nil {
				cur, deadline = next, asked.Add(s.opts.LeaseTTL)
				continue
			}
			if errors.Is(err, metastore.ErrLeaseLost) || s.opts.Clock().After(deadline.Add(-s.opts.LeaseTTL/3)) {
				if runCtx.Err() == nil {
					log.Warn("job lease lost: stopping the pass", "err", err)
				}
				lost = true
				cancel()
				return
			}
			log.Warn("renew job lease failed; retrying", "err", err)
		}
	}()

	start := time.Now()
	s.metrics.runs.WithLabelValues(name).Inc()
	err := j.Run(runCtx, env)
	s.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	close(stopRenew)
	r := <-renewed
	switch {
	case err == nil:
		s.metrics.lastOK.WithLabelValues(name).SetToCurrentTime()
	case ctx.Err() != nil, r.lost, s.opts.Assignment != nil && !s.opts.Assignment.Has(name):
		// Stopping, or another agent's turn: not a failure of the job.
	default:
		s.metrics.failures.WithLabelValues(name).Inc()
		log.Warn("job pass failed", "err", err)
	}
	return r.lease, r.lost
}
