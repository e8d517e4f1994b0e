package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/produce"
)

// MetastoreConfig is a load on a metadata store alone: simulated agents
// committing segments, and simulated fetches reading offsets and extents.
// No bucket and no Kafka client are involved.
type MetastoreConfig struct {
	// Agents is the number of simulated agents. Each commits its segments
	// one after another, as an agent's commit chain does, so the commit
	// rate is Agents / commit latency: a closed loop, which is what the
	// store serves in production (agents wait for their commit before the
	// next).
	Agents int
	// PartitionsPerCommit is how many partitions each commit touches (one
	// batch each), chosen at random among Partitions.
	PartitionsPerCommit int
	// Partitions is the topic's partition count.
	Partitions int
	// Readers is the number of simulated fetch loops, each reading one
	// random partition's offsets and then up to 64 extents from 64
	// offsets below its high watermark, as a reader's cache miss does.
	Readers int
	// ReadsPerSec paces the readers together (0: as fast as they can,
	// which on a small machine takes the CPU the commits need).
	ReadsPerSec float64
	// Duration of the measured run, after Warmup.
	Duration time.Duration
	// Warmup runs the load before measuring (new connections, first
	// producer states).
	Warmup time.Duration
	// InflightSegments is how many segments each simulated agent has
	// uploading or waiting for their commit at once (its flush slots;
	// agents have 4 by default); 0 or 1: one at a time, the next made
	// when the last is committed. Their commits go in order, and the
	// segments ready at a commit's turn go in its transaction when the
	// store commits groups (metastore.GroupSequencer), as an agent's
	// writer folds them.
	InflightSegments int
	// NoGroups commits one segment at a time even where the store
	// commits groups (to measure what folding changes).
	NoGroups bool
	// PutLatency is how long a segment takes to upload before it can be
	// committed, drawn for each (0: none, the store alone is measured).
	PutLatency LatencyRange
	// Progress, when set, receives a line every ProgressInterval.
	Progress         io.Writer
	ProgressInterval time.Duration
	// KeepTopic leaves the benchmark's topic (and its extents) in the
	// store; by default it is deleted at the end.
	KeepTopic bool
	Logger    *slog.Logger
	// AgentStores, when set, are stores of the same metadata opened
	// apart, as agents each open their own: simulated agent i commits,
	// and reader i reads, through AgentStores[i % len(AgentStores)]. The
	// topic is created and deleted through the store RunMetastore is
	// given. Unset, everything goes through that one store.
	AgentStores []metastore.Store
	// NoticesRelayed says, for the report, that the AgentStores relay
	// their commit notices to each other (RelayNotices).
	NoticesRelayed bool
	// Connections says, for the report, how many database connections
	// the simulated agents and readers can hold at once through their
	// stores' pools (0: not known, or not a database). The database's
	// rate depends on it (docs/postgres.md, "Connections").
	Connections int
}

// Bounds on a MetastoreConfig: enough for any load this machine could
// drive, small enough that a typo cannot exhaust memory.
const (
	maxBenchAgents     = 10_000
	maxBenchPartitions = 1_000_000
	maxBenchPerCommit  = 100_000
	maxBenchInflight   = 64
)

func (c *MetastoreConfig) validate() error {
	switch {
	case c.Agents < 1 || c.Agents > maxBenchAgents:
		return fmt.Errorf("agents %d: want 1 to %d", c.Agents, maxBenchAgents)
	case c.Partitions < 1 || c.Partitions > maxBenchPartitions:
		return fmt.Errorf("partitions %d: want 1 to %d", c.Partitions, maxBenchPartitions)
	case c.PartitionsPerCommit < 1 || c.PartitionsPerCommit > min(c.Partitions, maxBenchPerCommit):
		return fmt.Errorf("partitions per commit %d: want 1 to %d (the partition count)", c.PartitionsPerCommit, min(c.Partitions, maxBenchPerCommit))
	case c.Readers < 0 || c.Readers > maxBenchAgents:
		return fmt.Errorf("readers %d: want 0 to %d", c.Readers, maxBenchAgents)
	case c.ReadsPerSec < 0 || c.ReadsPerSec > 1e7:
		return fmt.Errorf("reads per second %v: want 0 (unpaced) to 1e7", c.ReadsPerSec)
	case c.InflightSegments < 0 || c.InflightSegments > maxBenchInflight:
		return fmt.Errorf("segments in flight %d: want 0 to %d", c.InflightSegments, maxBenchInflight)
	case c.PutLatency.Max > time.Minute:
		return fmt.Errorf("put latency %v: want at most a minute", c.PutLatency)
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Warmup < 0:
		return errors.New("warmup must not be negative")
	}
	return nil
}

