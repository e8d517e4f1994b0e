package control

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// BatchVersion is the version of the journal's batch encoding: a batch
// of version N holds its commands' arguments as protocol version N
// encodes them. Version 1 batches are still replayed.
const BatchVersion = remote.Version

// oldestBatchVersion is the oldest batch version this build replays.
const oldestBatchVersion = 1

// Command is one mutating operation as the journal keeps it: everything
// needed to apply it again and get the same result.
type Command struct {
	Op   string            `cbor:"op"`
	At   int64             `cbor:"at"`             // leader's clock, Unix nanoseconds
	Rand []byte            `cbor:"rand,omitempty"` // the random bytes the op reads
	Args remote.RawMessage `cbor:"args"`
}

// Batch is one journal row.
type Batch struct {
	V        int       `cbor:"v"`
	Commands []Command `cbor:"cmds"`
}

// Bounds of one batch, so that a journal row stays well under
// journal.MaxBatchBytes and a batch does not hold callers too long.
const (
	maxBatchCommands = 1024
	maxBatchBytes    = 16 << 20
	queueLength      = 4096
	// appendTimeout bounds one journal append: a database that does not
	// answer stops the vcluster rather than holding its callers forever.
	appendTimeout = 30 * time.Second
)

// ErrUnavailable reports a vcluster that stopped serving: its journal
// refused an append (a newer leader, or the database failed).
var ErrUnavailable = remote.ErrUnavailable

// command is a Command in flight: its decoded arguments, who sent it and
// where its answer goes.
type command struct {
	Command
	op     *remote.Op
	args   any
	origin *session
	resp   remote.Response
	done   chan struct{}
}

// vcluster is one virtual cluster's state machine: the embedded store
// holding its state, and the loops that journal and apply its commands.
type vcluster struct {
	name    string
	log     *slog.Logger
	journal *journal.Journal
	dir     string
	store   *embedded.Store
	epoch   int64
	id      string // the incarnation (journal.VCluster.ID) its state is of

	// The lease: ttl as taken and renewed; leaseBase and leaseUntil the
	// local deadline to stop serving by, in monotonic nanoseconds since
	// leaseBase (docs/control-plane.md: lease rules).
	ttl        time.Duration
	leaseBase  time.Time
	leaseUntil atomic.Int64
	lostOnce   sync.Once
	leaseLost  atomic.Bool // set by lose: another process may lead it now
	renewDone  chan struct{}

	applyAt atomic.Int64 // stamped time of the command being applied; 0 between commands
	randBuf []byte       // its random bytes; touched only by the applier
	current *command     // the command being applied, for its notices; applier only
	pushes  []push       // notices of the batch being applied; applier only
	lastAt  int64        // the latest stamped time; batcher (after replay) only
	// appliedAt is the latest stamped time applied, recorded in the state
	// with each batch's sequence number; applier only.
	appliedAt int64

	queue     chan *command
	loopsDone chan struct{} // closed when the batcher and the applier have stopped
	stopOnce  sync.Once
	stop      chan struct{} // closed by close
	failed    chan struct{} // closed when the journal refused an append
	failErr   error
	loops     sync.WaitGroup

	mu       sync.Mutex
	sessions map[*session]bool

	// sched is the vcluster's job and cache-ring schedule (schedule.go).
	sched *schedule

	// requests bounds the request bytes its sessions decode and run at
	// once; serverRequests (shared by the server's vclusters) all of them.
	requests       *budget
	serverRequests *budget

	stopWatch []func()

	// backup, when the server has a bucket, writes the vcluster's
	// snapshots and log tail to it (backup.go); snapReq is how its loop
	// asks the applier for a snapshot between batches.
	backup     *backupState
	snapReq    chan chan *embedded.Snapshot
	backupDone chan struct{}

	// onFail, if set, is called once (on its own goroutine) when an
	// append failed or the lease was lost, with the cause: the server
	// rebuilds the vcluster from the journal, or (fenced, lease lost)
	// stops serving it.
	onFail func(*vcluster, error)

	stats vclusterStats
}

// vclusterStats count where a vcluster's time goes, for its close log
// and the benchmark notes.
type vclusterStats struct {
	batches, commands atomic.Int64
	slowBatches       atomic.Int64 // applied one command per transaction
	applies           atomic.Int64 // transactions that applied live batches: batches cut while the applier was busy join
	appendNanos       atomic.Int64 // journal appends
	applyNanos        atomic.Int64 // applying to the state
	maxBatch          atomic.Int64
	replayed          atomic.Int64 // journal rows replayed when the vcluster opened
	standbySeq        atomic.Int64 // the batch its warm standby held when it took the lease (0: none)
	openNanos         atomic.Int64 // from taking the lease to serving
	snapshotSeq       atomic.Int64 // the batch of the snapshot it opened from (0: none)
}

