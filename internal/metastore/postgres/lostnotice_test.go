package postgres_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// TestLostNoticeIsPolled kills the committing store's notifier between
// its commit and its notice (the notice is never sent, as when the agent
// dies right after COMMIT): another store must still announce the
// partition, from its lost-notice poll, within two poll intervals; a store
// without the poll must not (which shows that the notice really was
// lost, so the first store heard it from its poll).
func TestLostNoticeIsPolled(t *testing.T) {
	db := freshDatabase(t)
	const every = 100 * time.Millisecond
	committer := openStore(t, db, postgres.Options{NoticePollInterval: -1})
	var dead atomic.Bool
	postgres.SetTestDropNotices(committer, dead.Load)
	polling := openStore(t, db, postgres.Options{NoticePollInterval: every})
	deaf := openStore(t, db, postgres.Options{NoticePollInterval: -1})
	topic, err := committer.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	pollingNotices, deafNotices := watch(t, polling), watch(t, deaf)

	// With the notifier alive, both hear the commit.
	commitOne(t, committer, topic.ID, 0)
	waitNotice(t, deafNotices, "from a live notifier", names(topic.ID, 0))
	waitNotice(t, pollingNotices, "from a live notifier", names(topic.ID, 0))

	time.Sleep(3 * every) // the poll has read the commit above
	dead.Store(true)
	commitOne(t, committer, topic.ID, 1)
	start := time.Now()
	waitNotice(t, pollingNotices, "from the lost-notice poll", names(topic.ID, 1))
	if took := time.Since(start); took > 2*every+time.Second {
		t.Errorf("the poll announced the commit after %v, want at most two intervals of %v (plus slack)", took, every)
	}
	deadline := time.After(5 * every)
	for {
		select {
		case n := <-deafNotices:
			if names(topic.ID, 1)(n) || n.Partitions == nil {
				t.Fatalf("a store without the poll heard %+v: the notice was not lost", n)
			}
			continue
		case <-deadline:
		}
		break
	}
}

// TestRelayedNoticesSkipTheDatabase: a segment commit's notice goes to
// the relay, and through the database only when the relay says it did
// not reach every agent. A listening store that is not on the relay hears
// the commit in the second case only; the relay hears both.
func TestRelayedNoticesSkipTheDatabase(t *testing.T) {
	db := freshDatabase(t)
	committer := openStore(t, db, postgres.Options{NoticePollInterval: -1})
	listener := openStore(t, db, postgres.Options{NoticePollInterval: -1})
	topic, err := committer.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	var reaches atomic.Bool
	relayed := make(chan metastore.CommitNotice, 16)
	committer.RelayNotices(func(n metastore.CommitNotice) bool {
		relayed <- n
		return reaches.Load()
	})
	heard := watch(t, listener)

	reaches.Store(true)
	commitOne(t, committer, topic.ID, 0)
	if n := <-relayed; !names(topic.ID, 0)(n) {
		t.Fatalf("the relay got %+v", n)
	}
	deadline := time.After(500 * time.Millisecond)
	for quiet := false; !quiet; {
		select {
		case n := <-heard:
			if names(topic.ID, 0)(n) || n.Partitions == nil {
				t.Fatalf("the database carried a notice the relay reached every agent with: %+v", n)
			}
		case <-deadline:
			quiet = true
		}
	}

	reaches.Store(false)
	commitOne(t, committer, topic.ID, 1)
	if n := <-relayed; !names(topic.ID, 1)(n) {
		t.Fatalf("the relay got %+v", n)
	}
	waitNotice(t, heard, "through the database, the relay having missed an agent", names(topic.ID, 1))

	// HearRelayed delivers to the store's watchers.
	listener.HearRelayed(metastore.CommitNotice{Partitions: []metastore.TopicPartition{{TopicID: topic.ID, Partition: 0}}})
	waitNotice(t, heard, "relayed", names(topic.ID, 0))
}
