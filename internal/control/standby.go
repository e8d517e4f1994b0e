package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/journal"
)

// Warm standbys (docs/control-plane.md): a process that does not lead a
// vcluster keeps a state of it anyway, built as an open builds it but
// without the lease (from the newest snapshot in the bucket, with one),
// and tails the journal into it, so that when the lease becomes free it
// takes it and replays only the rows appended since its last poll
// instead of the whole journal. A standby serves nothing: agents asking
// it are told it does not lead. With a bucket, it uploads nothing
// either; the takeover learns where the old leader's backups stand from
// the bucket's listing (backupState.adopt) and continues them.

// Defaults of Options.StandbyInterval and Options.StandbyMaxLag.
const (
	DefaultStandbyInterval = 200 * time.Millisecond
	DefaultStandbyMaxLag   = 100_000
	// standbyMaxFailures: a standby that fails to read the journal that
	// many polls in a row drops its state.
	standbyMaxFailures = 50
)

// standbyPollRows bounds the rows one poll applies, so that a standby
// catching up from far behind does not hold its lock (and a takeover)
// for long. A variable for the tests.
var standbyPollRows int64 = 4096

// errStandbyDropped: the standby dropped its state (it fell too far
// behind, or failed to apply a row); the process opens the vcluster the
// ordinary way.
var errStandbyDropped = errors.New("warm standby dropped its state")

// standby is one vcluster's warm standby: a vcluster with a state but no
// lease, loops or sessions, and the loop tailing the journal into it.
type standby struct {
	v        *vcluster
	interval time.Duration
	maxLag   int64
	log      *slog.Logger
	// build makes a new state (restart, after the journal was trimmed
	// under it); backup is the server's bucket (nil: none).
	build  func(context.Context) (*vcluster, int64, error)
	backup *BackupOptions

	mu       sync.Mutex // held by each poll, by promote and by close
	seq      int64      // the state's applied sequence number
	caughtUp bool       // reached the journal's end once: maxLag applies from then on
	failures int        // polls in a row that failed to read the journal
	dropped  error      // why the state was dropped (nil: usable)
	done     bool       // promoted or closed: v is no longer the standby's
	// end is the journal's last batch as the last successful poll saw it
	// (its own last row after a poll that was not full), polled when.
	end      int64
	polled   time.Time
	restarts int64 // states rebuilt from a snapshot after a trim under it
	loaded   int64 // the snapshot its current state started from (0: none)

	paused   atomic.Bool // tests: polls do nothing
	stopOnce sync.Once
	stop     chan struct{}
	loopDone chan struct{}
}

// StandbyStats describe a warm standby (Server.Standby).
type StandbyStats struct {
	// Seq is the last batch its state applied; Behind how many batches
	// the journal held after it when it last polled (Polled).
	Seq, Behind int64
	Polled      time.Time
	// Snapshot is the batch of the snapshot its state was loaded from (0:
	// from the journal's start); Restarts counts the states it rebuilt
	// from the newest snapshot because the journal was trimmed past it.
	Snapshot, Restarts int64
	// StateKeys and StateBytes are what its state holds in memory
	// (Stats.StateKeys).
	StateKeys, StateBytes int64
}

// openStandby builds a standby's state as an open builds it (from the
// newest snapshot in the bucket that reads back whole, with backup, then
// the journal's rows, which the first polls apply) and starts tailing the
// journal every interval. It takes no lease.
func openStandby(ctx context.Context, name string, j *journal.Journal, dir string, ttl, interval time.Duration, maxLag int64, backup *BackupOptions, onFail func(*vcluster, error), log *slog.Logger) (*standby, error) {
	build := func(ctx context.Context) (*vcluster, int64, error) {
		return standbyState(ctx, name, j, dir, ttl, backup, onFail, log)
	}
	v, seq, err := build(ctx)
	if err != nil {
		return nil, err
	}
	sb := &standby{v: v, interval: interval, maxLag: maxLag, log: v.log, build: build, backup: backup,
		seq: seq, loaded: seq, stop: make(chan struct{}), loopDone: make(chan struct{})}
	go sb.tailLoop()
	v.log.Info("warm standby started", "interval", interval, "from_snapshot", seq)
	return sb, nil
}

