package postgres_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// TestLeasesAcrossStores: agents with their own stores (pools) race for
// one lease: at most one holds it at any time, and a holder's renewal
// fails once another took the expired lease.
func TestLeasesAcrossStores(t *testing.T) {
	db := freshDatabase(t)
	stores := []*postgres.Store{openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{})}
	var (
		wg       sync.WaitGroup
		inside   atomic.Int32
		acquired atomic.Int32
	)
	deadline := time.Now().Add(time.Second)
	for i, s := range stores {
		for g := range 3 {
			holder := string(rune('a'+i)) + string(rune('0'+g))
			wg.Go(func() {
				for time.Now().Before(deadline) {
					l, ok, err := s.AcquireLease(t.Context(), "compaction", holder, 10*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						continue
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					acquired.Add(1)
					time.Sleep(time.Millisecond)
					inside.Add(-1)
					if err := s.ReleaseLease(t.Context(), l); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if acquired.Load() < 3 {
		t.Errorf("lease acquired %d times", acquired.Load())
	}

	// Expiry across stores, on the database clock.
	a, b := stores[0], stores[1]
	l, ok, err := a.AcquireLease(t.Context(), "retention", "a", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, ok, err := b.AcquireLease(t.Context(), "retention", "b", time.Minute); err != nil || !ok {
		t.Fatalf("b after a's lease expired: %v, %v", ok, err)
	}
	if _, err := a.RenewLease(t.Context(), l, time.Minute); err == nil {
		t.Fatal("a renewed a lease b holds")
	}
}

// TestLogStartNoticesAcrossStores: another agent's retention reaches this
// store's watchers, by LISTEN/NOTIFY and by polling.
func TestLogStartNoticesAcrossStores(t *testing.T) {
	for _, opts := range []postgres.Options{{}, {DisableNotify: true, PollInterval: 20 * time.Millisecond}} {
		db := freshDatabase(t)
		a, b := openStore(t, db, opts), openStore(t, db, postgres.Options{})
		topic, err := a.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		commitOne(t, b, topic.ID, 0)
		commitOne(t, b, topic.ID, 0)
		notices := watch(t, a)
		time.Sleep(100 * time.Millisecond) // past the commits' notices and a first poll
		for len(notices) > 0 {
			<-notices
		}
		if _, err := b.AdvanceLogStart(t.Context(), topic.ID, 0, 1); err != nil {
			t.Fatal(err)
		}
		waitNotice(t, notices, "for another store's retention", names(topic.ID, 0))
	}
}
