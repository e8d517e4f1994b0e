package metastore

import (
	"slices"
	"sync"
	"sync/atomic"
)

// CommitNotice tells that a commit made new offsets visible in these
// partitions. It carries no data: readers re-read what they need.
//
// A nil Partitions means "everything": any partition may have changed, so
// a watcher must treat every partition as touched (drop all cached
// extents, wake every waiting fetch). Backends send it when they may have
// missed notices, e.g. after the PostgreSQL store's listener reconnects,
// or when a notice is too large to send. A notice for a commit is never
// nil (NoticeFor returns an empty, non-nil list for a commit that wrote
// nothing), so nil is never ambiguous.
type CommitNotice struct {
	Partitions []TopicPartition
	// Seen, when it holds one value for each of Partitions, comes from a
	// poll rather than a commit (the PostgreSQL store's lost-notice poll,
	// which cannot tell whether a notice already covered what it found):
	// each partition's high watermark plus log start offset as the poll
	// read them. Both only grow, so a watcher whose view of a partition
	// has that sum is up to date with it and need not re-read it; a
	// watcher may also ignore Seen and re-read. It stays in the process
	// that polled: no codec carries it.
	Seen []int64 `cbor:"-" json:"-"`
}

// SeenAt returns the sum Seen holds for the i-th partition, and whether
// it holds one (Seen is one per partition).
func (n CommitNotice) SeenAt(i int) (int64, bool) {
	if len(n.Seen) != len(n.Partitions) || i < 0 || i >= len(n.Seen) {
		return 0, false
	}
	return n.Seen[i], true
}

// CommitWatcher delivers a CommitNotice for every commit, made through
// any agent, to every watcher. Agents use it to drop cached extents and
// wake long-polling fetches, so end-to-end latency does not depend on a
// polling interval. Notices for commits by other processes may arrive
// late or, if the backend loses its notification channel, be coalesced,
// but never precede the commit they announce.
type CommitWatcher interface {
	// WatchCommits calls fn after each commit until stop is called.
	//
	// fn runs on the goroutine that made or received the commit, which
	// waits for it, so it must be quick; it holds no lock of the store,
	// so it may take its own locks, read from the store, and call
	// WatchCommits or a stop function (its own included). It must not
	// write to the store. Commits made concurrently announce themselves
	// concurrently: fn may run on several goroutines at once, and only
	// the notices of one goroutine reach it in order. A notice says only
	// "re-read these partitions", so order among concurrent ones does not
	// matter.
	//
	// After stop returns, no notice that is announced later reaches fn;
	// a delivery already under way may still be running.
	WatchCommits(fn func(CommitNotice)) (stop func())
}

// NoticeRelay is a store, shared by several agents, whose agents can
// carry the notices of its commits to each other (internal/peernotice)
// instead of the store fanning each one out to all of them.
type NoticeRelay interface {
	// RelayNotices hands the notices of this store's segment commits to
	// relay (nil: none) before the store would send them itself. relay
	// reports whether it reaches every other agent; if it does not, the
	// store sends the notice too.
	RelayNotices(relay func(CommitNotice) bool)
	// HearRelayed delivers to this store's watchers a notice another
	// agent relayed.
	HearRelayed(CommitNotice)
}

// Watchers is a CommitWatcher for backends to embed: they call Notify
// after each commit, outside any lock and transaction of theirs.
//
// The list of watchers is copied on write (watchList): no callback ever
// runs under its lock (docs/locking.md).
type Watchers struct {
	list watchList[CommitNotice]
}

// WatchCommits implements CommitWatcher.
func (w *Watchers) WatchCommits(fn func(CommitNotice)) (stop func()) { return w.list.add(fn) }

// Notify calls every watcher with n, on the calling goroutine, with no
// lock held.
func (w *Watchers) Notify(n CommitNotice) { w.list.notify(n) }

// watchList is the list of callbacks behind Watchers and TopicWatchers.
// mu guards only the list, which is copied on write: notify takes it
// under mu and calls the callbacks after releasing it.
type watchList[N any] struct {
	mu   sync.Mutex
	list []*watchFn[N] // never modified in place; replaced on every change
}

type watchFn[N any] struct {
	fn      func(N)
	stopped atomic.Bool // set by stop, for deliveries that took the list before it
}

func (w *watchList[N]) add(fn func(N)) (stop func()) {
	wt := &watchFn[N]{fn: fn}
	w.mu.Lock()
	w.list = append(slices.Clip(w.list), wt)
	w.mu.Unlock()
	return func() {
		wt.stopped.Store(true)
		w.mu.Lock()
		defer w.mu.Unlock()
		if i := slices.Index(w.list, wt); i >= 0 {
			w.list = slices.Delete(slices.Clone(w.list), i, i+1)
		}
	}
}

func (w *watchList[N]) notify(n N) {
	w.mu.Lock()
	list := w.list
	w.mu.Unlock()
	for _, wt := range list {
		if !wt.stopped.Load() {
			wt.fn(n)
		}
	}
}

// NoticeFor lists the distinct partitions of a commit's accepted batches;
// the list is empty but not nil when none was accepted.
func NoticeFor(c SegmentCommit, results []BatchResult) CommitNotice {
	return NoticeForGroup([]SegmentCommit{c}, [][]BatchResult{results})
}

// NoticeForGroup is NoticeFor of segments committed together
// (GroupSequencer): one notice of all their partitions.
func NoticeForGroup(cs []SegmentCommit, results [][]BatchResult) CommitNotice {
	seen := map[TopicPartition]bool{}
	n := CommitNotice{Partitions: []TopicPartition{}}
	for k, c := range cs {
		var res []BatchResult
		if k < len(results) {
			res = results[k]
		}
		for i, b := range c.Batches {
			if i < len(res) && res[i].Err != nil {
				continue
			}
			tp := TopicPartition{TopicID: b.TopicID, Partition: b.Partition}
			if !seen[tp] {
				seen[tp] = true
				n.Partitions = append(n.Partitions, tp)
			}
		}
	}
	return n
}
