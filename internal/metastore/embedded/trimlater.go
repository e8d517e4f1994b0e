package embedded

import (
	"sync"

	"github.com/floe-io/floe/internal/kv"
)

// Trimming the extent log after the commit. On file, a commit that trims
// the log (extentlog.go) folds about as many extents as it appends: at
// 1,500 partitions of 10,000 that was half of its time and of its page
// writes (docs/benchmarks.md). A store on file therefore leaves the trim
// to a goroutine of its own (laterTrimmer), which folds in transactions
// of its own between commits, where an agent committing a segment every
// 250 ms leaves the file idle nearly all the time:
//
//   - a commit trims only past twice the limits (laterLimits.backstop),
//     as before, about its own size a commit: the log stays bounded
//     however far behind the goroutine falls;
//   - past the limits and a round of an eighth of them
//     (laterLimits.wakeAt), a commit wakes the goroutine, which trims
//     down to the limits, a budget's worth of extents a transaction
//     (trim's), so that a commit arriving meanwhile waits for one
//     transaction at most, not for the whole round.
//
// The reads' bounds (a partition's pending entries are in at most the
// log's records) are the backstop's. A store in memory and a Batch (the
// control plane's) trim in the transaction, as before: their log costs
// no page writes. The work is the same as in the commits (the same pages
// in BenchmarkCommitSegment, whose commits follow each other without a
// pause); the goroutine's transactions add an fsync each.

// laterLimits are what a commit of a store trimming later trims to, and
// when it wakes the goroutine, which trims to the limits themselves.
type laterLimits struct {
	backstop foldLimits // trimmed in the commit's transaction
	wakeAt   foldLimits // past them and their round: wake the goroutine
}

func laterLimitsOf(l foldLimits) *laterLimits {
	return &laterLimits{
		backstop: foldLimits{records: 2 * l.records, extents: 2 * l.extents, budget: l.budget},
		wakeAt:   foldLimits{records: l.records, extents: l.extents, roundRecords: max(l.records/8, 1), roundExtents: max(l.extents/8, 1)},
	}
}

// maxLaterTrims bounds the transactions one wake-up runs: a trim of the
// goroutine moves at least minFoldBudget extents or removes a record,
// and a round is an eighth of the limits.
const maxLaterTrims = 64

// laterTrimmer is the goroutine that trims a store's extent log.
type laterTrimmer struct {
	wake chan struct{} // capacity 1: wake-ups merge
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func (s *Store) startLaterTrimmer() {
	t := &laterTrimmer{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.later = t
	go s.runLaterTrims(t)
}

// wakeLaterTrimmer asks the goroutine to trim; it never blocks.
func (s *Store) wakeLaterTrimmer() {
	select {
	case s.later.wake <- struct{}{}:
	default:
	}
}

// stopLaterTrimmer stops the goroutine and waits for its transaction in
// progress, if any.
func (s *Store) stopLaterTrimmer() {
	if s.later == nil {
		return
	}
	s.later.once.Do(func() { close(s.later.stop) })
	<-s.later.done
}

func (s *Store) runLaterTrims(t *laterTrimmer) {
	defer close(t.done)
	for {
		select {
		case <-t.stop:
			return
		case <-t.wake:
		}
		for range maxLaterTrims {
			select {
			case <-t.stop:
				return
			default:
			}
			more, err := s.trimLater()
			if err != nil {
				// The next commits trim past the backstop, in their
				// own transactions, and fail with the error if it
				// stays.
				s.log.Warn("metadata store: trimming the extent log failed", "err", err)
				break
			}
			if !more {
				break
			}
		}
	}
}

// trimLater runs one trim of the goroutine, in a transaction of its own,
// and reports whether the log is still past the limits.
func (s *Store) trimLater() (more bool, err error) {
	err = s.db.Update(func(tx kv.Tx) error {
		held := s.newHeldStates()
		records, entries, err := held.folder(tx).trim(held.limits)
		if err != nil {
			return err
		}
		more = held.limits.over(records, entries)
		return held.write(tx)
	})
	return more, closedErr(err)
}