// Stats are a vcluster's counters since it started.
type Stats struct {
	Batches, Commands int64
	// SlowBatches were applied one command per transaction, because a
	// command failed inside the batch's.
	SlowBatches int64
	MaxBatch    int64
	// Applies counts the transactions that applied the batches: batches
	// cut while the applier was busy are applied together.
	Applies int64
	// Append is the time spent appending batches to the journal, Apply
	// the time from a transaction's start to its callers' answers,
	// waiting for its appends and for the batches before it to commit
	// included (applyLoop), both summed over batches.
	Append, Apply time.Duration
	// Replayed is the number of journal rows replayed when the vcluster
	// opened, after the snapshot of batch SnapshotSeq (0: from the start).
	Replayed, SnapshotSeq int64
	// StandbySeq is the batch a warm standby's state held when it took
	// the lease (0: opened without one); Replayed then counts the rows
	// after it.
	StandbySeq int64
	// Open is how long opening took, from taking the lease to serving
	// (loading, replaying).
	Open time.Duration
	// Backup is the state of its backups in the bucket (zero without
	// one).
	Backup BackupStats
	// StateKeys and StateBytes are what its state holds in memory: keys,
	// and the bytes of keys and values.
	StateKeys, StateBytes int64
}

func (st Stats) String() string {
	if st.Batches == 0 {
		return "no batches"
	}
	return fmt.Sprintf("%d batches (%d one by one), %d commands (mean %.1f, max %d per batch), mean append %v, mean apply %v per batch, applied in %d transactions; opened from snapshot #%d + %d rows",
		st.Batches, st.SlowBatches, st.Commands, float64(st.Commands)/float64(st.Batches), st.MaxBatch,
		st.Append/time.Duration(st.Batches), st.Apply/time.Duration(st.Batches), st.Applies, st.SnapshotSeq, st.Replayed)
}

func (v *vcluster) statsNow() Stats {
	var keys, bytes int64
	if v.store != nil {
		keys, bytes, _ = v.store.StateSize()
	}
	return Stats{
		StateKeys: keys, StateBytes: bytes,
		Batches: v.stats.batches.Load(), SlowBatches: v.stats.slowBatches.Load(), Applies: v.stats.applies.Load(), Commands: v.stats.commands.Load(), MaxBatch: v.stats.maxBatch.Load(),
		Append: time.Duration(v.stats.appendNanos.Load()), Apply: time.Duration(v.stats.applyNanos.Load()),
		Replayed: v.stats.replayed.Load(), SnapshotSeq: v.stats.snapshotSeq.Load(), StandbySeq: v.stats.standbySeq.Load(),
		Open:   time.Duration(v.stats.openNanos.Load()),
		Backup: v.backup.stats(),
	}
}

// openVCluster takes the vcluster's lease for ttl (journal.ErrLeaseHeld
// if another process holds it) and rebuilds its state in a new directory
// under dir: from the newest usable snapshot in the bucket (backup set)
// and the journal rows after it, or from the whole journal.
func openVCluster(ctx context.Context, name string, j *journal.Journal, holder, dir string, ttl time.Duration, backup *BackupOptions, onFail func(*vcluster, error), log *slog.Logger) (*vcluster, error) {
	v, err := newVCluster(name, j, dir, ttl, onFail, log)
	if err != nil {
		return nil, err
	}
	if err := v.takeLease(ctx, holder); err != nil {
		os.RemoveAll(v.dir)
		return nil, err
	}
	start := time.Now()
	last, err := j.LastSeq(ctx, name)
	if err != nil {
		return v.giveUp(err)
	}
	seq, err := v.loadState(ctx, backup, last)
	if err != nil {
		return v.giveUp(err)
	}
	if err := v.catchUp(ctx, seq, last, start); err != nil {
		return v.giveUp(err)
	}
	return v, nil
}

// newVCluster is a vcluster with no state, lease or loops yet, its
// directory made under dir.
func newVCluster(name string, j *journal.Journal, dir string, ttl time.Duration, onFail func(*vcluster, error), log *slog.Logger) (*vcluster, error) {
	vdir, err := os.MkdirTemp(dir, "vcluster-"+name+"-")
	if err != nil {
		return nil, err
	}
	v := &vcluster{
		name: name, log: log.With("vcluster", name), journal: j, dir: vdir,
		queue: make(chan *command, queueLength), stop: make(chan struct{}), failed: make(chan struct{}),
		loopsDone: make(chan struct{}), renewDone: make(chan struct{}),
		sessions: map[*session]bool{},
		ttl:      ttl, leaseBase: time.Now(), onFail: onFail,
		requests: newBudget(vclusterRequestBytes),
		snapReq:  make(chan chan *embedded.Snapshot),
	}
	v.sched = newSchedule(v)
	return v, nil
}

