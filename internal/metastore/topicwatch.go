package metastore

// TopicNotice tells that topics were created, deleted, given partitions or
// reconfigured: Names lists them. It carries no data: a watcher re-reads
// what it caches.
//
// A nil Names means "any topic may have changed": a watcher must re-read
// every topic. Backends send it when they may have missed notices (the
// PostgreSQL listener reconnected, or a database without LISTEN/NOTIFY is
// polled and something moved). A notice for a change is never nil.
type TopicNotice struct {
	Names []string
}

// TopicWatcher delivers a TopicNotice for every change to a topic, made
// through any agent, to every watcher, so that agents can cache topics
// instead of reading them per request (internal/topiccache). A change made
// through this store is announced before the call that made it returns; a
// change made by another process is announced when the backend hears of
// it (LISTEN/NOTIFY: at once; polling: within the poll interval), never
// before it is committed.
type TopicWatcher interface {
	// WatchTopics calls fn after each topic change until stop is called,
	// with the rules of CommitWatcher.WatchCommits: fn runs on the
	// goroutine that made or received the change, holds no lock of the
	// store, may read from the store, must not write to it, and may run
	// on several goroutines at once.
	WatchTopics(fn func(TopicNotice)) (stop func())
}

// TopicWatchers is a TopicWatcher for backends to embed: they call
// NotifyTopics after each topic change, outside any lock and transaction
// of theirs. Like Watchers, the list is copied on write and no callback
// runs under its lock.
type TopicWatchers struct {
	list watchList[TopicNotice]
}

// WatchTopics implements TopicWatcher.
func (w *TopicWatchers) WatchTopics(fn func(TopicNotice)) (stop func()) { return w.list.add(fn) }

// NotifyTopics calls every watcher with n, on the calling goroutine, with
// no lock held.
func (w *TopicWatchers) NotifyTopics(n TopicNotice) { w.list.notify(n) }
