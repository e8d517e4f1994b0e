package jobs

import (
	"context"
	"sync"
	"time"
)

// Throttle bounds the bytes per second that jobs move, so that they never
// starve produce and fetch of bandwidth. It allows a burst of one
// second's worth; a larger request goes into debt that later callers pay
// off. A nil Throttle, or one with a rate <= 0, never waits. It is safe
// for concurrent use.
type Throttle struct {
	rate float64 // bytes per second

	mu   sync.Mutex
	next time.Time // when the bytes granted so far are paid for
}

// throttleBurst is how much unused rate a Throttle saves up.
const throttleBurst = time.Second

// NewThrottle returns a Throttle of bytesPerSecond (<= 0: unlimited).
func NewThrottle(bytesPerSecond int64) *Throttle {
	return &Throttle{rate: float64(bytesPerSecond)}
}

// Wait blocks until n more bytes may be moved, or ctx is done.
func (t *Throttle) Wait(ctx context.Context, n int64) error {
	if t == nil || t.rate <= 0 || n <= 0 {
		return ctx.Err()
	}
	t.mu.Lock()
	now := time.Now()
	if earliest := now.Add(-throttleBurst); t.next.Before(earliest) {
		t.next = earliest
	}
	t.next = t.next.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	wait := t.next.Sub(now)
	t.mu.Unlock()
	if wait <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
