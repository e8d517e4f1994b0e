package produce

// Producing through a metadata store outage (opt-in, Options.Outage;
// docs/design.md "Producing through a metadata outage").
//
// When a segment's commit fails because the store cannot be reached (not
// because it refused the commit), the segment's object is already in the
// bucket: the writer acknowledges its batches without offsets (base
// offset -1) and queues the commit. Every later segment is uploaded,
// acknowledged and queued behind it, in flush order, until the queue is
// empty again; a background loop retries the queue's head with backoff
// and commits the queue strictly in order once the store answers.
//
// Without a manifest name the queue lives only in this process's
// memory: an agent that dies while it holds commits loses those
// acknowledged records (their objects stay in the bucket, unreferenced,
// until the cleaner deletes them). With one, each queued commit is also
// in the bucket before it is acknowledged (manifest.go), and an agent
// started again under the name replays them.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// OutageOptions turn on producing through a metadata store outage.
type OutageOptions struct {
	// MaxBytes bounds the bytes of the objects whose commits are queued
	// (the records acknowledged but not yet visible). Default 1 GiB.
	MaxBytes int64
	// MaxSegments bounds the commits queued. Default 10,000.
	MaxSegments int
	// MaxDuration bounds how long the agent keeps acknowledging without
	// the store: once the oldest queued commit is older, new segments fail
	// as they would without this mode (the queue is still replayed).
	// Default 5 minutes.
	MaxDuration time.Duration
	// Unreachable tells an error of CommitSegment that means the store
	// could not be reached (the commit may or may not have been applied)
	// from a refusal. Default: metastore.Unreachable.
	Unreachable func(error) bool
	// ManifestName, when set, makes the queue survive the agent: each
	// queued commit is written to the bucket (outage/NAME/…) before its
	// batches are acknowledged, and Writer.LoadOutageManifests loads
	// those a previous run under the same name left. The name must be
	// stable across restarts and unique among running agents (a
	// StatefulSet pod's name). Empty: the queue is only in memory.
	ManifestName string
	// RetryMin and RetryMax bound the backoff between attempts to commit
	// the queue's head. Defaults 100ms and 2s.
	RetryMin, RetryMax time.Duration
}

// ObjectLookup is what the replay needs besides CommitSegment to learn
// whether a commit whose answer was lost was applied (the object ledger's
// KnownObjects, metastore.ObjectLedger).
type ObjectLookup interface {
	KnownObjects(ctx context.Context, keys []string) (map[string]bool, error)
}

// ErrOutageQueueFull reports a segment that could not be queued during a
// store outage: the queue is at its bound (bytes, segments or age). Its
// producers retry, as for any failed commit.
var ErrOutageQueueFull = errors.New("metadata store unreachable and the outage queue is full")

// ErrOutageTransactional reports a transactional batch flushed while the
// store is unreachable: transactions need the store, so it is never
// queued. Its producer retries.
var ErrOutageTransactional = errors.New("metadata store unreachable: transactional batches are not queued")

// queuedCommit is one segment commit waiting for the store.
type queuedCommit struct {
	commit metastore.SegmentCommit
	queued time.Time
	// attempted is set once a commit of it was sent and failed: it may
	// have been applied, so before sending it again the replay asks the
	// object ledger (unless skipLedger).
	attempted bool
	// skipLedger is set for commits of an object the ledger already
	// knows (a follow-up of batches the store refused by sequence, sent
	// without producer ids; the idempotent batches of a commit whose
	// answer was lost, sent again for the store to call duplicates).
	skipLedger bool
	// loaded is set for a commit read from a manifest at start: found
	// committed, it is dropped whole (its idempotent batches are not
	// sent again: the producer has moved on since).
	loaded bool
	// manifest is its manifest's key (ManifestName), and done the keys
	// of earlier manifests of the same commit, deleted with it.
	manifest string
	done     []string
}

// seqKey is one producer's partition.
type seqKey struct {
	pid       int64
	topic     metastore.TopicID
	partition int32
}

// seqRange is one queued batch of a producer.
type seqRange struct {
	epoch       int16
	first, last int32
}

// seqState is what the queue knows of one producer's partition: its
// batches queued most recently, to refuse a gap and to recognise a retry.
type seqState struct {
	epoch  int16
	last   int32      // the last sequence accepted (or expected minus one)
	recent []seqRange // up to 5, oldest first
}

