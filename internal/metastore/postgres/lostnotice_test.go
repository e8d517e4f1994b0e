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
// partition, from its lost-notice poll, within two polls; a store without
// the poll must not (which shows that the notice really was lost, so the
// first store heard it from its poll). With one row an interval, the
// three partitions are polled every three intervals.
func TestLostNoticeIsPolled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rows  int
		polls int // intervals between polls
	}{{"every interval", 0, 1}, {"one row an interval", 1, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			const every = 100 * time.Millisecond
			wait := time.Duration(tc.polls) * every
			db := freshDatabase(t)
			committer := openStore(t, db, postgres.Options{NoticePollInterval: -1})
			var dead atomic.Bool
			postgres.SetTestDropNotices(committer, dead.Load)
			polling := openStore(t, db, postgres.Options{NoticePollInterval: every, NoticePollRows: tc.rows})
			deaf := openStore(t, db, postgres.Options{NoticePollInterval: -1})
			topic, err := committer.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 3})
			if err != nil {
				t.Fatal(err)
			}
			pollingNotices, deafNotices := watch(t, polling), watch(t, deaf)

			// With the notifier alive, both hear the commit.
			commitOne(t, committer, topic.ID, 0)
			waitNotice(t, deafNotices, "from a live notifier", names(topic.ID, 0))
			waitNotice(t, pollingNotices, "from a live notifier", names(topic.ID, 0))

			time.Sleep(3 * wait) // the poll has read the commit above
			dead.Store(true)
			commitOne(t, committer, topic.ID, 2)
			start := time.Now()
			// The poll's notice says what it saw: high watermark 1, log
			// start offset 0.
			waitNotice(t, pollingNotices, "from the lost-notice poll, with what it saw", seenAs(topic.ID, 2, 1))
			if took := time.Since(start); took > 2*wait+time.Second {
				t.Errorf("the poll announced the commit after %v, want at most two polls %v apart (plus slack)", took, wait)
			}
			deadline := time.After(5 * every)
			for {
				select {
				case n := <-deafNotices:
					if names(topic.ID, 2)(n) || n.Partitions == nil {
						t.Fatalf("a store without the poll heard %+v: the notice was not lost", n)
					}
					continue
				case <-deadline:
				}
				break
			}
		})
	}
}

// TestLostNoticePollSpacing: a store polls for lost notices every
// interval up to NoticePollRows partitions, and less often beyond, so that
// it reads about NoticePollRows partitions an interval.
func TestLostNoticePollSpacing(t *testing.T) {
	for _, tc := range []struct {
		rows, partitions int
		want             time.Duration
	}{
		{10_000, 0, time.Second},
		{10_000, 1, time.Second},
		{10_000, 10_000, time.Second},
		{10_000, 10_001, 2 * time.Second},
		{10_000, 20_000, 2 * time.Second},
		{10_000, 95_000, 10 * time.Second},
		{1, 4, 4 * time.Second},
	} {
		if got := postgres.LostNoticePollWait(time.Second, tc.rows, tc.partitions); got != tc.want {
			t.Errorf("%d partitions at %d rows an interval of 1s: a poll every %v, want %v", tc.partitions, tc.rows, got, tc.want)
		}
	}

	// A store reading 2 rows an interval over 8 partitions polls every
	// 4 intervals.
	const every = 25 * time.Millisecond
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{NoticePollInterval: -1})
	if _, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 8}); err != nil {
		t.Fatal(err)
	}
	polling := openStore(t, db, postgres.Options{NoticePollInterval: every, NoticePollRows: 2})
	start, before := time.Now(), postgres.LostNoticePolls(polling)
	time.Sleep(40 * every)
	polls, took := postgres.LostNoticePolls(polling)-before, time.Since(start)
	// 10 polls in 40 intervals; a slow machine polls less often, never
	// more: every interval would be 40.
	if most := int64(took/(4*every)) + 1; polls < 1 || polls > most {
		t.Errorf("%d polls in %v of intervals of %v over 8 partitions at 2 rows an interval, want 1 to %d", polls, took, every, most)
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
