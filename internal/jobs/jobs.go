// Package jobs runs Floe's background jobs on agents with the jobs role:
// retention (retention.ms, retention.bytes), segment compaction (a
// partition's small extents merged into large per-partition objects), key
// compaction (cleanup.policy=compact) and the cleaner (deleting
// unreferenced and orphaned objects after their grace periods).
//
// Every job is leased through the metadata store (metastore.LeaseStore),
// so exactly one agent runs it at a time; a dead agent's lease expires
// and another agent takes the job. On a store that schedules (the control
// plane), an Assignment further restricts each agent to the jobs assigned
// to it; the lease stays the fence. Each job splits into a pure planner
// (state in, decisions out: PlanRetention, PlanPartitionCompaction and
// PackCompaction, PlanKeyCompaction, PlanOrphans, DeleteDelay) and an
// executor that reads the state and applies the decisions.
//
// A job must never delete an object the metadata store refers to, nor
// one younger than its grace period; see docs/jobs.md.
package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// Job is one kind of background work, run periodically under a lease
// named after it.
type Job interface {
	// Name names the lease and the metrics' job label: retention,
	// cleaner, compaction, …
	Name() string
	// Run does one pass. It should stop soon after ctx is done (the
	// lease was lost or the agent stops) and leave nothing half done
	// that the next pass, on any agent, cannot finish.
	Run(ctx context.Context, env *Env) error
}

// Env is what the scheduler gives a job's pass.
type Env struct {
	// Now is the metadata store's clock, estimated from the lease's
	// timestamps: compare it, not time.Now, with times the store set
	// (Extent.CommittedAt, UnreferencedObject.Since).
	Now func() time.Time
	// Throttle bounds the bytes per second of every job of the agent
	// together; a job that moves data calls Throttle.Wait before it.
	Throttle *Throttle
	// Stats counts the job's work.
	Stats *Stats
}

// Stats are one job's counters, exported as Prometheus metrics with a
// job label.
type Stats struct {
	bytesIn, bytesOut     prometheus.Counter
	objectsIn, objectsOut prometheus.Counter
	lag                   prometheus.Gauge
}

// In counts objects (or extents) and bytes the job took out of the live
// data: extents dropped by retention, objects deleted by the cleaner,
// objects replaced by compaction.
func (s *Stats) In(objects int, bytes int64) {
	s.objectsIn.Add(float64(objects))
	s.bytesIn.Add(float64(bytes))
}

// Out counts objects and bytes the job wrote (compaction's new objects).
func (s *Stats) Out(objects int, bytes int64) {
	s.objectsOut.Add(float64(objects))
	s.bytesOut.Add(float64(bytes))
}

// Lag reports how far behind the job is: how long the oldest work it
// has not done yet has been due (0 when it is up to date).
func (s *Stats) Lag(d time.Duration) { s.lag.Set(max(d, 0).Seconds()) }

// metrics are the scheduler's metric vectors.
type metrics struct {
	runs, failures        *prometheus.CounterVec
	bytesIn, bytesOut     *prometheus.CounterVec
	objectsIn, objectsOut *prometheus.CounterVec
	lag, held, lastOK     *prometheus.GaugeVec
	assigned              *prometheus.GaugeVec
	duration              *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "job", Name: name, Help: help}, []string{"job"})
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "job", Name: name, Help: help}, []string{"job"})
	}
	m := &metrics{
		runs:       counter("runs_total", "Passes of the job run by this agent."),
		failures:   counter("failures_total", "Passes of the job that failed."),
		bytesIn:    counter("bytes_in_total", "Bytes the job took out of the live data (dropped, deleted or replaced)."),
		bytesOut:   counter("bytes_out_total", "Bytes the job wrote."),
		objectsIn:  counter("objects_in_total", "Extents or objects the job took out of the live data."),
		objectsOut: counter("objects_out_total", "Objects the job wrote."),
		lag:        gauge("lag_seconds", "How long the oldest work the job has not done yet has been due."),
		held:       gauge("lease_held", "1 while this agent holds the job's lease."),
		assigned:   gauge("assigned", "1 while the control plane's schedule assigns the job to this agent (agents on floe:// only)."),
		lastOK:     gauge("last_success_timestamp_seconds", "When the job last completed a pass on this agent."),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "job", Name: "run_seconds", Help: "Duration of the job's passes.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.failures, m.bytesIn, m.bytesOut, m.objectsIn, m.objectsOut, m.lag, m.held, m.lastOK, m.assigned, m.duration)
	}
	return m
}

func (m *metrics) stats(job string) *Stats {
	m.failures.WithLabelValues(job) // zero from the start, for alerts on its rate
	return &Stats{
		bytesIn: m.bytesIn.WithLabelValues(job), bytesOut: m.bytesOut.WithLabelValues(job),
		objectsIn: m.objectsIn.WithLabelValues(job), objectsOut: m.objectsOut.WithLabelValues(job),
		lag: m.lag.WithLabelValues(job),
	}
}

// Config configures the jobs every agent with the jobs role runs.
type Config struct {
	// Options configure the scheduler; the agent sets Holder, Logger and
	// Registerer.
	Options
	// DeleteDelay is file.delete.delay.ms for topics that do not set it
	// (default DefaultDeleteDelay, Kafka's 60 s).
	DeleteDelay time.Duration
	// OrphanGrace is how old an object no metadata knows must be before
	// the cleaner deletes it (default DefaultOrphanGrace, 1 h).
	OrphanGrace time.Duration
	// OrphanScanInterval is the time between the cleaner's bucket
	// listings (default OrphanGrace / 4, at most 15 minutes).
	OrphanScanInterval time.Duration
	// CompactionFanout is segment compaction's size ratio (default
	// DefaultCompactionFanout); CompactionObjectBytes bounds its objects
	// (default DefaultCompactionObjectBytes).
	CompactionFanout      int
	CompactionObjectBytes int64
}

// StandardStore is what the standard jobs need together: their leases,
// and what each job reads and changes.
type StandardStore interface {
	metastore.LeaseStore
	RetentionStore
	CompactionStore
	CleanerStore
}

// Standard returns the scheduler of the agent's standard jobs: retention,
// segment compaction, key compaction and the cleaner.
func Standard(store StandardStore, bucket objstore.Bucket, cfg Config) *Scheduler {
	return NewScheduler(store, standardJobs(store, bucket, cfg), cfg.Options)
}

// StandardNames names the standard jobs, as a scheduler announces them
// (metastore.ScheduleMember.Jobs).
func StandardNames() []string {
	var names []string
	for _, j := range standardJobs(nil, nil, Config{}) {
		names = append(names, j.Name())
	}
	return names
}

func standardJobs(store StandardStore, bucket objstore.Bucket, cfg Config) []Job {
	return []Job{
		&Retention{Store: store, Logger: cfg.Logger},
		&Compaction{
			Store: store, Bucket: bucket, Logger: cfg.Logger,
			Fanout: cfg.CompactionFanout, MaxObjectBytes: cfg.CompactionObjectBytes,
		},
		&KeyCompaction{Store: store, Bucket: bucket, Logger: cfg.Logger},
		&Cleaner{
			Store: store, Bucket: bucket, Logger: cfg.Logger,
			DefaultDeleteDelay: cfg.DeleteDelay, OrphanGrace: cfg.OrphanGrace, OrphanScanInterval: cfg.OrphanScanInterval,
		},
	}
}
