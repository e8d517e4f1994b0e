package metastore

import "sync"

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
}

// CommitWatcher delivers a CommitNotice for every commit, made through
// any agent, to every watcher. Agents use it to drop cached extents and
// wake long-polling fetches, so end-to-end latency does not depend on a
// polling interval. Notices for commits by other processes may arrive
// late or, if the backend loses its notification channel, be coalesced,
// but never precede the commit they announce.
type CommitWatcher interface {
	// WatchCommits calls fn after each commit until stop is called. fn
	// must be quick and must not call back into the store.
	WatchCommits(fn func(CommitNotice)) (stop func())
}

// Watchers is a CommitWatcher for backends to embed: they call Notify
// after each commit.
type Watchers struct {
	mu   sync.RWMutex
	next int
	fns  map[int]func(CommitNotice)
}

// WatchCommits implements CommitWatcher.
func (w *Watchers) WatchCommits(fn func(CommitNotice)) (stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(CommitNotice){}
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns, id)
	}
}

// Notify calls every watcher with n.
func (w *Watchers) Notify(n CommitNotice) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, fn := range w.fns {
		fn(n)
	}
}

// NoticeFor lists the distinct partitions of a commit's accepted batches;
// the list is empty but not nil when none was accepted.
func NoticeFor(c SegmentCommit, results []BatchResult) CommitNotice {
	seen := map[TopicPartition]bool{}
	n := CommitNotice{Partitions: []TopicPartition{}}
	for i, b := range c.Batches {
		if i < len(results) && results[i].Err != nil {
			continue
		}
		tp := TopicPartition{TopicID: b.TopicID, Partition: b.Partition}
		if !seen[tp] {
			seen[tp] = true
			n.Partitions = append(n.Partitions, tp)
		}
	}
	return n
}
