package metastore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// A watcher may stop itself and start another watcher from inside its
// callback without deadlocking: no callback runs under the watcher
// list's lock.
func TestWatchersCallbackReentry(t *testing.T) {
	var w metastore.Watchers
	var (
		late  int
		stops []func()
	)
	var stop func()
	stop = w.WatchCommits(func(metastore.CommitNotice) {
		stop() // stops itself
		stops = append(stops, w.WatchCommits(func(metastore.CommitNotice) { late++ }))
	})
	within(t, "Notify, WatchCommits or stop called from a callback", func() {
		w.Notify(metastore.CommitNotice{}) // the first watcher stops itself, adds a second
		w.Notify(metastore.CommitNotice{}) // reaches only the second
	})
	if len(stops) != 1 {
		t.Fatalf("first watcher ran %d times, want 1 (it stopped itself)", len(stops))
	}
	if late != 1 {
		t.Errorf("second watcher ran %d times, want 1", late)
	}
	stops[0]()
	w.Notify(metastore.CommitNotice{})
	if late != 1 {
		t.Errorf("stopped watcher ran again")
	}
}

// The agent's watcher takes the extent cache's lock. A goroutine that
// holds that lock and starts a watcher must not wait for a callback that
// waits for the lock (under the old read lock, it did: a lock cycle).
func TestWatchersCallbackTakingCallersLock(t *testing.T) {
	var w metastore.Watchers
	var mu sync.Mutex // stands for the extent cache's lock
	entered := make(chan struct{}, 1)
	w.WatchCommits(func(metastore.CommitNotice) {
		select {
		case entered <- struct{}{}:
		default:
		}
		mu.Lock()
		mu.Unlock()
	})
	mu.Lock()
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		w.Notify(metastore.CommitNotice{})
	}()
	<-entered
	within(t, "WatchCommits while a callback waits for the caller's lock", func() {
		w.WatchCommits(func(metastore.CommitNotice) {})()
	})
	mu.Unlock()
	<-notified
}

// within fails the test if f has not returned after 10 seconds.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("deadlock: %s did not return", what)
	}
}

// A commit announced while a callback is slow is not held up by the
// watcher list: other goroutines can add and stop watchers meanwhile.
func TestWatchersSlowCallbackDoesNotBlockRegistration(t *testing.T) {
	var w metastore.Watchers
	release := make(chan struct{})
	entered := make(chan struct{})
	stop := w.WatchCommits(func(metastore.CommitNotice) {
		close(entered)
		<-release
	})
	defer stop()
	go w.Notify(metastore.CommitNotice{})
	<-entered
	within(t, "WatchCommits while a callback runs", func() {
		w.WatchCommits(func(metastore.CommitNotice) {})()
	})
	close(release)
}

// SeenAt answers only for a notice with one value per partition: a
// notice whose Seen does not match its partitions is a plain one.
func TestCommitNoticeSeenAt(t *testing.T) {
	tps := []metastore.TopicPartition{{Partition: 0}, {Partition: 1}}
	for _, tc := range []struct {
		name string
		n    metastore.CommitNotice
		i    int
		want int64
		ok   bool
	}{
		{"polled", metastore.CommitNotice{Partitions: tps, Seen: []int64{7, 9}}, 1, 9, true},
		{"a commit's", metastore.CommitNotice{Partitions: tps}, 0, 0, false},
		{"too few values", metastore.CommitNotice{Partitions: tps, Seen: []int64{7}}, 0, 0, false},
		{"too many values", metastore.CommitNotice{Partitions: tps[:1], Seen: []int64{7, 9}}, 0, 0, false},
		{"past the end", metastore.CommitNotice{Partitions: tps, Seen: []int64{7, 9}}, 2, 0, false},
		{"negative", metastore.CommitNotice{Partitions: tps, Seen: []int64{7, 9}}, -1, 0, false},
	} {
		if got, ok := tc.n.SeenAt(tc.i); got != tc.want || ok != tc.ok {
			t.Errorf("%s: SeenAt(%d) = %d, %v; want %d, %v", tc.name, tc.i, got, ok, tc.want, tc.ok)
		}
	}
}