// MetastoreReport is what a metadata store run measured.
type MetastoreReport struct {
	Agents              int     `json:"agents"`
	PartitionsPerCommit int     `json:"partitions_per_commit"`
	Partitions          int     `json:"partitions"`
	Readers             int     `json:"readers"`
	Stores              int     `json:"stores"` // opened apart: 1, or one per agent
	NoticesRelayed      bool    `json:"notices_relayed"`
	Connections         int     `json:"connections,omitempty"` // the stores' pools together
	ReadsPerSecTarget   float64 `json:"reads_per_sec_target,omitempty"`
	InflightSegments    int     `json:"inflight_segments"`
	Groups              bool    `json:"groups"` // segments ready at a commit's turn went in its transaction
	PutLatency          string  `json:"put_latency"`
	Seconds             float64 `json:"seconds"`
	Commits             uint64  `json:"commits"` // segments committed
	CommitsPerSec       float64 `json:"commits_per_sec"`
	BatchesPerSec       float64 `json:"batches_per_sec"`
	Transactions        uint64  `json:"transactions"` // store calls: a segment, or a group
	TransactionsPerSec  float64 `json:"transactions_per_sec"`
	Commit              Summary `json:"commit_latency"`  // per transaction
	Segment             Summary `json:"segment_latency"` // per segment, uploaded to committed
	CommitErrors        int64   `json:"commit_errors"`
	RejectedBatches     int64   `json:"rejected_batches"`
	Reads               uint64  `json:"reads"`
	ReadsPerSec         float64 `json:"reads_per_sec"`
	Read                Summary `json:"read_latency"` // one Offsets plus one Extents
	ReadErrors          int64   `json:"read_errors"`
	// CPU over the measured window, where the machine says (Linux): this
	// process's, and the rest of the machine's (the database, when it
	// runs here, and whatever else does).
	ProcessCPUSeconds float64 `json:"process_cpu_seconds"`
	OtherCPUSeconds   float64 `json:"other_cpu_seconds,omitempty"`
	// OtherCPUPerSegmentMs is OtherCPUSeconds per segment committed: with
	// the database alone beside the benchmark, its CPU per segment.
	OtherCPUPerSegmentMs float64 `json:"other_cpu_per_segment_ms,omitempty"`
}

// WriteText prints the report.
func (r *MetastoreReport) WriteText(w io.Writer) {
	notices := "through the store"
	if r.NoticesRelayed {
		notices = "relayed between the stores"
	}
	conns := ""
	if r.Connections > 0 {
		conns = fmt.Sprintf(" (pools of %d connections together)", r.Connections)
	}
	fmt.Fprintf(w, "metadata store: %d agents, %d partitions per commit (of %d), %d readers, %d store(s) opened apart%s, notices %s, %.1f s measured\n",
		r.Agents, r.PartitionsPerCommit, r.Partitions, r.Readers, r.Stores, conns, notices, r.Seconds)
	if r.InflightSegments > 1 || r.PutLatency != (LatencyRange{}).String() {
		grouped := "one transaction each"
		if r.Groups {
			grouped = "those ready at a commit's turn in its transaction"
		}
		fmt.Fprintf(w, "each agent: %d segments in flight, uploads of %s, %s\n", r.InflightSegments, r.PutLatency, grouped)
	}
	fmt.Fprintf(w, "commits: %s segments in all, %.0f commits/s (%s batches/s), latency p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms, errors %d, rejected batches %d\n",
		count(int64(r.Commits)), r.CommitsPerSec, count(int64(r.BatchesPerSec)), r.Commit.P50, r.Commit.P90, r.Commit.P99, r.Commit.Max, r.CommitErrors, r.RejectedBatches)
	if r.Groups || r.InflightSegments > 1 {
		per := 0.0
		if r.Transactions > 0 {
			per = float64(r.Commits) / float64(r.Transactions)
		}
		fmt.Fprintf(w, "transactions: %.0f/s, %.2f segments each (the latencies above are per transaction); a segment from uploaded to committed: p50 %.2f ms  p99 %.2f ms\n",
			r.TransactionsPerSec, per, r.Segment.P50, r.Segment.P99)
	}
	if r.Readers > 0 {
		fmt.Fprintf(w, "reads (offsets + extents): %s in all, %.0f reads/s, latency p50 %.2f ms  p99 %.2f ms  max %.2f ms, errors %d\n",
			count(int64(r.Reads)), r.ReadsPerSec, r.Read.P50, r.Read.P99, r.Read.Max, r.ReadErrors)
	}
	if r.OtherCPUSeconds > 0 {
		fmt.Fprintf(w, "CPU while measuring: this process %.1f s, the rest of the machine %.1f s (%.2f ms per segment)\n",
			r.ProcessCPUSeconds, r.OtherCPUSeconds, r.OtherCPUPerSegmentMs)
	}
}

