// Package faulty wraps an objstore.Bucket to inject failures and latency in
// tests: the next N requests of a kind fail, a put reaches the store but
// its acknowledgement is lost, or every request of a kind is slowed down.
// It lets tests prove, for example, that a failed PUT fails exactly the
// produce requests whose data it carried.
//
// It is for tests only and must never be wired into a production agent.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/objstore"
)

// ErrInjected is the error returned by injected failures unless the test
// asked for another.
var ErrInjected = errors.New("faulty: injected failure")

// Op is a kind of bucket request.
type Op int

// The kinds of bucket request.
const (
	Put Op = iota
	Get
	Delete
	List
	numOps
)

func (op Op) String() string {
	switch op {
	case Put:
		return "put"
	case Get:
		return "get"
	case Delete:
		return "delete"
	case List:
		return "list"
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// failure is a pending batch of injected failures for one Op.
type failure struct {
	remaining int
	err       error
	after     bool // run the real request first, then fail (lost ack)
}

// Bucket is a bucket that fails or slows requests on demand. Its methods
// are safe for concurrent use: when n failures are armed and many requests
// run at once, exactly n of them fail.
type Bucket struct {
	inner objstore.Bucket

	mu       sync.Mutex
	fail     [numOps]failure
	latency  [numOps]time.Duration
	injected [numOps]int
	calls    [numOps]int
}

var _ objstore.Bucket = (*Bucket)(nil)

// New wraps b. With nothing armed, it behaves exactly like b.
func New(b objstore.Bucket) *Bucket {
	return &Bucket{inner: b}
}

// FailNext makes the next n requests of kind op fail with err (ErrInjected
// if err is nil) without reaching the wrapped bucket. It replaces any
// failures still armed for op; n <= 0 disarms them.
func (f *Bucket) FailNext(op Op, n int, err error) {
	f.arm(op, n, err, false)
}

// LoseNextPutAcks makes the next n puts reach the wrapped bucket and then
// fail with ErrInjected anyway, as when a store accepts an object but the
// response never arrives. The object exists; the caller believes it does
// not. It replaces any put failures still armed.
func (f *Bucket) LoseNextPutAcks(n int) {
	f.arm(Put, n, nil, true)
}

func (f *Bucket) arm(op Op, n int, err error, after bool) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = failure{remaining: max(n, 0), err: err, after: after}
}

// SetLatency delays every later request of kind op by d before it runs
// (0 removes the delay). A request whose context ends during the delay
// fails with the context's error.
func (f *Bucket) SetLatency(op Op, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency[op] = d
}

// Reset disarms all failures and removes all latency. Counts are kept.
func (f *Bucket) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = [numOps]failure{}
	f.latency = [numOps]time.Duration{}
}

// Injected returns how many requests of kind op have failed by injection.
func (f *Bucket) Injected(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected[op]
}

// Calls returns how many requests of kind op this bucket has received,
// failed or not.
func (f *Bucket) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// verdict says whether one request must fail by injection.
type verdict struct {
	err   error // nil: let the request through
	after bool  // fail only after the request reached the wrapped bucket
}

// begin records a request, waits out any latency, and decides whether the
// request must fail.
func (f *Bucket) begin(ctx context.Context, op Op) (verdict, error) {
	var v verdict
	f.mu.Lock()
	f.calls[op]++
	delay := f.latency[op]
	if p := &f.fail[op]; p.remaining > 0 {
		p.remaining--
		f.injected[op]++
		v = verdict{err: p.err, after: p.after}
	}
	f.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return verdict{}, fmt.Errorf("faulty %s: %w", op, ctx.Err())
		}
	}
	return v, nil
}

// Put stores data in the wrapped bucket unless a failure is armed.
func (f *Bucket) Put(ctx context.Context, key string, data []byte) error {
	v, err := f.begin(ctx, Put)
	if err != nil {
		return err
	}
	if v.err != nil && !v.after {
		return fmt.Errorf("faulty put %s: %w", key, v.err)
	}
	if err := f.inner.Put(ctx, key, data); err != nil {
		return err
	}
	if v.err != nil {
		return fmt.Errorf("faulty put %s: stored, but acknowledgement lost: %w", key, v.err)
	}
	return nil
}

// GetRange reads from the wrapped bucket unless a failure is armed.
func (f *Bucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	v, err := f.begin(ctx, Get)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		return nil, fmt.Errorf("faulty get %s: %w", key, v.err)
	}
	return f.inner.GetRange(ctx, key, offset, length)
}

// Delete deletes from the wrapped bucket unless a failure is armed.
func (f *Bucket) Delete(ctx context.Context, key string) error {
	v, err := f.begin(ctx, Delete)
	if err != nil {
		return err
	}
	if v.err != nil {
		return fmt.Errorf("faulty delete %s: %w", key, v.err)
	}
	return f.inner.Delete(ctx, key)
}

// List lists the wrapped bucket unless a failure is armed.
func (f *Bucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	v, err := f.begin(ctx, List)
	if err != nil {
		return err
	}
	if v.err != nil {
		return fmt.Errorf("faulty list %q: %w", prefix, v.err)
	}
	return f.inner.List(ctx, prefix, fn)
}
