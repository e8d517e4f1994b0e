package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/journal"
)

// Warm standbys (docs/control-plane.md): a process that does not lead a
// vcluster keeps a state of it anyway, built as an open builds it but
// without the lease, and tails the journal into it, so that when the
// lease becomes free it takes it and replays only the rows appended since
// its last poll instead of the whole journal. A standby serves nothing:
// agents asking it are told it does not lead.

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

	mu       sync.Mutex // held by each poll, by promote and by close
	seq      int64      // the state's applied sequence number
	caughtUp bool       // reached the journal's end once: maxLag applies from then on
	failures int        // polls in a row that failed to read the journal
	dropped  error      // why the state was dropped (nil: usable)
	done     bool       // promoted or closed: v is no longer the standby's

	paused   atomic.Bool // tests: polls do nothing
	stopOnce sync.Once
	stop     chan struct{}
	loopDone chan struct{}
}

// openStandby builds a standby's state from the journal (every row, as
// an open without a bucket does; the first polls apply them) and starts
// tailing it every interval. It takes no lease.
func openStandby(ctx context.Context, name string, j *journal.Journal, dir string, ttl, interval time.Duration, maxLag int64, onFail func(*vcluster, error), log *slog.Logger) (*standby, error) {
	v, err := newVCluster(name, j, dir, ttl, onFail, log)
	if err != nil {
		return nil, err
	}
	seq, err := v.loadState(ctx, nil, 0)
	if err != nil {
		if v.store != nil {
			v.closeStore()
		} else {
			os.RemoveAll(v.dir)
		}
		return nil, err
	}
	sb := &standby{v: v, interval: interval, maxLag: maxLag, log: v.log, seq: seq, stop: make(chan struct{}), loopDone: make(chan struct{})}
	go sb.tailLoop()
	v.log.Info("warm standby started", "interval", interval)
	return sb, nil
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
// rows remain to apply at once.
func (sb *standby) poll(ctx context.Context) (ok, more bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.done || sb.dropped != nil {
		return false, false
	}
	prev := sb.seq
	seq, _, err := sb.v.readAfter(ctx, sb.seq, standbyPollRows)
	sb.seq = seq
	if errors.Is(err, errBadRow) || (err != nil && sb.failures+1 >= standbyMaxFailures) {
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
		return true, false
	}
	// A full poll: how far behind is it?
	last, err := sb.v.journal.LastSeq(ctx, sb.v.name)
	if err != nil {
		return true, true
	}
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
