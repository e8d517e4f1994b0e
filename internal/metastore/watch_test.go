package metastore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// A watcher may stop itself, start another watcher and take a lock that
// a committer holds while it notifies, all from inside its callback,
// without deadlocking: no callback runs under the watcher list's lock.
func TestWatchersCallbackReentry(t *testing.T) {
	var w metastore.Watchers
	var (
		mu    sync.Mutex // stands for the extent cache's lock
		late  int
		stops []func()
	)
	var stop func()
	stop = w.WatchCommits(func(metastore.CommitNotice) {
		stop() // stops itself
		stops = append(stops, w.WatchCommits(func(metastore.CommitNotice) {
			mu.Lock()
			late++
			mu.Unlock()
		}))
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Notify(metastore.CommitNotice{}) // the first watcher stops itself, adds a second
		w.Notify(metastore.CommitNotice{}) // reaches only the second
		// Another goroutine changes the list while a callback waits for
		// a lock held by the notifier's caller.
		mu.Lock()
		other := make(chan struct{})
		go func() {
			defer close(other)
			w.WatchCommits(func(metastore.CommitNotice) {})()
		}()
		<-other
		mu.Unlock()
		w.Notify(metastore.CommitNotice{})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: Notify, WatchCommits or stop called from a callback did not return")
	}
	if len(stops) != 1 {
		t.Fatalf("first watcher ran %d times, want 1 (it stopped itself)", len(stops))
	}
	if late != 2 {
		t.Errorf("second watcher ran %d times, want 2", late)
	}
	stops[0]()
	w.Notify(metastore.CommitNotice{})
	if late != 2 {
		t.Errorf("stopped watcher ran again")
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
	registered := make(chan struct{})
	go func() {
		defer close(registered)
		w.WatchCommits(func(metastore.CommitNotice) {})()
	}()
	select {
	case <-registered:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchCommits waited for a running callback")
	}
	close(release)
}
