package metastoretest

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// testLeases checks the lease rules of metastore.LeaseStore.
func testLeases(t *testing.T, open func(t *testing.T) metastore.LeaseStore) {
	t.Run("Rules", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		l, ok, err := s.AcquireLease(ctx, "retention", "a", time.Minute)
		if err != nil || !ok || l.Holder != "a" || l.Epoch != 1 || l.Name != "retention" {
			t.Fatalf("first AcquireLease = %+v, %v, %v; want a's, epoch 1", l, ok, err)
		}
		recent(t, "Acquired", l.Acquired)
		if d := l.Expires.Sub(l.Renewed); d < time.Minute-time.Second || d > time.Minute+time.Second {
			t.Errorf("lease expires %v after its renewal, want 1m", d)
		}
		// Another holder is refused and told who holds it.
		other, ok, err := s.AcquireLease(ctx, "retention", "b", time.Minute)
		if err != nil || ok || other.Holder != "a" || other.Epoch != 1 {
			t.Fatalf("AcquireLease by b = %+v, %v, %v; want refused, held by a", other, ok, err)
		}
		// The holder acquiring again renews: same epoch.
		again, ok, err := s.AcquireLease(ctx, "retention", "a", time.Minute)
		if err != nil || !ok || again.Epoch != 1 || !again.Acquired.Equal(l.Acquired) {
			t.Fatalf("AcquireLease by a again = %+v, %v, %v; want a renewal of epoch 1", again, ok, err)
		}
		renewed, err := s.RenewLease(ctx, again, time.Minute)
		if err != nil || renewed.Epoch != 1 || renewed.Expires.Before(again.Expires) {
			t.Fatalf("RenewLease = %+v, %v", renewed, err)
		}
		// Another name is independent.
		if _, ok, err := s.AcquireLease(ctx, "cleaner", "b", time.Minute); err != nil || !ok {
			t.Fatalf("AcquireLease(cleaner) by b: %v, %v", ok, err)
		}
		// Released: b takes it with the next epoch; a can no longer renew.
		if err := s.ReleaseLease(ctx, renewed); err != nil {
			t.Fatal(err)
		}
		taken, ok, err := s.AcquireLease(ctx, "retention", "b", time.Minute)
		if err != nil || !ok || taken.Holder != "b" || taken.Epoch != 2 {
			t.Fatalf("AcquireLease by b after release = %+v, %v, %v; want b's, epoch 2", taken, ok, err)
		}
		if _, err := s.RenewLease(ctx, renewed, time.Minute); !errors.Is(err, metastore.ErrLeaseLost) {
			t.Fatalf("RenewLease of a released lease: %v, want ErrLeaseLost", err)
		}
		// Releasing a lost lease does not free the new holder's.
		if err := s.ReleaseLease(ctx, renewed); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.AcquireLease(ctx, "retention", "a", time.Minute); ok {
			t.Fatal("a's stale release freed b's lease")
		}
		leases, err := s.Leases(ctx)
		if err != nil || len(leases) != 2 || leases[0].Name != "cleaner" || leases[1].Name != "retention" || leases[1].Holder != "b" {
			t.Fatalf("Leases = %+v, %v; want cleaner and retention (b)", leases, err)
		}
		if _, _, err := s.AcquireLease(ctx, "x", "", time.Minute); err == nil {
			t.Error("AcquireLease with no holder succeeded")
		}
		if _, _, err := s.AcquireLease(ctx, "x", "a", 0); err == nil {
			t.Error("AcquireLease with ttl 0 succeeded")
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		l, ok, err := s.AcquireLease(ctx, "job", "a", 300*time.Millisecond)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		time.Sleep(500 * time.Millisecond)
		if _, err := s.RenewLease(ctx, l, time.Minute); !errors.Is(err, metastore.ErrLeaseLost) {
			t.Fatalf("RenewLease of an expired lease: %v, want ErrLeaseLost", err)
		}
		taken, ok, err := s.AcquireLease(ctx, "job", "b", time.Minute)
		if err != nil || !ok || taken.Holder != "b" || taken.Epoch != 2 {
			t.Fatalf("AcquireLease of an expired lease = %+v, %v, %v; want b's, epoch 2", taken, ok, err)
		}
		if !taken.Acquired.After(l.Acquired) {
			t.Errorf("new holder's Acquired %v not after the old %v", taken.Acquired, l.Acquired)
		}
	})

	t.Run("Concurrency", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		// Many holders race for a free lease: exactly one wins.
		const holders = 8
		var (
			wg      sync.WaitGroup
			winners atomic.Int32
		)
		for i := range holders {
			wg.Go(func() {
				_, ok, err := s.AcquireLease(ctx, "race", string(rune('a'+i)), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					winners.Add(1)
				}
			})
		}
		wg.Wait()
		if n := winners.Load(); n != 1 {
			t.Fatalf("%d holders acquired a free lease at once, want 1", n)
		}
		// Holders take, use and release a lease in a loop: never two at
		// once, and epochs only grow.
		var (
			inside    atomic.Int32
			acquired  atomic.Int32
			mu        sync.Mutex
			lastEpoch int64
		)
		deadline := time.Now().Add(time.Second)
		for i := range holders {
			wg.Go(func() {
				holder := string(rune('a' + i))
				for time.Now().Before(deadline) {
					l, ok, err := s.AcquireLease(ctx, "mutex", holder, 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						continue
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders inside at once", n)
					}
					mu.Lock()
					if l.Epoch <= lastEpoch {
						t.Errorf("epoch %d after %d", l.Epoch, lastEpoch)
					}
					lastEpoch = l.Epoch
					mu.Unlock()
					acquired.Add(1)
					time.Sleep(time.Millisecond)
					inside.Add(-1)
					if err := s.ReleaseLease(ctx, l); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if acquired.Load() < 2 {
			t.Errorf("lease acquired %d times in a second, want several", acquired.Load())
		}
	})
}

// deletable lists the keys of objects unreferenced before now+slack.
func deletable(t *testing.T, s metastore.ObjectLedger) []string {
	t.Helper()
	objs, err := s.ListDeletable(t.Context(), time.Now().Add(clockSlack), 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

func bases(es []metastore.Extent) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.BaseOffset)
	}
	return out
}

// testRetention checks AdvanceLogStart, PartitionUsage and the objects
// they leave unreferenced.
func testRetention(t *testing.T, open func(t *testing.T) jobStore) {
	t.Run("AdvanceLogStart", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		topic := createTopic(t, s, "t", 2)
		// Partition 0: [0,10) in A (shared with partition 1), [10,15) in B, [15,40) in C.
		a := segment(batch(topic.ID, 0, 0, 100, 10), batch(topic.ID, 1, 100, 50, 3))
		b := segment(batch(topic.ID, 0, 0, 60, 5))
		c := segment(batch(topic.ID, 0, 0, 70, 25))
		for _, seg := range []metastore.SegmentCommit{a, b, c} {
			commitOK(t, s, seg)
		}
		notices := make(chan metastore.CommitNotice, 16)
		stop := s.WatchCommits(func(n metastore.CommitNotice) { notices <- n })
		defer stop()

		// Inside the first extent: it stays whole.
		o, err := s.AdvanceLogStart(ctx, topic.ID, 0, 5)
		if err != nil || o.LogStartOffset != 5 || o.HighWatermark != 40 {
			t.Fatalf("AdvanceLogStart(5) = %+v, %v", o, err)
		}
		if got := bases(extents(t, s, topic.ID, 0, 0, 0)); !slices.Equal(got, []int64{0, 10, 15}) {
			t.Fatalf("extents after log start 5: %v, want 0 10 15", got)
		}
		waitNotice(t, notices, topic.ID, 0)
		// Backwards does nothing, and announces nothing.
		if o, err := s.AdvanceLogStart(ctx, topic.ID, 0, 2); err != nil || o.LogStartOffset != 5 {
			t.Fatalf("AdvanceLogStart(2) after 5 = %+v, %v; want 5 kept", o, err)
		}
		// Exactly at an extent's end drops it; A is still partition 1's.
		if o, err := s.AdvanceLogStart(ctx, topic.ID, 0, 12); err != nil || o.LogStartOffset != 12 {
			t.Fatalf("AdvanceLogStart(12) = %+v, %v", o, err)
		}
		if got := bases(extents(t, s, topic.ID, 0, 0, 0)); !slices.Equal(got, []int64{10, 15}) {
			t.Fatalf("extents after log start 12: %v, want 10 15", got)
		}
		if got := deletable(t, s); len(got) != 0 {
			t.Fatalf("deletable objects %v while partition 1 still refers to A", got)
		}
		waitNotice(t, notices, topic.ID, 0)
		if offs := offsets(t, s, topic.ID, 0); offs.LogStartOffset != 12 {
			t.Fatalf("Offsets after retention: %+v", offs)
		}
		// Beyond the high watermark, or negative: out of range.
		_, err = s.AdvanceLogStart(ctx, topic.ID, 0, 41)
		wantErr(t, "AdvanceLogStart(41)", err, metastore.ErrOffsetOutOfRange)
		_, err = s.AdvanceLogStart(ctx, topic.ID, 0, -2)
		wantErr(t, "AdvanceLogStart(-2)", err, metastore.ErrOffsetOutOfRange)
		_, err = s.AdvanceLogStart(ctx, topic.ID, 2, 0)
		wantErr(t, "AdvanceLogStart on partition 2", err, metastore.ErrUnknownTopicOrPartition)
		// -1: the high watermark. Everything goes; B and C are unreferenced.
		if o, err := s.AdvanceLogStart(ctx, topic.ID, 0, metastore.LogStartHighWatermark); err != nil || o.LogStartOffset != 40 {
			t.Fatalf("AdvanceLogStart(-1) = %+v, %v", o, err)
		}
		if got := extents(t, s, topic.ID, 0, 0, 0); len(got) != 0 {
			t.Fatalf("extents after log start = hwm: %v", got)
		}
		want := []string{b.Object, c.Object}
		slices.Sort(want)
		if got := deletable(t, s); !slices.Equal(got, want) {
			t.Fatalf("deletable = %v, want %v", got, want)
		}
		// A commit after it lands at the high watermark.
		res := commitOK(t, s, segment(batch(topic.ID, 0, 0, 10, 2)))
		if res[0].BaseOffset != 40 || res[0].LogStartOffset != 40 {
			t.Fatalf("commit after retention: %+v", res[0])
		}
		// Partition 1's retention frees A.
		if _, err := s.AdvanceLogStart(ctx, topic.ID, 1, 3); err != nil {
			t.Fatal(err)
		}
		want = append(want, a.Object)
		slices.Sort(want)
		if got := deletable(t, s); !slices.Equal(got, want) {
			t.Fatalf("deletable = %v, want %v", got, want)
		}
	})

	t.Run("PartitionUsage", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 3)
		commitOK(t, s, segment(batch(topic.ID, 0, 0, 100, 10), batch(topic.ID, 2, 100, 7, 1)))
		second := batch(topic.ID, 0, 0, 50, 5)
		second.MaxTimestamp = 1_800_000_000_000
		commitOK(t, s, segment(second))
		if _, err := s.AdvanceLogStart(t.Context(), topic.ID, 0, 3); err != nil {
			t.Fatal(err)
		}
		us, err := s.PartitionUsage(t.Context(), topic.ID)
		if err != nil || len(us) != 3 {
			t.Fatalf("PartitionUsage = %+v, %v", us, err)
		}
		u := us[0]
		if u.Partition != 0 || u.LogStartOffset != 3 || u.HighWatermark != 15 || u.Extents != 2 || u.Bytes != 150 ||
			u.First.BaseOffset != 0 || u.First.EndOffset != 10 || u.First.MaxTimestamp != 1_700_000_000_000 {
			t.Errorf("partition 0 usage %+v", u)
		}
		recent(t, "First.CommittedAt", u.First.CommittedAt)
		if u := us[1]; u.Partition != 1 || u.Extents != 0 || u.Bytes != 0 || u.HighWatermark != 0 {
			t.Errorf("partition 1 usage %+v", u)
		}
		if u := us[2]; u.Partition != 2 || u.Extents != 1 || u.Bytes != 7 || u.HighWatermark != 1 {
			t.Errorf("partition 2 usage %+v", u)
		}
		_, err = s.PartitionUsage(t.Context(), metastore.TopicID{7})
		wantErr(t, "PartitionUsage of an unknown topic", err, metastore.ErrUnknownTopicOrPartition)
	})
}

func waitNotice(t *testing.T, notices <-chan metastore.CommitNotice, id metastore.TopicID, partition int32) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-notices:
			if n.Partitions == nil || slices.Contains(n.Partitions, metastore.TopicPartition{TopicID: id, Partition: partition}) {
				return
			}
		case <-timeout:
			t.Fatalf("no notice for partition %d", partition)
		}
	}
}