// metastoreRun is one run's shared state.
type metastoreRun struct {
	cfg   MetastoreConfig
	store metastore.Store // creates and deletes the topic
	topic metastore.Topic
	run   string // random, so object keys never repeat across runs

	measuring  atomic.Bool
	commitLat  *Histogram // per store call (a segment, or a group of them)
	segmentLat *Histogram // per segment: uploaded to committed
	readLat    *Histogram
	commits    atomic.Int64 // segments, measured or not, for progress
	reads      atomic.Int64
	commitErr  atomic.Int64
	rejected   atomic.Int64
	readErr    atomic.Int64
}

// RunMetastore drives store with cfg's load and reports commits per
// second and latency percentiles. It creates a topic of its own
// (floe-bench-metastore-<random>) and, unless KeepTopic, deletes it at
// the end. It measures; it asserts nothing.
func RunMetastore(ctx context.Context, store metastore.Store, cfg MetastoreConfig) (*MetastoreReport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rb [6]byte
	if _, err := crand.Read(rb[:]); err != nil {
		return nil, err
	}
	r := &metastoreRun{cfg: cfg, store: store, run: hex.EncodeToString(rb[:]), commitLat: NewHistogram(), segmentLat: NewHistogram(), readLat: NewHistogram()}
	var err error
	r.topic, err = store.CreateTopic(ctx, metastore.TopicSpec{Name: "floe-bench-metastore-" + r.run, Partitions: int32(cfg.Partitions)})
	if err != nil {
		return nil, fmt.Errorf("create the benchmark topic: %w", err)
	}
	if !cfg.KeepTopic {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, err := store.DeleteTopic(dctx, r.topic.Name); err != nil {
				log.Warn("delete the benchmark topic", "topic", r.topic.Name, "err", err)
			}
		}()
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for i := range cfg.Agents {
		pid, epoch, err := store.InitProducerID(ctx, -1, 0)
		if err != nil {
			return nil, fmt.Errorf("agent %d: init producer id: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.agent(runCtx, i, pid, epoch)
		}()
	}
	for i := range cfg.Readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.reader(runCtx, i)
		}()
	}

	p := &metastoreProgress{r: r, last: time.Now()}
	tick := time.NewTicker(cfg.ProgressInterval)
	defer tick.Stop()
	wait := func(d time.Duration, phase string) bool {
		end := time.NewTimer(d)
		defer end.Stop()
		for {
			select {
			case <-ctx.Done():
				return false
			case <-end.C:
				return true
			case <-tick.C:
				p.line(phase)
			}
		}
	}
	completed := wait(cfg.Warmup, "warmup")
	var (
		began                 time.Time
		cpuBefore, busyBefore float64
	)
	if completed {
		r.measuring.Store(true)
		began, cpuBefore, busyBefore = time.Now(), processCPU(), machineBusyCPU()
		completed = wait(cfg.Duration, "measure")
	}
	r.measuring.Store(false)
	elapsed := time.Since(began)
	cpu, busy := processCPU()-cpuBefore, machineBusyCPU()-busyBefore
	stop()
	wg.Wait()
	if began.IsZero() {
		return nil, fmt.Errorf("interrupted during warmup: %w", ctx.Err())
	}
	secs := elapsed.Seconds()
	rep := &MetastoreReport{
		Agents: cfg.Agents, PartitionsPerCommit: cfg.PartitionsPerCommit, Partitions: cfg.Partitions, Readers: cfg.Readers,
		Stores: max(1, len(cfg.AgentStores)), NoticesRelayed: cfg.NoticesRelayed, Connections: cfg.Connections,
		InflightSegments: max(1, cfg.InflightSegments), PutLatency: cfg.PutLatency.String(), Groups: !cfg.NoGroups && groups(store, cfg),
		ReadsPerSecTarget: cfg.ReadsPerSec, Seconds: secs, Commits: r.segmentLat.Count(), Commit: r.commitLat.Summary(),
		Transactions: r.commitLat.Count(), Segment: r.segmentLat.Summary(),
		CommitErrors: r.commitErr.Load(), RejectedBatches: r.rejected.Load(),
		Reads: r.readLat.Count(), Read: r.readLat.Summary(), ReadErrors: r.readErr.Load(),
	}
	rep.CommitsPerSec = float64(rep.Commits) / secs
	rep.TransactionsPerSec = float64(rep.Transactions) / secs
	rep.BatchesPerSec = rep.CommitsPerSec * float64(cfg.PartitionsPerCommit)
	rep.ReadsPerSec = float64(rep.Reads) / secs
	rep.ProcessCPUSeconds = cpu
	if busyBefore > 0 && busy > cpu {
		rep.OtherCPUSeconds = busy - cpu
		if rep.Commits > 0 {
			rep.OtherCPUPerSegmentMs = 1000 * rep.OtherCPUSeconds / float64(rep.Commits)
		}
	}
	if !completed {
		log.Warn("interrupted: the report covers the run so far", "seconds", secs)
	}
	return rep, nil
}