// maxSeqStates bounds the producer partitions the queue tracks.
const maxSeqStates = 1 << 18

// outage is the queue of commits and its replay loop.
type outage struct {
	w    *Writer
	opts OutageOptions

	mu       sync.Mutex
	queue    []*queuedCommit
	bytes    int64
	seqs     map[seqKey]*seqState
	wake     chan struct{} // signals the replay loop that the queue has a head
	stop     chan struct{} // closed by close
	stopOnce sync.Once
	// deleteOnce closes deletes once.
	deleteOnce    sync.Once
	deletesClosed atomic.Bool
	stopped       chan struct{} // closed when the replay loop returned
	closing       bool
	// since is when the queue last went from empty to one commit, and
	// replayed the commits replayed since, for the log line when it
	// empties.
	since    time.Time
	replayed int

	// deletes feeds the manifest deleter (ManifestName); deleted is
	// closed when it has finished.
	deletes chan string
	deleted chan struct{}
}

func newOutage(w *Writer, o OutageOptions) *outage {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.MaxSegments <= 0 {
		o.MaxSegments = 10_000
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 5 * time.Minute
	}
	if o.Unreachable == nil {
		o.Unreachable = metastore.Unreachable
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(2*time.Second, o.RetryMin)
	}
	q := &outage{w: w, opts: o, seqs: map[seqKey]*seqState{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	q.deletes, q.deleted = make(chan string, 4096), make(chan struct{})
	go q.deleter()
	go q.replayLoop()
	return q
}

// active reports whether commits are queued: a new segment then goes
// behind them.
func (q *outage) active() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue) > 0
}

