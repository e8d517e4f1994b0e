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
//
// A partition's waiters are a short list, not a set: a fetch of every
// partition of a topic of 10,000 watches 10,000 of them, and a set of its
// own per partition, made and dropped at every fetch, cost ten times the
// list's map lookup (BenchmarkWaiter). A waiter keeps the lists it is on,
// so that Close finds them without a lookup, and a list emptied stays in
// the index for the partition's next fetch until empties outnumber the
// partitions watched (sweep). A list is searched whole, so a partition
// watched by thousands of fetches on one agent costs as many steps per
// Watch and Close.
type Notifier struct {
	mu        sync.Mutex
	byPart    map[partitionKey]*waitList
	all       map[*Waiter]struct{}
	watched   int // registrations in byPart's lists
	wakeups   atomic.Uint64
	wakeupsCt prometheus.Counter // nil without a registerer
}

// waitList is the waiters of one partition.
type waitList struct {
	waiters []*Waiter
}

// index returns w's position in l, or -1.
func (l *waitList) index(w *Waiter) int {
	for i, x := range l.waiters {
		if x == w {
			return i
		}
	}
	return -1
}

// remove takes w (present) off l, in any order.
func (l *waitList) remove(i int) {
	last := len(l.waiters) - 1
	l.waiters[i] = l.waiters[last]
	l.waiters[last] = nil
	l.waiters = l.waiters[:last]
}

// NewNotifier returns a Notifier; reg (may be nil) receives
// floe_fetch_wakeups_total and floe_fetch_watched_partitions.
func NewNotifier(reg prometheus.Registerer) *Notifier {
	n := &Notifier{byPart: map[partitionKey]*waitList{}, all: map[*Waiter]struct{}{}}
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
	n *Notifier

	// Guarded by n.mu.
	lists  []*waitList // the lists w is on
	ch     chan struct{}
	fired  bool
	closed bool
}

// NewWaiter returns a Waiter watching no partition yet; Close it when
// the fetch is answered.
func (n *Notifier) NewWaiter() *Waiter {
	w := &Waiter{n: n, ch: make(chan struct{})}
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
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.closed {
		return
	}
	k := partitionKey{id, partition}
	l := n.byPart[k]
	if l == nil {
		l = &waitList{}
		n.byPart[k] = l
	} else if l.index(w) >= 0 {
		return // watched in an earlier read of the same fetch
	}
	l.waiters = append(l.waiters, w)
	w.lists = append(w.lists, l)
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
	for _, l := range w.lists {
		if i := l.index(w); i >= 0 {
			l.remove(i)
			n.watched--
		}
	}
	w.lists = nil
	if len(n.byPart) > 2*n.watched+minSwept {
		n.sweep()
	}
}

// minSwept is how many empty lists the index keeps at least before
// sweeping them.
const minSwept = 1 << 14

// sweep drops the index's empty lists (a partition no fetch watches any
// more, a topic deleted); n.mu is held. Close sweeps when more than half
// the lists are empty, so sweeping costs each Close a constant share.
func (n *Notifier) sweep() {
	for k, l := range n.byPart {
		if len(l.waiters) == 0 {
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
		if l := n.byPart[partitionKey{tp.TopicID, tp.Partition}]; l != nil {
			for _, w := range l.waiters {
				n.fire(w)
			}
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