// standbyState is a new standby state: a vcluster without a lease whose
// store holds the newest usable snapshot (backup set) or nothing, and
// that snapshot's batch.
func standbyState(ctx context.Context, name string, j *journal.Journal, dir string, ttl time.Duration, backup *BackupOptions, onFail func(*vcluster, error), log *slog.Logger) (*vcluster, int64, error) {
	v, err := newVCluster(name, j, dir, ttl, onFail, log)
	if err != nil {
		return nil, 0, err
	}
	// The bucket is not checked against the journal here: the leader
	// uploads what it appends, so a journal end read before the listing
	// may be behind it. The takeover checks, under the lease (adopt).
	seq, err := v.loadState(ctx, backup, math.MaxInt64)
	if err != nil {
		if v.store != nil {
			v.closeStore()
		} else {
			os.RemoveAll(v.dir)
		}
		return nil, 0, err
	}
	// A standby holds no batches for the bucket: the takeover adopts the
	// backups from the bucket's listing.
	v.backup = nil
	return v, seq, nil
}

func (sb *standby) tailLoop() {
	defer close(sb.loopDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sb.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(sb.interval)
	defer t.Stop()
	for {
		for more := true; more && !sb.paused.Load(); {
			var ok bool
			if ok, more = sb.poll(ctx); !ok {
				return
			}
		}
		select {
		case <-sb.stop:
			return
		case <-t.C:
		}
	}
}

// poll applies the rows appended since the last poll, at most
// standbyPollRows: one query when the standby keeps up. It reports ok
// false once the standby is done or dropped its state, more true if
// rows remain to apply at once. Rows deleted before it applied them (the
// leader trimmed the journal past its state) make it load the newest
// snapshot again.
func (sb *standby) poll(ctx context.Context) (ok, more bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.done || sb.dropped != nil {
		return false, false
	}
	prev := sb.seq
	seq, _, err := sb.v.readAfter(ctx, sb.seq, standbyPollRows)
	sb.seq = seq
	if errors.Is(err, journal.ErrGap) && seq == prev {
		err = sb.restart(ctx)
		if errors.Is(err, errBadRow) {
			sb.drop(err)
			return false, false
		}
		if err == nil {
			return true, true
		}
	}
	if errors.Is(err, errBadRow) || errors.Is(err, journal.ErrGap) || (err != nil && sb.failures+1 >= standbyMaxFailures) {
		sb.drop(err)
		return false, false
	}
	if err != nil {
		sb.failures++
		sb.log.Warn("warm standby: reading the journal failed; retrying", "seq", sb.seq, "err", err)
		return true, false
	}
	sb.failures = 0
	if seq-prev < standbyPollRows {
		sb.caughtUp = true
		sb.end, sb.polled = seq, time.Now()
		return true, false
	}
	// A full poll: how far behind is it?
	last, err := sb.v.journal.LastSeq(ctx, sb.v.name)
	if err != nil {
		return true, true
	}
	sb.end, sb.polled = max(last, seq), time.Now()
	if last <= seq {
		// It reached the end with a full poll: as caught up as a short
		// poll would have said.
		sb.caughtUp = true
	}
	if behind := last - seq; sb.caughtUp && behind > sb.maxLag {
		sb.drop(fmt.Errorf("%d batches behind the journal, over %d", behind, sb.maxLag))
		return false, false
	}
	return true, true
}

// restart replaces the state, whose next rows the journal no longer
// holds, by one loaded from the newest snapshot (the bucket's: the
// journal is trimmed only up to a snapshot there); under mu. A gap the
// registry's base does not explain fails with errBadRow (rows lost, not
// trimmed); other errors (the bucket, the journal) are retried.
func (sb *standby) restart(ctx context.Context) error {
	reg, err := sb.v.journal.VCluster(ctx, sb.v.name)
	if err != nil {
		return err
	}
	if reg.BaseSeq <= sb.seq || reg.ID != sb.v.id {
		return fmt.Errorf("%w: journal rows missing after #%d (trimmed up to #%d, incarnation %s, the state's %s)", errBadRow, sb.seq, reg.BaseSeq, reg.ID, sb.v.id)
	}
	sb.log.Info("warm standby: the journal was trimmed past its state; loading the newest snapshot", "seq", sb.seq, "trimmed_to", reg.BaseSeq)
	v, seq, err := sb.build(ctx)
	if err != nil {
		return err
	}
	old := sb.v
	sb.v, sb.seq, sb.loaded, sb.caughtUp = v, seq, seq, false
	sb.restarts++
	old.closeStore()
	sb.log.Info("warm standby restarted from a snapshot", "from_snapshot", seq, "restarts", sb.restarts)
	return nil
}

// drop removes the standby's state; under mu.
func (sb *standby) drop(err error) {
	sb.dropped = fmt.Errorf("%w: %v", errStandbyDropped, err)
	sb.log.Warn("warm standby drops its state; a takeover replays the journal", "seq", sb.seq, "err", err)
	sb.done = true
	sb.v.closeStore()
}

// promote takes the lease (if that fails, journal.ErrLeaseHeld or
// another error, the standby goes on standing by), then applies the rows appended after its state's last
// one, which the old leader may have appended after the last poll (the
// lease fences it from appending more), and starts serving. If that
// fails, the lease is released and the standby is done, its state
// removed.
func (sb *standby) promote(ctx context.Context, holder string) (*vcluster, error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.dropped != nil {
		return nil, sb.dropped
	}
	if sb.done {
		return nil, errStandbyDropped
	}
	v := sb.v
	if err := v.takeLease(ctx, holder); err != nil {
		return nil, err // held, or the journal failed: still standing by
	}
	start := time.Now()
	sb.done = true
	last, err := v.journal.LastSeq(ctx, v.name)
	if err != nil {
		return v.giveUp(err)
	}
	// The name may have been deleted and created again since the state
	// was loaded: a new incarnation, another journal.
	reg, err := v.journal.VCluster(ctx, v.name)
	if err == nil && reg.ID != v.id {
		err = fmt.Errorf("virtual cluster %s was deleted and created again (id %s, the standby's state is of %s)", v.name, reg.ID, v.id)
	}
	if err != nil {
		return v.giveUp(err)
	}
	switch {
	case reg.BaseSeq > sb.seq:
		err = fmt.Errorf("%w: the journal was trimmed up to #%d, past its state at #%d", errStandbyDropped, reg.BaseSeq, sb.seq)
	case sb.seq > last:
		err = fmt.Errorf("%w: its state holds #%d, the journal ends at #%d (the journal lost rows)", errStandbyDropped, sb.seq, last)
	}
	if err != nil {
		return v.giveUp(err)
	}
	if sb.backup != nil && sb.backup.Bucket != nil {
		// Continue the old leader's backups where the bucket stands.
		v.backup = newBackupState(sb.backup, reg)
		if err := v.backup.adopt(ctx, v.log, last, sb.seq); err != nil {
			return v.giveUp(err)
		}
	}
	v.stats.standbySeq.Store(sb.seq)
	v.stats.replayed.Store(0) // from here on: the rows this takeover replays
	if err := v.catchUp(ctx, sb.seq, last, start); err != nil {
		return v.giveUp(err)
	}
	return v, nil
}

// close stops tailing and removes the state, unless promoted.
func (sb *standby) close() {
	sb.stopOnce.Do(func() { close(sb.stop) })
	<-sb.loopDone
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.done {
		sb.done = true
		sb.v.closeStore()
	}
}

// status is the standby's applied sequence number, and whether it still
// has a state.
func (sb *standby) status() (int64, bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.seq, !sb.done
}

// stats describes the standby (ok false: it has no state).
func (sb *standby) stats() (StandbyStats, bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	st := StandbyStats{Seq: sb.seq, Behind: max(0, sb.end-sb.seq), Polled: sb.polled, Snapshot: sb.loaded, Restarts: sb.restarts}
	if sb.v != nil && sb.v.store != nil && !sb.done {
		st.StateKeys, st.StateBytes, _ = sb.v.store.StateSize()
	}
	return st, !sb.done
}