// offer queues the commit of seg (object uploaded as commit.Object) and
// answers its batches, if the queue has room (or is empty and may take it
// when force is set: the direct commit just failed as unreachable). It
// returns false, answering nothing, when the writer must commit directly
// (the queue is empty and force is not set). Called on the commit chain,
// so offers are in flush order.
func (q *outage) offer(seg *openSegment, commit metastore.SegmentCommit, force, attempted bool) bool {
	q.mu.Lock()
	if len(q.queue) == 0 && !force {
		q.mu.Unlock()
		return false
	}
	now := time.Now()
	reason := ""
	switch {
	case q.closing:
		reason = "closing"
	case len(q.queue) >= q.opts.MaxSegments:
		reason = "segments"
	case q.bytes+commit.Size > q.opts.MaxBytes:
		reason = "bytes"
	case len(q.queue) > 0 && now.Sub(q.queue[0].queued) > q.opts.MaxDuration:
		reason = "duration"
	case len(q.seqs) >= maxSeqStates:
		reason = "producers"
	}
	if reason != "" {
		// Later batches of these producers must not be queued past the
		// gap these leave: the queue expects their retry next.
		for _, b := range commit.Batches {
			if b.ProducerID >= 0 && !b.Transactional {
				q.expectLocked(b)
			}
		}
		q.w.m.outageRefused.WithLabelValues(reason).Add(float64(len(commit.Batches)))
		q.mu.Unlock()
		q.w.log.Warn("segment not queued: the outage queue is full", "object", commit.Object, "reason", reason, "batches", len(seg.pending))
		q.w.failAll(seg, fmt.Errorf("%w: %w (%s)", ErrStorage, ErrOutageQueueFull, reason))
		return true
	}

	// Decide every batch: queue it, answer it as a duplicate of a queued
	// one, or refuse it (transactional, or out of order after a queued
	// batch of its producer).
	results := make([]metastore.BatchResult, len(commit.Batches))
	errs := make([]error, len(commit.Batches))
	kept := commit.Batches[:0:0]
	manifestKey := ""
	var saved map[seqKey]*seqState
	if q.opts.ManifestName != "" {
		saved = q.saveLocked(commit)
	}
	for i, b := range commit.Batches {
		results[i] = metastore.BatchResult{BaseOffset: -1, LogStartOffset: -1}
		if b.Transactional {
			errs[i] = fmt.Errorf("%w: %w", ErrStorage, ErrOutageTransactional)
			q.w.m.outageRefused.WithLabelValues("transactional").Inc()
			continue
		}
		if b.ProducerID >= 0 {
			dup, err := q.checkLocked(b)
			if err != nil {
				errs[i] = err
				q.w.m.outageRefused.WithLabelValues("sequence").Inc()
				continue
			}
			if dup {
				results[i].Duplicate = true
				continue
			}
		}
		kept = append(kept, b)
	}
	if len(kept) > 0 && q.opts.ManifestName != "" {
		// Durable before acknowledged. Offers are serialised by the
		// commit chain; the replay loop may pop meanwhile.
		commit.Batches = kept
		key := q.newManifestKey()
		q.mu.Unlock()
		err := q.putManifest(key, now, commit, false)
		q.mu.Lock()
		if err != nil {
			q.restoreLocked(saved)
			q.mu.Unlock()
			q.w.m.outageRefused.WithLabelValues("manifest").Add(float64(len(commit.Batches)))
			q.w.log.Warn("segment not queued: its outage manifest could not be stored", "object", commit.Object, "err", err)
			q.w.failAll(seg, fmt.Errorf("%w: outage manifest: %v", ErrStorage, err))
			return true
		}
		manifestKey = key
	}
	if len(kept) > 0 {
		commit.Batches = kept
		if len(q.queue) == 0 {
			q.since = now
		}
		q.queue = append(q.queue, &queuedCommit{commit: commit, queued: now, attempted: attempted, manifest: manifestKey})
		q.bytes += commit.Size
		q.w.m.outageQueued.Inc()
		q.w.m.outageSegments.Set(float64(len(q.queue)))
		q.w.m.outageBytes.Set(float64(q.bytes))
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	depth, bytes := len(q.queue), q.bytes
	q.mu.Unlock()
	if depth == 1 && len(kept) > 0 {
		q.w.log.Warn("metadata store unreachable: acknowledging segments without offsets and queueing their commits",
			"object", commit.Object, "batches", len(kept))
	}
	q.w.log.Debug("segment acknowledged, its commit queued until the metadata store answers",
		"object", commit.Object, "batches", len(kept), "queued_segments", depth, "queued_bytes", bytes)
	for i, p := range seg.pending {
		p.result, p.err = results[i], errs[i]
		if errs[i] == nil {
			q.w.m.ackSeconds.Observe(now.Sub(p.appended).Seconds())
		}
		close(p.done)
	}
	return true
}

// nextSeq is the sequence after s (sequences wrap to 0).
func nextSeq(s int32) int32 {
	if s == 1<<31-1 {
		return 0
	}
	return s + 1
}

// checkLocked decides an idempotent batch against the producer's queued
// batches: a duplicate of one of them, accepted (and recorded), or an
// error (out of order, or a stale epoch). A producer with nothing queued
// here is accepted: the store checks it on replay.
func (q *outage) checkLocked(b metastore.BatchCommit) (dup bool, err error) {
	k := seqKey{b.ProducerID, b.TopicID, b.Partition}
	last := int32((int64(b.BaseSequence) + b.OffsetCount - 1) % (1 << 31)) // sequences wrap
	st := q.seqs[k]
	if st != nil {
		for _, r := range st.recent {
			if r.epoch == b.ProducerEpoch && r.first == b.BaseSequence && r.last == last {
				return true, nil
			}
		}
		switch {
		case b.ProducerEpoch < st.epoch:
			return false, fmt.Errorf("%w: epoch %d, the queue holds epoch %d", metastore.ErrInvalidProducerEpoch, b.ProducerEpoch, st.epoch)
		case b.ProducerEpoch == st.epoch && b.BaseSequence != nextSeq(st.last):
			return false, fmt.Errorf("%w: sequence %d, expected %d", metastore.ErrOutOfOrderSequence, b.BaseSequence, nextSeq(st.last))
		case b.ProducerEpoch > st.epoch && b.BaseSequence != 0:
			return false, fmt.Errorf("%w: sequence %d of a new epoch, expected 0", metastore.ErrOutOfOrderSequence, b.BaseSequence)
		}
	} else {
		st = &seqState{}
		q.seqs[k] = st
	}
	if b.ProducerEpoch != st.epoch {
		st.recent = st.recent[:0]
	}
	st.epoch, st.last = b.ProducerEpoch, last
	st.recent = append(st.recent, seqRange{epoch: b.ProducerEpoch, first: b.BaseSequence, last: last})
	if len(st.recent) > 5 {
		st.recent = append(st.recent[:0], st.recent[1:]...)
	}
	return false, nil
}

// expectLocked records that b failed: the producer's next batch queued
// must be b again (its retry), not one after it.
func (q *outage) expectLocked(b metastore.BatchCommit) {
	k := seqKey{b.ProducerID, b.TopicID, b.Partition}
	st := q.seqs[k]
	if st == nil {
		if len(q.seqs) >= maxSeqStates {
			return
		}
		st = &seqState{}
		q.seqs[k] = st
	}
	prev := b.BaseSequence - 1
	if b.BaseSequence == 0 {
		prev = 1<<31 - 1
	}
	if b.ProducerEpoch > st.epoch || (b.ProducerEpoch == st.epoch && st.last != prev) {
		// Only move back: a batch after the failed one must wait for it.
		st.epoch, st.last = b.ProducerEpoch, prev
	}
}

// saveLocked copies the producer states c's batches may change, for
// restoreLocked (nil: the key had none).
func (q *outage) saveLocked(c metastore.SegmentCommit) map[seqKey]*seqState {
	saved := map[seqKey]*seqState{}
	for _, b := range c.Batches {
		k := seqKey{b.ProducerID, b.TopicID, b.Partition}
		if _, done := saved[k]; done || b.ProducerID < 0 {
			continue
		}
		if st := q.seqs[k]; st != nil {
			cp := *st
			cp.recent = append([]seqRange(nil), st.recent...)
			saved[k] = &cp
		} else {
			saved[k] = nil
		}
	}
	return saved
}

// restoreLocked undoes what deciding a commit's batches recorded.
func (q *outage) restoreLocked(saved map[seqKey]*seqState) {
	for k, st := range saved {
		if st == nil {
			delete(q.seqs, k)
		} else {
			q.seqs[k] = st
		}
	}
}

// failed records that the batches of a segment that was not stored (its
// PUT failed) must be retried before anything after them is queued.
func (q *outage) failed(commit metastore.SegmentCommit) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 && len(q.seqs) == 0 {
		return // no outage: the store checks the retries
	}
	for _, b := range commit.Batches {
		if b.ProducerID >= 0 && !b.Transactional {
			q.expectLocked(b)
		}
	}
}

