package control

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBudget checks the request budget: takers never hold more than its
// size together, a large taker is not overtaken by small ones, and a
// cancelled taker takes nothing.
func TestBudget(t *testing.T) {
	ctx := t.Context()
	b := newBudget(100)
	if err := b.take(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// 50 does not fit: it waits; 10 would fit but must not overtake it.
	big := make(chan error, 1)
	go func() { big <- b.take(ctx, 50) }()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 })
	small := make(chan error, 1)
	go func() { small <- b.take(ctx, 10) }()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 2 })
	select {
	case <-small:
		t.Fatal("a small taker overtook a waiting large one")
	case <-time.After(50 * time.Millisecond):
	}
	b.give(60)
	for _, c := range []chan error{big, small} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("taker not granted after give")
		}
	}
	if got := b.inUse(); got != 60 {
		t.Fatalf("in use %d, want 60", got)
	}
	// A cancelled taker takes nothing.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.take(cctx, 50); err == nil {
		t.Fatal("take beyond the budget returned without waiting")
	}
	b.give(50)
	b.give(10)
	if got := b.inUse(); got != 0 {
		t.Fatalf("in use %d after everything was given back, want 0", got)
	}
	// More than the size is clamped to it, not refused forever.
	if err := b.take(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	b.give(1000)

	// Given back, the budget wakes waiters only while they fit.
	if err := b.take(ctx, 100); err != nil {
		t.Fatal(err)
	}
	granted := make(chan error, 2)
	for range 2 {
		go func() { granted <- b.take(ctx, 60) }()
	}
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 2 })
	b.give(100)
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
	select {
	case <-granted:
		t.Fatal("two takers of 60 granted from a budget of 100")
	case <-time.After(50 * time.Millisecond):
	}
	b.give(60)
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
	b.give(60)

	// Many takers at once never hold more than the size together.
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 200 {
				n := int64(1 + (w*7+i*13)%60)
				if err := b.take(ctx, n); err != nil {
					t.Error(err)
					return
				}
				h := held.Add(n)
				for {
					p := peak.Load()
					if h <= p || peak.CompareAndSwap(p, h) {
						break
					}
				}
				time.Sleep(20 * time.Microsecond)
				held.Add(-n)
				b.give(n)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 100 {
		t.Fatalf("takers held %d together, over the budget of 100", p)
	}
	if got := b.inUse(); got != 0 {
		t.Fatalf("in use %d at the end, want 0", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