// agent commits segments until ctx ends, each touching
// PartitionsPerCommit distinct partitions with one idempotent batch each,
// as an agent's writer does: up to InflightSegments segments uploading or
// waiting for their commit at once, each ready PutLatency after its slot
// freed, committed in order; when the store commits groups
// (metastore.GroupSequencer), the segments ready at a commit's turn go in
// its transaction, as produce.Writer folds them.
func (r *metastoreRun) agent(ctx context.Context, id int, pid int64, epoch int16) {
	store := r.storeOf(id)
	group, _ := store.(metastore.GroupSequencer)
	if r.cfg.NoGroups {
		group = nil
	}
	rng := rand.New(rand.NewPCG(uint64(id), uint64(pid)))
	seq := newSeqTable(r.cfg.Partitions) // next sequence per partition
	picked := make(map[int32]bool, r.cfg.PartitionsPerCommit)
	const batchBytes, batchRecords = 1024, 4
	type queued struct {
		c     metastore.SegmentCommit
		ready time.Time // uploaded
	}
	var queue []queued
	n := 0
	build := func(now time.Time) queued {
		c := metastore.SegmentCommit{
			Object:  fmt.Sprintf("bench-metastore/%s/%d/%d", r.run, id, n),
			Size:    int64(r.cfg.PartitionsPerCommit) * batchBytes,
			Batches: make([]metastore.BatchCommit, 0, r.cfg.PartitionsPerCommit),
		}
		n++
		clear(picked)
		for len(c.Batches) < r.cfg.PartitionsPerCommit {
			p := int32(rng.IntN(r.cfg.Partitions))
			if picked[p] {
				continue
			}
			picked[p] = true
			c.Batches = append(c.Batches, metastore.BatchCommit{
				TopicID: r.topic.ID, Partition: p,
				ByteOffset: int64(len(c.Batches)) * batchBytes, ByteLength: batchBytes,
				OffsetCount: batchRecords, MaxTimestamp: now.UnixMilli(),
				ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq.get(p),
			})
			seq.set(p, seq.get(p)+batchRecords)
		}
		return queued{c: c, ready: now.Add(r.cfg.PutLatency.draw())}
	}
	// rewind sets the sequences of the partitions of batches that were
	// not committed back to the first of them, in commit order, and
	// drops the queue (whose sequences follow them).
	rewind := func(cs []metastore.SegmentCommit, results [][]metastore.BatchResult) {
		done := map[int32]bool{}
		for k, c := range cs {
			for i, b := range c.Batches {
				if k < len(results) && i < len(results[k]) && results[k][i].Err == nil {
					continue
				}
				if !done[b.Partition] {
					done[b.Partition] = true
					seq.set(b.Partition, b.BaseSequence)
				}
			}
		}
		for _, q := range queue {
			for _, b := range q.c.Batches {
				if !done[b.Partition] {
					done[b.Partition] = true
					seq.set(b.Partition, b.BaseSequence)
				}
			}
		}
		queue = queue[:0]
	}
	inflight := max(1, r.cfg.InflightSegments)
	for ctx.Err() == nil {
		now := time.Now()
		for len(queue) < inflight {
			queue = append(queue, build(now))
		}
		if d := time.Until(queue[0].ready); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		take := 1
		if group != nil {
			now := time.Now()
			fits := produce.GroupFits(queue[0].c)
			for take < len(queue) && !queue[take].ready.After(now) && fits(&queue[take].c) {
				take++
			}
		}
		cs := make([]metastore.SegmentCommit, take)
		for k := range cs {
			cs[k] = queue[k].c
		}
		measured := r.measuring.Load()
		start := time.Now()
		var (
			results [][]metastore.BatchResult
			err     error
		)
		if take == 1 {
			var res []metastore.BatchResult
			res, err = store.CommitSegment(ctx, cs[0])
			results = [][]metastore.BatchResult{res}
		} else {
			results, err = group.CommitSegments(ctx, cs)
		}
		end := time.Now()
		took := end.Sub(start)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.commitErr.Add(1)
			// The commit may or may not have happened: the sequences go
			// back to the first batch not known committed (a batch that
			// did commit comes back as a duplicate next time). A short
			// pause keeps a failing store from being hammered.
			queue = queue[take:]
			rewind(cs, nil)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		measure := measured && r.measuring.Load()
		rejected := false
		for k, c := range cs {
			for i := range c.Batches {
				if k >= len(results) || i >= len(results[k]) || results[k][i].Err != nil {
					r.rejected.Add(1)
					rejected = true
				}
			}
			if measure {
				r.segmentLat.Record(end.Sub(queue[k].ready))
			}
		}
		queue = queue[take:]
		if rejected {
			rewind(cs, results)
		}
		r.commits.Add(int64(take))
		if measure {
			r.commitLat.Record(took)
		}
	}
}