// committed is called after a commit made directly succeeded: the store
// answers, and checks every batch again, so the queue's producer states
// (kept while it was empty after a refusal) are dropped.
func (q *outage) committed() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 && len(q.seqs) > 0 {
		clear(q.seqs)
	}
}

// head returns the queue's first commit, or nil.
func (q *outage) head() *queuedCommit {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return nil
	}
	return q.queue[0]
}

// pop removes the head once it is committed (or replaced by next, a
// follow-up commit of its refused batches, which takes its place).
func (q *outage) pop(h *queuedCommit, next *queuedCommit) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 || q.queue[0] != h {
		return
	}
	if next != nil {
		q.queue[0] = next
		return
	}
	q.queue[0] = nil
	q.queue = q.queue[1:]
	q.bytes -= h.commit.Size
	q.w.m.outageSegments.Set(float64(len(q.queue)))
	q.w.m.outageBytes.Set(float64(q.bytes))
	q.replayed++
	if len(q.queue) == 0 {
		clear(q.seqs)
		q.queue = nil
		q.w.log.Info("outage queue replayed: every queued commit is in the metadata store",
			"segments", q.replayed, "oldest_waited", time.Since(q.since).Round(time.Millisecond))
		q.replayed = 0
	}
}

// deleteManifests removes the manifests of a commit that left the queue.
func (q *outage) deleteManifests(h *queuedCommit) {
	for _, k := range h.done {
		q.deleteManifest(k)
	}
	q.deleteManifest(h.manifest)
}

// oldest is the age of the queue's head (0 when empty).
func (q *outage) oldest() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return 0
	}
	return time.Since(q.queue[0].queued)
}

