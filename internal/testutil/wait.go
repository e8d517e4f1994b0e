package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, and fails the test when it still
// does not after within. It polls often at first (1 ms) and backs off to
// every 20 ms, so a condition met quickly returns quickly and an expensive
// one is not run in a tight loop.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}