// takeLease takes the vcluster's lease (epoch + 1) if it is free, and
// renews it from then on: a long replay must not lose it.
func (v *vcluster) takeLease(ctx context.Context, holder string) error {
	sent := v.sinceBase()
	lease, err := v.journal.TakeLease(ctx, v.name, holder, v.ttl)
	if err != nil {
		return err
	}
	v.epoch = lease.Epoch
	v.leaseUntil.Store(sent + int64(v.ttl-leaseMargin(v.ttl)))
	go v.renewLoop()
	return nil
}

// giveUp undoes a takeLease whose open failed: the renewals stop, the
// state is removed and the lease released, so that another process need
// not wait for it to expire (the next try here takes it again anyway).
func (v *vcluster) giveUp(err error) (*vcluster, error) {
	close(v.stop)
	<-v.renewDone
	if v.store != nil {
		v.closeStore()
	} else {
		os.RemoveAll(v.dir)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	v.release(rctx)
	cancel()
	return nil, err
}

// loadState opens the vcluster's state: the newest usable snapshot in the
// bucket (backup set; last is the journal's last batch, which the bucket
// must not be ahead of), or an empty state. It returns the state's
// applied sequence number.
func (v *vcluster) loadState(ctx context.Context, backup *BackupOptions, last int64) (int64, error) {
	reg, err := v.journal.VCluster(ctx, v.name)
	if err != nil {
		return 0, err
	}
	v.id = reg.ID
	statePath := filepath.Join(v.dir, "state.db")
	var seq int64 // the state's applied sequence number
	if backup != nil && backup.Bucket != nil {
		v.backup = newBackupState(backup, reg)
		seq, err = v.backup.load(ctx, v.log, statePath, last)
		if err != nil {
			return 0, err
		}
	} else if reg.BaseSeq > 0 {
		return 0, fmt.Errorf("journal of %s starts after #%d: its state needs a snapshot from the bucket (--bucket)", v.name, reg.BaseSeq)
	}
	v.store, err = embedded.Open(statePath, embedded.Options{
		Logger: v.log, Now: v.now, Rand: randSource{v}, NoSync: true, Memory: true,
	})
	if err != nil {
		return 0, err
	}
	os.Remove(statePath) // loaded into memory: the file is never read again
	got, at, err := v.store.AppliedSeq(ctx)
	if err != nil || got != seq {
		return 0, fmt.Errorf("state of %s: applied sequence %d (%v), loaded #%d", v.name, got, err, seq)
	}
	v.lastAt, v.appliedAt = at, at // stamped times never go backwards
	v.stats.snapshotSeq.Store(seq)
	return seq, nil
}

// readAfter applies the journal rows after seq to the state, at most limit
// of them (limit 0: all), and returns the sequence number of the last one
// applied (seq if none) and their commands. A row that could not be
// applied fails with errBadRow.
func (v *vcluster) readAfter(ctx context.Context, seq, limit int64) (int64, int64, error) {
	var commands, n int64
	err := v.journal.Read(ctx, v.name, seq+1, func(e journal.Entry) error {
		if limit > 0 && n >= limit {
			return errEnough
		}
		c, err := v.replay(e)
		if err != nil {
			return fmt.Errorf("%w: %w", errBadRow, err)
		}
		commands += int64(c)
		n++
		seq = e.Seq
		if v.backup != nil {
			v.backup.appended(e)
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return seq, commands, err
}

var errEnough = errors.New("enough rows for now")

// errBadRow wraps the error of a journal row that could not be applied
// (as opposed to one reading the journal).
var errBadRow = errors.New("journal row not applied")

// catchUp replays the journal rows after seq, which must reach last (the
// journal's last batch, read under the lease: no other process appends
// after it), then starts serving: the batcher appends from the next
// sequence number. start is when opening began, for the log.
func (v *vcluster) catchUp(ctx context.Context, seq, last int64, start time.Time) error {
	seq, commands, err := v.readAfter(ctx, seq, 0)
	if err == nil && seq < last {
		err = fmt.Errorf("journal %s: replayed up to #%d, its last batch is #%d (rows missing after the snapshot)", v.name, seq, last)
	}
	if err != nil {
		return err
	}
	v.stats.openNanos.Store(int64(time.Since(start)))
	v.log.Info("virtual cluster replayed", "epoch", v.epoch, "from_snapshot", v.stats.snapshotSeq.Load(), "standby_seq", v.stats.standbySeq.Load(), "batches", v.stats.replayed.Load(), "last", seq, "commands", commands, "took", time.Since(start).Round(time.Millisecond))
	v.stopWatch = append(v.stopWatch,
		v.store.WatchCommits(v.onCommit),
		v.store.WatchTopics(v.onTopics))
	v.startLoops(seq + 1)
	if v.backup != nil {
		v.backupDone = make(chan struct{})
		go v.backupLoop()
	}
	go func() {
		v.loops.Wait()
		close(v.loopsDone)
	}()
	return nil
}

// replay applies one journal row to the state.
func (v *vcluster) replay(e journal.Entry) (commands int, err error) {
	var b Batch
	if err := remote.Unmarshal(e.Batch, &b); err != nil {
		return 0, fmt.Errorf("journal %s #%d: %w", v.name, e.Seq, err)
	}
	if b.V < oldestBatchVersion || b.V > BatchVersion {
		return 0, fmt.Errorf("journal %s #%d: batch version %d, this build reads %d to %d", v.name, e.Seq, b.V, oldestBatchVersion, BatchVersion)
	}
	cmds := make([]*command, 0, len(b.Commands))
	for _, c := range b.Commands {
		op, ok := remote.Lookup(c.Op)
		if !ok {
			return 0, fmt.Errorf("journal %s #%d: unknown op %q (written by a newer build?)", v.name, e.Seq, c.Op)
		}
		cmd := &command{Command: c, op: op}
		if cmd.args, err = op.DecodeJournaled(c.Args, b.V); err != nil {
			// The leader journals only what it decoded: this row was
			// written by another build, or is damaged.
			return 0, fmt.Errorf("journal %s #%d: %w", v.name, e.Seq, err)
		}
		cmds = append(cmds, cmd)
		v.lastAt = max(v.lastAt, c.At)
	}
	v.applyBatch(e.Seq, cmds)
	v.stats.replayed.Add(1)
	return len(b.Commands), nil
}

// now is the store's clock: the stamped time while a command is applied.
func (v *vcluster) now() time.Time {
	if at := v.applyAt.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Now()
}

// randSource is the store's random source: the current command's bytes.
type randSource struct{ v *vcluster }

func (r randSource) Read(p []byte) (int, error) {
	n := copy(p, r.v.randBuf)
	r.v.randBuf = r.v.randBuf[n:]
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// apply applies one command to the state, with its stamped time and
// bytes, and records its answer.
func (v *vcluster) apply(ctx context.Context, c *command) {
	v.applyAt.Store(c.At)
	v.randBuf = c.Rand
	v.current = c
	res, err := c.op.Apply(ctx, v.store, c.args)
	v.current = nil
	v.randBuf = nil
	v.applyAt.Store(0)
	c.resp.Result, c.resp.Err = res, remote.EncodeError(err)
}

// applyBatch applies a batch read from the journal, in one transaction
// of the state when every one of its commands succeeds inside it
// (embedded.Store.Batch), otherwise one transaction each: the answers
// are the same either way.
//
// The batch's sequence number is recorded in the state with it (in its
// transaction, or after its commands when they are applied one by one):
// a snapshot, taken only between batches (applyLoop), says which
// batches it holds. Live batches go through applyLoop and commitLoop
// instead, which apply a batch while the one before is journaled.
func (v *vcluster) applyBatch(seq int64, batch []*command) {
	v.stampApplied(batch)
	if err := v.store.Batch(func(ctx context.Context) error { return v.applyAll(ctx, seq, batch) }); err != nil {
		v.applyOneByOne(seq, batch, err)
	}
	v.pushNotices(v.takePushes())
}

// stampApplied advances the latest stamped time applied to the batch's.
func (v *vcluster) stampApplied(batch []*command) {
	for _, c := range batch {
		v.appliedAt = max(v.appliedAt, c.At)
	}
}

// applyAll applies the batch's commands in order within the batch's
// transaction (ctx), then records its sequence number.
func (v *vcluster) applyAll(ctx context.Context, seq int64, batch []*command) error {
	for _, c := range batch {
		v.apply(ctx, c)
	}
	return v.store.SetAppliedSeq(ctx, seq, v.appliedAt)
}

// takePushes returns the notices of the batch just applied, for
// pushNotices once it is visible.
func (v *vcluster) takePushes() []push {
	p := v.pushes
	v.pushes = nil
	return p
}

// pushNotices pushes a visible batch's notices to every session but the
// one whose command caused each.
func (v *vcluster) pushNotices(pushes []push) {
	if len(pushes) == 0 {
		return
	}
	// Each notice encoded once, whatever the number of sessions.
	sessions := v.sessionList()
	for _, p := range pushes {
		payload, err := remote.Marshal(p.notice)
		for _, s := range sessions {
			if s != p.origin {
				s.pushNotice(p.kind, payload, err)
			}
		}
	}
}

// applyOneByOne applies a batch whose transaction failed (err) one
// command per transaction.
func (v *vcluster) applyOneByOne(seq int64, batch []*command, err error) {
	if !errors.Is(err, embedded.ErrBatchFailed) {
		v.log.Warn("batch transaction failed; applying its commands one by one", "err", err)
	}
	v.pushes = v.pushes[:0]
	for _, c := range batch {
		c.resp = remote.Response{}
		v.apply(context.Background(), c)
	}
	if err := v.store.SetAppliedSeq(context.Background(), seq, v.appliedAt); err != nil {
		v.log.Error("recording the applied sequence number failed", "seq", seq, "err", err)
	}
	v.stats.slowBatches.Add(1)
}

// submit queues a decoded mutating command and waits for its answer.
func (v *vcluster) submit(ctx context.Context, c *command) remote.Response {
	c.done = make(chan struct{})
	select {
	case v.queue <- c:
	case <-v.failed:
		return unavailable(v.failErr)
	case <-v.stop:
		return unavailable(metastore.ErrClosed)
	case <-ctx.Done():
		return remote.Response{Err: remote.EncodeError(ctx.Err())}
	}
	// Queued: it will be journaled and applied, or failed; wait for it
	// whatever ctx says, so that its answer is the truth. If the loops
	// stopped without taking it (it was queued after the batcher's last
	// drain), nothing was done with it.
	select {
	case <-c.done:
	case <-v.loopsDone:
		select {
		case <-c.done:
		default:
			if v.failErr != nil {
				return unavailable(v.failErr)
			}
			return unavailable(metastore.ErrClosed)
		}
	}
	return c.resp
}

func unavailable(err error) remote.Response {
	return remote.Response{Err: remote.EncodeError(fmt.Errorf("%w: %v", ErrUnavailable, err))}
}

// The live pipeline of a vcluster, four goroutines joined by channels:
//
//	queue → batchLoop ─┬→ appendLoop (the journal, one batch at a time)
//	                   └→ applyLoop (the state, a transaction per batch,
//	                      prepared) → commitLoop (committed, in order,
//	                      once appended; callers answered)
//
// A batch is cut when the applier is ready for one and at most one
// other batch waits for its append: the applier applies a batch on top
// of the one before while that one is still appended, and each append
// follows the last at once, its batch encoded already. Nothing of a
// batch is seen or answered before the journal holds it and every
// batch before it; after a failed append, that batch and every one
// prepared after it are rolled back and their commands answered
// unavailable (the vcluster stops serving: fail).

// appendedBatch is a batch cut by the batcher, numbered seq and encoded
// as raw: its append's error, nil once the journal holds it, comes on
// journaled.
type appendedBatch struct {
	seq       int64
	cmds      []*command
	raw       []byte
	journaled chan error
}

// pendingBatch is a batch applied and prepared in the state, waiting
// for its appends (waits: it may be several batches joined) before
// commitLoop commits it. A pendingBatch with a barrier instead is closed
// once every batch before it was committed or rolled back.
type pendingBatch struct {
	prepared *embedded.Prepared
	cmds     []*command
	waits    []chan error
	pushes   []push
	start    time.Time
	barrier  chan struct{}
}

// appendSlots bound the batches cut but not yet appended: the one being
// appended and the next.
const appendSlots = 2

// startLoops starts the live pipeline from batch seq.
func (v *vcluster) startLoops(seq int64) {
	wants := make(chan struct{}, 1)
	slots := make(chan struct{}, appendSlots) // a token per batch that may be cut
	for range appendSlots {
		slots <- struct{}{}
	}
	toApply := make(chan appendedBatch, appendSlots)
	toAppend := make(chan appendedBatch, appendSlots)
	commits := make(chan pendingBatch, appendSlots+1)
	v.loops.Add(4)
	go v.batchLoop(seq, wants, slots, toApply, toAppend)
	go v.appendLoop(slots, toAppend)
	go v.applyLoop(wants, toApply, commits)
	go v.commitLoop(commits)
}

// receive receives from c, or returns false once the vcluster stops
// (queued commands are then answered closed) or fails (fail answered
// them).
func receive[T any](v *vcluster, c <-chan T) (T, bool) {
	select {
	case x := <-c:
		return x, true
	case <-v.stop:
		v.drainQueue(unavailable(metastore.ErrClosed))
	case <-v.failed:
	}
	var zero T
	return zero, false
}

// batchLoop takes queued commands, stamps them, and cuts them into
// numbered batches, one whenever the applier wants one and an append
// slot is free; each goes to the applier and to the appender.
func (v *vcluster) batchLoop(seq int64, wants, slots <-chan struct{}, toApply, toAppend chan<- appendedBatch) {
	defer v.loops.Done()
	defer close(toAppend)
	defer close(toApply)
	for {
		if _, ok := receive(v, wants); !ok {
			return
		}
		if _, ok := receive(v, slots); !ok {
			return
		}
		first, ok := receive(v, v.queue)
		if !ok {
			return
		}
		batch := []*command{first}
		size := len(first.Args)
	more:
		for len(batch) < maxBatchCommands && size < maxBatchBytes {
			select {
			case c := <-v.queue:
				batch = append(batch, c)
				size += len(c.Args)
			default:
				break more
			}
		}
		b := Batch{V: BatchVersion, Commands: make([]Command, len(batch))}
		for i, c := range batch {
			v.lastAt = max(time.Now().UnixNano(), v.lastAt) // never backwards
			c.At = v.lastAt
			if c.op.Entropy > 0 {
				c.Rand = make([]byte, c.op.Entropy)
				rand.Read(c.Rand)
			}
			b.Commands[i] = c.Command
		}
		raw, err := remote.Marshal(b)
		if err != nil {
			for _, c := range batch {
				c.resp = unavailable(err)
				close(c.done)
			}
			v.fail(seq, err)
			return
		}
		ab := appendedBatch{seq: seq, cmds: batch, raw: raw, journaled: make(chan error, 1)}
		toApply <- ab
		toAppend <- ab
		seq++
	}
}

// appendLoop appends the batches to the journal in order, one at a time.
// After a failed append it appends nothing more: every later batch gets
// the same error.
func (v *vcluster) appendLoop(slots chan<- struct{}, toAppend <-chan appendedBatch) {
	defer v.loops.Done()
	var failErr error
	for b := range toAppend {
		start := time.Now()
		err := failErr
		if err == nil {
			err = v.checkLease()
		}
		if err == nil {
			if h := testHooks.Load(); h != nil {
				err = h.before(v.name)
			}
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), min(appendTimeout, v.leaseLeft()))
			err = v.journal.Append(ctx, v.name, v.epoch, b.seq, b.raw)
			cancel()
		}
		switch {
		case err != nil && failErr == nil:
			failErr = err
			v.fail(b.seq, err) // before the committer answers: callers then see failErr
		case err == nil:
			v.stats.appendNanos.Add(int64(time.Since(start)))
			v.stats.batches.Add(1)
			v.stats.commands.Add(int64(len(b.cmds)))
			if n := int64(len(b.cmds)); n > v.stats.maxBatch.Load() {
				v.stats.maxBatch.Store(n)
			}
			if v.backup != nil {
				v.backup.appended(journal.Entry{Seq: b.seq, Batch: b.raw})
			}
		}
		b.journaled <- err
		slots <- struct{}{} // the batch's slot back
	}
}

// fail stops the vcluster's serving after the journal refused batch seq
// (or it could not be encoded): queued commands are answered
// unavailable, and so are those of the batch and of every batch after
// it (commitLoop).
func (v *vcluster) fail(seq int64, err error) {
	v.log.Error("journal append failed: the virtual cluster stops serving", "seq", seq, "err", err)
	v.failErr = err
	close(v.failed)
	v.drainQueue(unavailable(err))
	if v.onFail != nil {
		go v.onFail(v, err)
	}
}

// drainQueue answers every queued command with resp, until stop.
func (v *vcluster) drainQueue(resp remote.Response) {
	for {
		select {
		case c := <-v.queue:
			c.resp = resp
			close(c.done)
		default:
			return
		}
	}
}

// testHooks are set by tests alone (export_test.go); nil otherwise.
var testHooks atomic.Pointer[appendHooks]

// appendHooks are called around journal appends: before runs before
// each (its error fails the append), applied when a batch's transaction
// is prepared, awaiting when a batch applied waits for its appends.
type appendHooks struct {
	before   func(vcluster string) error
	applied  func(vcluster string)
	awaiting func(vcluster string)
}

// applyLoop applies the batches in order, each in a transaction of the
// state prepared on the one before (embedded.Store.BatchPrepare), and
// hands them to commitLoop. Between batches it opens the snapshots the
// backup asks for (of the committed state), so that a snapshot always
// holds whole batches.
func (v *vcluster) applyLoop(wants chan<- struct{}, toApply <-chan appendedBatch, commits chan<- pendingBatch) {
	defer v.loops.Done()
	defer close(commits)
	for {
		select {
		case wants <- struct{}{}:
		default:
		}
		var b appendedBatch
		var ok bool
		select {
		case b, ok = <-toApply:
			if !ok {
				return
			}
		case reply := <-v.snapReq:
			sn, err := v.store.BeginSnapshot()
			if err != nil {
				v.log.Warn("opening a snapshot failed", "err", err)
			}
			reply <- sn // nil after an error
			continue
		}
		// The batches cut meanwhile join it: one transaction of the
		// state for all (the answers are the same), recording the last
		// one's sequence number, committed once all are journaled.
		waits := []chan error{b.journaled}
	join:
		for len(b.cmds) < maxBatchCommands {
			select {
			case next, ok := <-toApply:
				if !ok {
					break join // applied first; the loop then ends
				}
				b.seq, b.cmds = next.seq, append(b.cmds, next.cmds...)
				waits = append(waits, next.journaled)
			default:
				break join
			}
		}
		start := time.Now()
		v.stats.applies.Add(1)
		v.stampApplied(b.cmds)
		prepared, err := v.store.BatchPrepare(func(ctx context.Context) error { return v.applyAll(ctx, b.seq, b.cmds) })
		if err == nil {
			if h := testHooks.Load(); h != nil {
				h.applied(v.name)
			}
			commits <- pendingBatch{prepared: prepared, cmds: b.cmds, waits: waits, pushes: v.takePushes(), start: start}
			continue
		}
		// A command failed inside the batch's transaction (or it began
		// on a batch rolled back since): once every batch before it is
		// committed and the journal holds it, its commands are applied
		// one by one, each a transaction committed at once.
		barrier := make(chan struct{})
		commits <- pendingBatch{barrier: barrier}
		<-barrier
		if appendErr := awaitAppends(waits); appendErr == nil {
			v.applyOneByOne(b.seq, b.cmds, err)
		} else {
			for _, c := range b.cmds {
				c.resp = unavailable(appendErr)
			}
			v.pushes = v.pushes[:0]
		}
		v.finish(b.cmds, v.takePushes(), start)
	}
}

// commitLoop commits the prepared batches in order, each once the
// journal holds it, and answers their callers. After a failed append it
// rolls back that batch and every one after it.
func (v *vcluster) commitLoop(commits <-chan pendingBatch) {
	defer v.loops.Done()
	var failErr error
	for p := range commits {
		if p.barrier != nil {
			close(p.barrier)
			continue
		}
		if h := testHooks.Load(); h != nil {
			h.awaiting(v.name)
		}
		err := failErr
		if err == nil {
			err = awaitAppends(p.waits)
		}
		if err == nil {
			err = p.prepared.Commit()
		}
		if err != nil {
			p.prepared.Rollback()
			failErr = err
			for _, c := range p.cmds {
				c.resp = unavailable(err)
			}
			p.pushes = nil
		}
		v.finish(p.cmds, p.pushes, p.start)
	}
}

// awaitAppends waits for the appends of batches cut one after another,
// in order: the first error, if any (none follows a failed append).
func awaitAppends(waits []chan error) error {
	for _, w := range waits {
		if err := <-w; err != nil {
			return err
		}
	}
	return nil
}

// finish pushes a visible (or failed) batch's notices and answers its
// callers.
func (v *vcluster) finish(cmds []*command, pushes []push, start time.Time) {
	v.pushNotices(pushes)
	for _, c := range cmds {
		close(c.done)
	}
	v.stats.applyNanos.Add(int64(time.Since(start)))
}

// onCommit and onTopics hear the state's notices, on the applier's
// goroutine: the command being applied gets them in its response, every
// other session of the vcluster as pushed frames once the batch is
// visible (applyBatch).
func (v *vcluster) onCommit(n metastore.CommitNotice) {
	v.noticed(remote.KindCommitNotice, n, func(r *remote.Response) { r.Commits = append(r.Commits, n) })
}

func (v *vcluster) onTopics(n metastore.TopicNotice) {
	v.noticed(remote.KindTopicNotice, n, func(r *remote.Response) { r.Topics = append(r.Topics, n) })
}

func (v *vcluster) noticed(kind byte, n any, add func(*remote.Response)) {
	var origin *session
	if c := v.current; c != nil {
		add(&c.resp)
		origin = c.origin
	}
	v.pushes = append(v.pushes, push{origin: origin, kind: kind, notice: n})
}

// push is a notice waiting for its batch to be visible.
type push struct {
	origin *session // not sent to the session that caused it
	kind   byte
	notice any
}

func (v *vcluster) sessionList() []*session {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]*session, 0, len(v.sessions))
	for s := range v.sessions {
		out = append(out, s)
	}
	return out
}

func (v *vcluster) addSession(s *session) {
	v.mu.Lock()
	v.sessions[s] = true
	v.mu.Unlock()
}

func (v *vcluster) removeSession(s *session) {
	v.mu.Lock()
	delete(v.sessions, s)
	v.mu.Unlock()
	v.sched.leave(s)
}

// close stops the loops (queued commands fail), ends the sessions and
// removes the state. It does not release the lease (release does).
func (v *vcluster) close() {
	v.stopOnce.Do(func() {
		close(v.stop)
		v.loops.Wait()
		<-v.renewDone
		if v.backupDone != nil {
			<-v.backupDone
		}
		v.log.Info("virtual cluster closed", "stats", v.statsNow())
		for _, s := range v.sessionList() {
			s.close()
		}
		v.closeStore()
	})
}

func (v *vcluster) closeStore() {
	for _, stop := range v.stopWatch {
		stop()
	}
	v.store.Close()
	os.RemoveAll(v.dir)
}

// Lease timing, as fractions of the TTL: the leader renews every fifth of
// it, and stops serving once a fifth of it is left since the last renewal
// it sent that succeeded (leaseMargin), so that it has stopped before the
// database's clock expires the lease even if this process's clock ran 20%
// slower than the database's meanwhile. The deadline is measured from
// when the renewal was sent, on the monotonic clock: the database stamps
// the expiry after it received the request, so the offset between the
// clocks does not matter, only their rates.
func leaseMargin(ttl time.Duration) time.Duration { return ttl / 5 }

func renewInterval(ttl time.Duration) time.Duration { return ttl / 5 }

// errLeaseLost reports a vcluster whose leader could not renew its lease
// in time: it stopped serving, and another process may take it.
var errLeaseLost = errors.New("leader lease not renewed in time")

func (v *vcluster) sinceBase() int64 { return int64(time.Since(v.leaseBase)) }

// leaseLeft is how long the vcluster may still serve (≤ 0: no more).
func (v *vcluster) leaseLeft() time.Duration {
	return time.Duration(v.leaseUntil.Load() - v.sinceBase())
}

// checkLease fails once the vcluster must no longer serve.
func (v *vcluster) checkLease() error {
	if v.leaseLeft() <= 0 {
		v.lose(errLeaseLost)
		return fmt.Errorf("%w: %s epoch %d", errLeaseLost, v.name, v.epoch)
	}
	return nil
}

// lose tells the server, once, that the vcluster lost its lease.
func (v *vcluster) lose(err error) {
	v.leaseLost.Store(true)
	v.lostOnce.Do(func() {
		v.log.Error("virtual cluster stops serving: lease lost", "epoch", v.epoch, "err", err)
		if v.onFail != nil {
			go v.onFail(v, err)
		}
	})
}

// renewLoop renews the lease until close, or until renewing fails in a
// way that means it is lost.
func (v *vcluster) renewLoop() {
	defer close(v.renewDone)
	t := time.NewTicker(renewInterval(v.ttl))
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
		if v.checkLease() != nil {
			return
		}
		sent := v.sinceBase()
		ctx, cancel := context.WithTimeout(context.Background(), v.leaseLeft())
		err := v.journal.RenewLease(ctx, v.name, v.epoch, v.ttl)
		cancel()
		switch {
		case err == nil:
			v.leaseUntil.Store(sent + int64(v.ttl-leaseMargin(v.ttl)))
		case errors.Is(err, journal.ErrFenced):
			v.lose(err)
			return
		default:
			v.log.Warn("lease renewal failed; retrying", "err", err, "left", v.leaseLeft())
		}
	}
}

// release gives the lease up after close, so that another process can
// take the vcluster at once.
func (v *vcluster) release(ctx context.Context) {
	if err := v.journal.ReleaseLease(ctx, v.name, v.epoch); err != nil {
		v.log.Warn("releasing the lease failed; it expires by itself", "err", err)
	}
}