// replayLoop commits the queue's head whenever there is one, backing off
// while the store stays unreachable.
func (q *outage) replayLoop() {
	defer close(q.stopped)
	backoff := q.opts.RetryMin
	for {
		h := q.head()
		if h == nil {
			select {
			case <-q.stop:
				return
			case <-q.wake:
			}
			continue
		}
		if q.replay(h) {
			backoff = q.opts.RetryMin
			continue
		}
		select {
		case <-q.stop:
			// Close keeps trying within its own deadline (drain).
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, q.opts.RetryMax)
	}
}

// replay tries to commit h once; it reports whether the head moved on.
func (q *outage) replay(h *queuedCommit) bool {
	ctx, cancel := context.WithTimeout(context.Background(), q.w.opts.FlushTimeout)
	defer cancel()
	m := q.w.m
	if h.loaded {
		// Written by a previous run: its object may be gone if that run
		// died longer ago than the cleaner's orphan grace.
		if _, err := q.w.bucket.GetRange(ctx, h.commit.Object, 0, 1); errors.Is(err, objstore.ErrNotFound) {
			m.outageReplays.WithLabelValues("object_missing").Inc()
			m.outageLost.Add(float64(len(h.commit.Batches)))
			q.w.log.Error("queued commit's object is gone from the bucket: its acknowledged records are lost",
				"object", h.commit.Object, "manifest", h.manifest, "batches", len(h.commit.Batches))
			q.pop(h, nil)
			q.deleteManifests(h)
			return true
		}
	}
	if h.attempted && !h.skipLedger {
		// A commit sent before may have been applied with its answer
		// lost: the object ledger knows every committed object.
		if lookup, ok := q.w.store.(ObjectLookup); ok {
			known, err := lookup.KnownObjects(ctx, []string{h.commit.Object})
			if err != nil {
				m.outageReplays.WithLabelValues("unreachable").Inc()
				q.w.log.Debug("outage queue: store still unreachable", "object", h.commit.Object, "err", err)
				return false
			}
			if known[h.commit.Object] {
				// Applied. Its plain batches were all accepted (a commit
				// is atomic, and only sequences refuse single batches);
				// its idempotent ones may have been refused in the lost
				// answer, so they are sent again: the store calls those
				// it accepted duplicates.
				m.outageReplays.WithLabelValues("already_committed").Inc()
				q.w.log.Info("queued commit was applied before its answer was lost", "object", h.commit.Object,
					"queued_for", time.Since(h.queued).Round(time.Millisecond))
				var idem []metastore.BatchCommit
				for _, b := range h.commit.Batches {
					if b.ProducerID >= 0 && !h.loaded {
						idem = append(idem, b)
					}
				}
				if len(idem) == 0 {
					q.pop(h, nil)
					q.deleteManifests(h)
					return true
				}
				// The manifest stays: the batches are still to commit.
				next := &queuedCommit{commit: metastore.SegmentCommit{Object: h.commit.Object, Size: h.commit.Size, Batches: idem},
					queued: h.queued, skipLedger: true, manifest: h.manifest, done: h.done}
				q.pop(h, next)
				return true
			}
		}
	}
	h.attempted = true
	results, err := q.w.store.CommitSegment(ctx, h.commit)
	if err != nil {
		if q.opts.Unreachable(err) {
			m.outageReplays.WithLabelValues("unreachable").Inc()
			q.w.log.Debug("outage queue: store still unreachable", "object", h.commit.Object, "err", err)
			return false
		}
		// A refusal of the whole commit (a malformed one cannot come from
		// this writer; the store's own failure): keep it and retry, since
		// its batches were acknowledged.
		m.outageReplays.WithLabelValues("error").Inc()
		q.w.log.Error("queued commit refused by the metadata store; retrying", "object", h.commit.Object, "err", err)
		return false
	}
	if len(results) != len(h.commit.Batches) {
		m.outageReplays.WithLabelValues("error").Inc()
		q.w.log.Error("queued commit answered with the wrong number of results; retrying", "object", h.commit.Object,
			"results", len(results), "batches", len(h.commit.Batches))
		return false
	}
	// Batches refused by their producer's sequence or epoch were
	// acknowledged: their producer wrote through another agent too (or
	// its epoch moved on) while this one queued them. They are committed
	// again without the sequence check, right behind this commit.
	var again []metastore.BatchCommit
	dups, lost := 0, 0
	for i, r := range results {
		switch {
		case r.Err == nil:
			if r.Duplicate {
				dups++
			}
		case errors.Is(r.Err, metastore.ErrOutOfOrderSequence), errors.Is(r.Err, metastore.ErrInvalidProducerEpoch),
			errors.Is(r.Err, metastore.ErrUnknownProducerID):
			b := h.commit.Batches[i]
			b.ProducerID, b.ProducerEpoch, b.BaseSequence = -1, -1, -1
			again = append(again, b)
		default:
			// The partition or topic is gone (deleted during the
			// outage): its acknowledged records go with it.
			lost++
			q.w.log.Warn("queued batch refused by the metadata store: its acknowledged records are dropped",
				"object", h.commit.Object, "topic_id", h.commit.Batches[i].TopicID, "partition", h.commit.Batches[i].Partition, "err", r.Err)
		}
	}
	m.outageReplayedBatches.WithLabelValues("duplicate").Add(float64(dups))
	m.outageReplayedBatches.WithLabelValues("dropped").Add(float64(lost))
	m.outageReplayedBatches.WithLabelValues("committed").Add(float64(len(results) - dups - lost - len(again)))
	if len(again) > 0 {
		m.outageReplayedBatches.WithLabelValues("unchecked").Add(float64(len(again)))
		q.w.log.Warn("queued batches refused by their producers' sequences; committing them without the check",
			"object", h.commit.Object, "batches", len(again))
		next := &queuedCommit{commit: metastore.SegmentCommit{Object: h.commit.Object, Size: h.commit.Size, Batches: again},
			queued: h.queued, skipLedger: true, manifest: h.manifest, done: h.done}
		if h.manifest != "" {
			// The follow-up replaces the manifest (its key sorts right
			// after the original's): a restart must not find the whole
			// commit applied and forget these.
			next.manifest = h.manifest + ".f"
			next.done = append(append([]string(nil), h.done...), h.manifest)
			if err := q.putManifest(next.manifest, h.queued, next.commit, true); err != nil {
				// The commit is applied; retried, the ledger finds it and
				// its idempotent batches are sent again.
				h.skipLedger = false
				m.outageReplays.WithLabelValues("error").Inc()
				q.w.log.Warn("outage manifest of a follow-up commit not stored; retrying", "object", h.commit.Object, "err", err)
				return false
			}
		}
		m.outageReplays.WithLabelValues("partial").Inc()
		q.pop(h, next)
		return true
	}
	m.outageReplays.WithLabelValues("committed").Inc()
	q.w.log.Debug("queued commit replayed", "object", h.commit.Object, "batches", len(results),
		"duplicates", dups, "queued_for", time.Since(h.queued).Round(time.Millisecond))
	q.pop(h, nil)
	q.deleteManifests(h)
	return true
}

