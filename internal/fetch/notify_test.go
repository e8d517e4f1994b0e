package fetch

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

func fired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A commit wakes only the waiters of the partitions it touched; a notice
// naming no partition wakes everyone; each Arm allows one wake-up.
func TestNotifierWakesOnlyWatchedPartitions(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := NewNotifier(reg)
	a := metastore.TopicPartition{TopicID: metastore.TopicID{1}, Partition: 0}
	b := metastore.TopicPartition{TopicID: metastore.TopicID{1}, Partition: 1}
	c := metastore.TopicPartition{TopicID: metastore.TopicID{2}, Partition: 0} // same partition number, other topic

	wa := n.NewWaiter()
	wa.Watch(a.TopicID, a.Partition)
	wb := n.NewWaiter()
	wb.Watch(b.TopicID, b.Partition)
	wab := n.NewWaiter()
	wab.Watch(a.TopicID, a.Partition)
	wab.Watch(b.TopicID, b.Partition)
	wab.Watch(a.TopicID, a.Partition) // twice: once is enough

	for range 100 {
		n.Notify([]metastore.TopicPartition{b, c})
	}
	if fired(wa.C()) {
		t.Error("the waiter on A was woken by commits on B and on another topic's partition 0")
	}
	if !fired(wb.C()) || !fired(wab.C()) {
		t.Error("the waiters on B were not woken by a commit on B")
	}
	if got := n.Wakeups(); got != 2 {
		t.Errorf("%d wake-ups after 100 commits on B, want 2 (one per waiter on B until it re-arms)", got)
	}

	wb.Arm()
	wab.Arm()
	if fired(wb.C()) || fired(wab.C()) {
		t.Error("a re-armed waiter is still fired")
	}
	n.Notify([]metastore.TopicPartition{a})
	if !fired(wa.C()) || !fired(wab.C()) || fired(wb.C()) {
		t.Errorf("commit on A: waiter A fired %v, A+B %v, B %v; want true, true, false", fired(wa.C()), fired(wab.C()), fired(wb.C()))
	}
	if got := n.Wakeups(); got != 4 {
		t.Errorf("%d wake-ups, want 4", got)
	}

	wa.Arm()
	wab.Arm()
	n.NotifyAll()
	if !fired(wa.C()) || !fired(wab.C()) || !fired(wb.C()) {
		t.Error("a notice naming no partition must wake every waiter")
	}
	if got := counter(t, reg, "floe_fetch_wakeups_total"); got != 7 {
		t.Errorf("floe_fetch_wakeups_total %v, want 7", got)
	}

	for _, w := range []*Waiter{wa, wb, wab} {
		w.Close()
		w.Close()
	}
	listed := 0
	for _, l := range n.byPart {
		listed += len(l.waiters)
	}
	if n.Waiting() != 0 || n.Watched() != 0 || listed != 0 {
		t.Errorf("after Close: %d waiters, %d partitions watched, %d on the index's lists; want none", n.Waiting(), n.Watched(), listed)
	}
	n.Notify([]metastore.TopicPartition{a, b})
	n.NotifyAll()
	if got := n.Wakeups(); got != 7 {
		t.Errorf("closed waiters were woken: %d wake-ups, want 7", got)
	}
	var none *Waiter
	none.Watch(a.TopicID, a.Partition) // a nil Waiter watches nothing
}

// The index keeps a partition's emptied list for its next fetch, until
// empty lists outnumber the partitions watched: fetches of ever new
// partitions (topics created and deleted) do not grow it without bound.
func TestNotifierSweepsEmptyLists(t *testing.T) {
	n := NewNotifier(nil)
	keep := n.NewWaiter()
	keep.Watch(metastore.TopicID{9}, 0)
	for round := range 8 {
		w := n.NewWaiter()
		for p := range int32(10000) {
			w.Watch(metastore.TopicID{byte(round)}, p)
		}
		w.Close()
		if got, most := len(n.byPart), 2*n.Watched()+minSwept+10000; got > most {
			t.Fatalf("round %d: %d lists indexed for %d watched, more than %d", round, got, n.Watched(), most)
		}
	}
	if n.Watched() != 1 {
		t.Fatalf("%d partitions watched, want the one left", n.Watched())
	}
	n.Notify([]metastore.TopicPartition{{TopicID: metastore.TopicID{9}, Partition: 0}})
	if !fired(keep.C()) {
		t.Error("the waiter left was not woken after the sweeps")
	}
}

// No commit is lost between a read and the wait that follows it: writers
// publish a partition's new high watermark and then announce it, readers
// watch, read and wait, as a long-polling fetch does. A lost wake-up
// leaves a reader waiting for a value that was published: the wait is
// bounded, and running out of it fails the test.
func TestNotifierLosesNoWakeup(t *testing.T) {
	const (
		partitions = 4
		commits    = 300 // per partition
		readers    = 3   // per partition
	)
	n := NewNotifier(nil)
	var hwm [partitions]atomic.Int64
	tp := func(p int) metastore.TopicPartition {
		return metastore.TopicPartition{TopicID: metastore.TopicID{9}, Partition: int32(p)}
	}
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan string, partitions*readers)
	for p := range partitions {
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := n.NewWaiter()
				defer w.Close()
				seen := int64(0)
				for seen < commits {
					w.Arm()
					w.Watch(tp(p).TopicID, tp(p).Partition)
					if v := hwm[p].Load(); v > seen {
						seen = v
						continue
					}
					select {
					case <-w.C():
					case <-time.After(time.Until(deadline)):
						errs <- "a reader of a partition waited past the deadline: a wake-up was lost"
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range commits {
				hwm[p].Store(int64(i + 1))
				n.Notify([]metastore.TopicPartition{tp(p)})
				if i%50 == 0 {
					n.NotifyAll()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if n.Waiting() != 0 {
		t.Errorf("%d waiters left registered", n.Waiting())
	}
}

// counter is the value of the counter name in reg (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// BenchmarkWaiter is one long-polling fetch of every partition of a topic
// of 10,000 (a consumer of partitions-10k): a waiter, a Watch per
// partition in each of two reads, and its Close, beside nine other
// fetches' waiters on 100 of the partitions, and a notice of 1,000
// partitions.
func BenchmarkWaiter(b *testing.B) {
	n := NewNotifier(nil)
	id := metastore.TopicID{1}
	for range 9 {
		w := n.NewWaiter()
		for p := range int32(100) {
			w.Watch(id, p)
		}
		defer w.Close()
	}
	notice := make([]metastore.TopicPartition, 1000)
	for i := range notice {
		notice[i] = metastore.TopicPartition{TopicID: id, Partition: int32(i * 10)}
	}
	for b.Loop() {
		w := n.NewWaiter()
		for range 2 {
			w.Arm()
			for p := range int32(10000) {
				w.Watch(id, p)
			}
		}
		n.Notify(notice)
		w.Close()
	}
}
