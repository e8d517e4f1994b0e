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
	if n.Waiting() != 0 || len(n.byPart) != 0 {
		t.Errorf("after Close: %d waiters, %d partitions indexed; want none", n.Waiting(), len(n.byPart))
	}
	n.Notify([]metastore.TopicPartition{a, b})
	n.NotifyAll()
	if got := n.Wakeups(); got != 7 {
		t.Errorf("closed waiters were woken: %d wake-ups, want 7", got)
	}
	var none *Waiter
	none.Watch(a.TopicID, a.Partition) // a nil Waiter watches nothing
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
