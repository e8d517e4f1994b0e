package fetch

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

// Notifier wakes long-polling fetches when a commit touches a partition
// they wait on, and only those: a commit on one partition costs nothing to
// the fetches waiting on others, however many there are.
//
// A fetch takes a Waiter, names each partition to it (Watch) before it
// reads that partition, and waits on the Waiter's channel; before reading
// again it re-arms the Waiter (Arm). A commit is announced only after it
// is visible (metastore.CommitWatcher), so for every partition either
// the read saw the commit or the Watch came first and the announcement
// fires the channel: no commit falls between a read and its wait.
//
// mu guards the index of waiters by partition and every Waiter's channel
// and fired flag; it is a leaf, held only for map and channel work
// (docs/locking.md).
type Notifier struct {
	mu        sync.Mutex
	byPart    map[partitionKey]map[*Waiter]struct{}
	all       map[*Waiter]struct{}
	watched   int // registrations in byPart
	wakeups   atomic.Uint64
	wakeupsCt prometheus.Counter // nil without a registerer
}

// NewNotifier returns a Notifier; reg (may be nil) receives
// floe_fetch_wakeups_total and floe_fetch_watched_partitions.
func NewNotifier(reg prometheus.Registerer) *Notifier {
	n := &Notifier{byPart: map[partitionKey]map[*Waiter]struct{}{}, all: map[*Waiter]struct{}{}}
	if reg != nil {
		n.wakeupsCt = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_fetch_wakeups_total",
			Help: "Long-polling fetches woken by a commit on a partition they wait on (or by a notice naming every partition).",
		})
		reg.MustRegister(n.wakeupsCt, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "floe_fetch_watched_partitions",
			Help: "Partitions watched by long-polling fetches, counted once per fetch.",
		}, func() float64 { return float64(n.Watched()) }))
	}
	return n
}

// Waiter is one long-polling fetch's registration. It is used by one
// goroutine at a time; Notify and NotifyAll may run concurrently with it.
type Waiter struct {
	n    *Notifier
	keys map[partitionKey]struct{} // owned by the fetch's goroutine

	// Guarded by n.mu.
	ch     chan struct{}
	fired  bool
	closed bool
}

// NewWaiter returns a Waiter watching no partition yet; Close it when
// the fetch is answered.
func (n *Notifier) NewWaiter() *Waiter {
	w := &Waiter{n: n, keys: map[partitionKey]struct{}{}, ch: make(chan struct{})}
	n.mu.Lock()
	n.all[w] = struct{}{}
	n.mu.Unlock()
	return w
}

// Watch adds a partition to those whose commits wake w. Call it before
// reading the partition. A nil Waiter watches nothing.
func (w *Waiter) Watch(id metastore.TopicID, partition int32) {
	if w == nil {
		return
	}
	k := partitionKey{id, partition}
	if _, ok := w.keys[k]; ok {
		return
	}
	w.keys[k] = struct{}{}
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.closed {
		return
	}
	set := n.byPart[k]
	if set == nil {
		set = map[*Waiter]struct{}{}
		n.byPart[k] = set
	}
	set[w] = struct{}{}
	n.watched++
}

// C returns the channel closed at the next commit on a watched partition
// (or the next notice naming every partition) since the last Arm.
func (w *Waiter) C() <-chan struct{} {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	return w.ch
}

// Arm readies w for the next wait after it fired; call it before reading
// again. Commits announced between the wake-up and Arm are seen by that
// read.
func (w *Waiter) Arm() {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	if w.fired {
		w.ch, w.fired = make(chan struct{}), false
	}
}

// Close removes w from the notifier. It is idempotent.
func (w *Waiter) Close() {
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	delete(n.all, w)
	for k := range w.keys {
		set := n.byPart[k]
		if _, ok := set[w]; ok {
			delete(set, w)
			n.watched--
		}
		if len(set) == 0 {
			delete(n.byPart, k)
		}
	}
}

// Notify wakes the waiters of every partition in parts.
func (n *Notifier) Notify(parts []metastore.TopicPartition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.byPart) == 0 {
		return
	}
	for _, tp := range parts {
		for w := range n.byPart[partitionKey{tp.TopicID, tp.Partition}] {
			n.fire(w)
		}
	}
}

// NotifyAll wakes every waiter, for a notice that does not say which
// partitions changed.
func (n *Notifier) NotifyAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for w := range n.all {
		n.fire(w)
	}
}

// fire wakes w once per Arm; n.mu is held.
func (n *Notifier) fire(w *Waiter) {
	if w.fired {
		return
	}
	w.fired = true
	close(w.ch)
	n.wakeups.Add(1)
	if n.wakeupsCt != nil {
		n.wakeupsCt.Inc()
	}
}

// Wakeups is how many times a waiter was woken since the Notifier was
// made (each Arm allows one).
func (n *Notifier) Wakeups() uint64 { return n.wakeups.Load() }

// Watched is how many partitions the waiters watch, each counted once
// per waiter watching it.
func (n *Notifier) Watched() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.watched
}

// Waiting is how many waiters are registered, for tests.
func (n *Notifier) Waiting() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.all)
}