// stopQueueing makes later offers fail their segments (the writer is
// closing); what is queued is still replayed.
func (q *outage) stopQueueing() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
}

// close stops queueing and tries to replay what is queued until ctx
// ends; what is left then is lost, and logged as such.
func (q *outage) close(ctx context.Context) {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	q.stopOnce.Do(func() { close(q.stop) })
	<-q.stopped
	defer func() {
		q.deleteOnce.Do(func() {
			q.deletesClosed.Store(true)
			close(q.deletes)
		})
		select { // the deletes still queued, within ctx
		case <-q.deleted:
		case <-ctx.Done():
		}
	}()
	backoff := q.opts.RetryMin
	for {
		h := q.head()
		if h == nil {
			return
		}
		if q.replay(h) {
			continue
		}
		select {
		case <-ctx.Done():
			q.mu.Lock()
			n, batches, bytes := len(q.queue), 0, q.bytes
			for _, c := range q.queue {
				batches += len(c.commit.Batches)
			}
			q.mu.Unlock()
			if q.opts.ManifestName != "" {
				q.w.log.Error("writer closed with commits still queued: their manifests stay in the bucket, replayed when an agent starts again under the same manifest name",
					"manifest_name", q.opts.ManifestName, "segments", n, "batches", batches, "bytes", bytes)
				return
			}
			q.w.m.outageLost.Add(float64(batches))
			q.w.log.Error("writer closed with commits still queued: their acknowledged records are lost",
				"segments", n, "batches", batches, "bytes", bytes)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, q.opts.RetryMax)
	}
}
