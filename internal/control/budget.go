package control

import (
	"context"
	"sync"
)

// Budgets of request bytes being decoded and run. A session's own budget
// (remote.MaxInFlight units) bounds one connection; these bound all the
// connections of a vcluster, and of the server, so that many connections
// cannot add up to unbounded memory: decoding holds at most about 6 times
// the bytes of the requests it decodes (docs/control-plane.md).
const (
	vclusterRequestBytes = 64 << 20
	serverRequestBytes   = 256 << 20
)

// budget is a weighted semaphore, first come first served: a large
// request waiting for room is not overtaken by small ones, and a taker
// gets all it asks for at once (taking piecemeal, two takers could each
// hold part and wait for the rest forever).
type budget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(size int64) *budget { return &budget{size: size} }

// take waits until n bytes (at most the budget's size) are free and
// takes them, or returns ctx's error having taken nothing.
func (b *budget) take(ctx context.Context, n int64) error {
	n = min(n, b.size)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.used -= n
	default:
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.grant()
	return ctx.Err()
}

// give returns n bytes taken with take (the same n).
func (b *budget) give(n int64) {
	n = min(n, b.size)
	b.mu.Lock()
	b.used -= n
	b.grant()
	b.mu.Unlock()
}

// grant wakes waiters in order while they fit; b.mu is held.
func (b *budget) grant() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.used+w.n > b.size {
			return
		}
		b.used += w.n
		close(w.ready)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
	}
}

// inUse is what is taken, for tests and metrics.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
