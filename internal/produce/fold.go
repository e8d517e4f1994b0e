package produce

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/floe-io/floe/internal/metastore"
)

// Folding commits.
//
// Commits go in flush order: a flush whose object is uploaded waits for
// the previous flush's commit (the commit chain). Under load several
// uploaded segments wait so while one commit runs, each for a transaction
// of its own in the metadata store, which is then what limits the agent
// and, with many agents, the database. So the flush whose turn it is
// commits the uploaded segments queued behind it with its own, in one
// transaction, when the store can (metastore.GroupSequencer): the store
// runs one transaction instead of several, and the segments behind are
// answered when it ends instead of one transaction later each. Nothing
// waits for a group to form: a segment is folded only if it was uploaded
// when the flush before it took its turn.
//
// Order is kept: a group is the chain's next uploaded segments,
// consecutive, and the store decides their batches in that order, as if
// each were committed after the one before. A group commits or fails as a
// whole, and each of its segments then goes on as if its own commit had
// given the group's answer, in chain order (so a group the store could
// not reach is queued in order by the outage mode, outage.go).

// maxFold bounds the segments of one commit. The flush slots
// (Options.MaxInflightFlushes) bound it already; this keeps a large slot
// setting from making one transaction of unbounded size.
const maxFold = 16

// link is one flush's place on the commit chain.
type link struct {
	prev <-chan struct{} // closed when the flush before has committed (or failed)
	mine chan struct{}   // closed when this one has

	// Guarded by commitChain.mu.
	next    *link                    // the flush started after this one
	commit  *metastore.SegmentCommit // set once uploaded, while it waits for its turn
	taken   bool                     // committed in an earlier flush's transaction
	results []metastore.BatchResult  // when taken: its results, or
	err     error                    // the group's error
}

// commitChain orders the flushes' commits and hands the uploaded ones
// queued behind a flush to it.
type commitChain struct {
	mu   sync.Mutex
	last *link
}

func newCommitChain() *commitChain {
	first := &link{mine: make(chan struct{})}
	close(first.mine)
	return &commitChain{last: first}
}

// add appends the next flush's link.
func (c *commitChain) add() *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := &link{prev: c.last.mine, mine: make(chan struct{})}
	c.last.next = l
	c.last = l
	return l
}

// uploaded offers l's commit to the flush before it, which may commit it
// with its own.
func (c *commitChain) uploaded(l *link, commit metastore.SegmentCommit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l.commit = &commit
}

// takenOutcome reports whether l was committed with an earlier flush's
// transaction and, if so, how. Called once l's turn has come (l.prev
// closed), when nobody can take it any more.
func (c *commitChain) takenOutcome(l *link) (taken bool, results []metastore.BatchResult, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return l.taken, l.results, l.err
}

// take hands l, whose turn it is, the uploaded links queued right behind
// it, at most max, as long as fits takes each.
func (c *commitChain) take(l *link, max int, fits func(*metastore.SegmentCommit) bool) []*link {
	c.mu.Lock()
	defer c.mu.Unlock()
	var group []*link
	for n := l.next; n != nil && n.commit != nil && len(group) < max && fits(n.commit); n = n.next {
		n.taken = true
		group = append(group, n)
	}
	return group
}

// maxGroupSpread bounds a group's partitions: at most this many times
// those of its first segment. A store locks every partition of a group
// for the whole commit; a group spread over many more partitions than one
// segment holds more locks while it waits for other agents' commits,
// which then wait for it. On PostgreSQL, 50 agents whose segments each
// touch 10 random partitions of 1,000 gained a quarter in groups of about
// two segments and lost a third, with commits of seconds at the p99, in
// groups of three or four (docs/benchmarks.md). An agent's consecutive
// segments mostly touch the same partitions (its producers'), and so
// group freely.
const maxGroupSpread = 2

// GroupFits returns the test a group's next segments must pass after
// first: the group's distinct partitions stay within maxGroupSpread times
// first's. The test keeps the partitions of the segments it passed; it is
// not safe for concurrent use. (floe bench metastore models groups with
// it.)
func GroupFits(first metastore.SegmentCommit) func(*metastore.SegmentCommit) bool {
	var (
		parts map[metastore.TopicPartition]struct{}
		limit int
		fresh = map[metastore.TopicPartition]struct{}{}
	)
	return func(c *metastore.SegmentCommit) bool {
		if parts == nil { // built at the first segment queued, if any
			parts = make(map[metastore.TopicPartition]struct{}, len(first.Batches))
			for _, b := range first.Batches {
				parts[metastore.TopicPartition{TopicID: b.TopicID, Partition: b.Partition}] = struct{}{}
			}
			limit = maxGroupSpread * len(parts)
		}
		clear(fresh)
		for _, b := range c.Batches {
			tp := metastore.TopicPartition{TopicID: b.TopicID, Partition: b.Partition}
			if _, ok := parts[tp]; ok {
				continue
			}
			fresh[tp] = struct{}{}
			if len(parts)+len(fresh) > limit {
				return false
			}
		}
		for tp := range fresh {
			parts[tp] = struct{}{}
		}
		return true
	}
}

// untake gives links taken back: they commit on their own when their
// turn comes.
func (c *commitChain) untake(taken []*link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range taken {
		n.taken = false
	}
}

// settle records the group's outcome for each of the links taken.
func (c *commitChain) settle(taken []*link, results [][]metastore.BatchResult, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range taken {
		if err != nil {
			n.err = err
		} else {
			n.results = results[i+1]
		}
	}
}

// commitTurn commits l's segment, with the uploaded ones queued behind it
// when the store commits groups, and returns l's results.
func (w *Writer) commitTurn(ctx context.Context, l *link, commit metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	gs, ok := w.store.(metastore.GroupSequencer)
	if !ok || w.opts.DisableCommitGroups {
		return w.store.CommitSegment(ctx, commit)
	}
	taken := w.chain.take(l, min(maxFold, w.opts.MaxInflightFlushes)-1, GroupFits(commit))
	if len(taken) == 0 {
		w.m.commitGroup.Observe(1)
		return w.store.CommitSegment(ctx, commit)
	}
	cs := make([]metastore.SegmentCommit, 0, 1+len(taken))
	cs = append(cs, commit)
	for _, n := range taken {
		cs = append(cs, *n.commit)
	}
	results, err := gs.CommitSegments(ctx, cs)
	if errors.Is(err, metastore.ErrGroupsUnsupported) {
		// Nothing committed: each goes alone, as before groups.
		w.chain.untake(taken)
		w.m.commitGroup.Observe(1)
		return w.store.CommitSegment(ctx, commit)
	}
	w.m.commitGroup.Observe(float64(len(cs)))
	if err == nil && len(results) != len(cs) {
		err = fmt.Errorf("the store answered %d segments of %d", len(results), len(cs))
	}
	w.chain.settle(taken, results, err)
	if err != nil {
		return nil, err
	}
	return results[0], nil
}