// groups reports whether the agents' stores commit groups.
func groups(store metastore.Store, cfg MetastoreConfig) bool {
	if len(cfg.AgentStores) > 0 {
		store = cfg.AgentStores[0]
	}
	_, ok := store.(metastore.GroupSequencer)
	return ok
}

// storeOf is the store simulated agent or reader i goes through.
func (r *metastoreRun) storeOf(i int) metastore.Store {
	if n := len(r.cfg.AgentStores); n > 0 {
		return r.cfg.AgentStores[i%n]
	}
	return r.store
}

// seqTable holds an agent's next sequence per partition: a slice up to
// seqTableDense partitions (a map costs the benchmark's own process, on
// the machine it measures, a tenth of its CPU), a map beyond (bounded by
// the partitions it touches).
type seqTable struct {
	dense  []int32
	sparse map[int32]int32
}

const seqTableDense = 1 << 16

func newSeqTable(partitions int) seqTable {
	if partitions <= seqTableDense {
		return seqTable{dense: make([]int32, partitions)}
	}
	return seqTable{sparse: map[int32]int32{}}
}

func (t seqTable) get(p int32) int32 {
	if t.dense != nil {
		return t.dense[p]
	}
	return t.sparse[p]
}

func (t seqTable) set(p, seq int32) {
	if t.dense != nil {
		t.dense[p] = seq
	} else {
		t.sparse[p] = seq
	}
}

// reader reads random partitions' offsets and extents until ctx ends.
func (r *metastoreRun) reader(ctx context.Context, id int) {
	store := r.storeOf(id)
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	var pace <-chan time.Time
	if r.cfg.ReadsPerSec > 0 {
		t := time.NewTicker(time.Duration(float64(r.cfg.Readers) / r.cfg.ReadsPerSec * float64(time.Second)))
		defer t.Stop()
		pace = t.C
	}
	for ctx.Err() == nil {
		if pace != nil {
			select {
			case <-ctx.Done():
				return
			case <-pace:
			}
		}
		p := int32(rng.IntN(r.cfg.Partitions))
		measured := r.measuring.Load()
		start := time.Now()
		offs, err := store.Offsets(ctx, r.topic.ID, p)
		if err == nil {
			_, err = store.Extents(ctx, r.topic.ID, p, max(offs.LogStartOffset, offs.HighWatermark-64), 64)
		}
		took := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.readErr.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		r.reads.Add(1)
		if measured && r.measuring.Load() {
			r.readLat.Record(took)
		}
	}
}

// metastoreProgress prints a line per interval: rates over the interval,
// the commit p99 measured so far, errors.
type metastoreProgress struct {
	r                    *metastoreRun
	last                 time.Time
	lastCommits, lastRds int64
	started              time.Time
}

func (p *metastoreProgress) line(phase string) {
	r := p.r
	if r.cfg.Progress == nil {
		return
	}
	now := time.Now()
	if p.started.IsZero() {
		p.started = p.last
	}
	secs := now.Sub(p.last).Seconds()
	if secs <= 0 {
		return
	}
	commits, reads := r.commits.Load(), r.reads.Load()
	fmt.Fprintf(r.cfg.Progress, "[metastore] %5.1fs %-7s %6.0f commits/s  commit p99 %.1fms  %6.0f reads/s  errors %d\n",
		now.Sub(p.started).Seconds(), phase, float64(commits-p.lastCommits)/secs,
		float64(r.commitLat.Quantile(0.99))/float64(time.Millisecond), float64(reads-p.lastRds)/secs,
		r.commitErr.Load()+r.readErr.Load())
	p.last, p.lastCommits, p.lastRds = now, commits, reads
}
