package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

// fast keeps retry tests quick: millisecond backoff, no hedging.
var fast = objstore.ResilientOptions{BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond, HedgeAfter: -1}

var errTransient = fmt.Errorf("503 slow down: %w", objstore.ErrTransient)

// checkNoLeaks fails t if, after the test, more goroutines run than
// before it (waiting a bounded time for canceled requests to finish).
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines after the test, %d before:\n%s",
					runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestResilientContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Bucket {
		return objstore.Resilient(openLocal(t), objstore.ResilientOptions{})
	})
}

func TestIsRetriable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("bad request"), false},
		{fmt.Errorf("get x: %w", objstore.ErrNotFound), false},
		{fmt.Errorf("get x: %w", context.Canceled), false},
		{errTransient, true},
		{fmt.Errorf("both: %w, %w", objstore.ErrNotFound, objstore.ErrTransient), false},
		{context.DeadlineExceeded, true}, // a net.Error that times out
		{httpStatus(500), true},
		{httpStatus(503), true},
		{httpStatus(429), true},
		{httpStatus(408), true},
		{httpStatus(403), false},
		{httpStatus(404), false},
	}
	for _, tt := range tests {
		if got := objstore.IsRetriable(tt.err); got != tt.want {
			t.Errorf("IsRetriable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type httpStatus int

func (s httpStatus) Error() string       { return fmt.Sprintf("HTTP %d", int(s)) }
func (s httpStatus) HTTPStatusCode() int { return int(s) }

func TestRetryTransient(t *testing.T) {
	checkNoLeaks(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	f := faulty.New(openLocal(t))
	o := fast
	o.Metrics = objstore.NewResilienceMetrics(reg)
	r := objstore.Resilient(f, o)

	f.FailNext(faulty.Put, 2, errTransient)
	if err := r.Put(ctx, "k", []byte("value")); err != nil {
		t.Fatalf("Put after 2 transient failures: %v", err)
	}
	f.FailNext(faulty.Get, 3, errTransient)
	if got, err := r.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "value" {
		t.Fatalf("GetRange after 3 transient failures = %q, %v", got, err)
	}
	f.FailNext(faulty.Delete, 1, errTransient)
	if err := r.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete after a transient failure: %v", err)
	}
	for op, want := range map[faulty.Op]int{faulty.Put: 3, faulty.Get: 4, faulty.Delete: 2} {
		if got := f.Calls(op); got != want {
			t.Errorf("%v calls = %d, want %d", op, got, want)
		}
	}
	for op, want := range map[string]float64{"put": 2, "get": 3, "delete": 1, "list": 0} {
		if got := metric(t, reg, "floe_objstore_retries_total", map[string]string{"op": op}); got != want {
			t.Errorf("retries{op=%s} = %v, want %v", op, got, want)
		}
	}
}

func TestNoRetryPermanent(t *testing.T) {
	checkNoLeaks(t)
	ctx := context.Background()
	permanent := errors.New("403 access denied")
	tests := []struct {
		name string
		arm  func(f *faulty.Bucket)
		call func(r objstore.Bucket) error
		op   faulty.Op
		want error
	}{
		{"put permanent", func(f *faulty.Bucket) { f.FailNext(faulty.Put, 5, permanent) },
			func(r objstore.Bucket) error { return r.Put(ctx, "k", nil) }, faulty.Put, permanent},
		{"get permanent", func(f *faulty.Bucket) { f.FailNext(faulty.Get, 5, permanent) },
			func(r objstore.Bucket) error { _, err := r.GetRange(ctx, "k", 0, -1); return err }, faulty.Get, permanent},
		{"get not found", func(*faulty.Bucket) {},
			func(r objstore.Bucket) error { _, err := r.GetRange(ctx, "missing", 0, -1); return err }, faulty.Get, objstore.ErrNotFound},
		{"list permanent", func(f *faulty.Bucket) { f.FailNext(faulty.List, 5, permanent) },
			func(r objstore.Bucket) error { return r.List(ctx, "", func(objstore.ObjectInfo) error { return nil }) }, faulty.List, permanent},
		{"canceled", func(*faulty.Bucket) {},
			func(r objstore.Bucket) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return r.Put(ctx, "k", nil)
			}, faulty.Put, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := faulty.New(openLocal(t))
			r := objstore.Resilient(f, fast)
			tt.arm(f)
			if err := tt.call(r); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if got := f.Calls(tt.op); got != 1 {
				t.Errorf("%d attempts, want 1", got)
			}
		})
	}
}

func TestRetryBounded(t *testing.T) {
	checkNoLeaks(t)
	ctx := context.Background()
	t.Run("attempts", func(t *testing.T) {
		f := faulty.New(openLocal(t))
		o := fast
		o.MaxAttempts = 3
		f.FailNext(faulty.Put, 100, errTransient)
		err := objstore.Resilient(f, o).Put(ctx, "k", nil)
		if !errors.Is(err, objstore.ErrTransient) || f.Calls(faulty.Put) != 3 {
			t.Errorf("Put = %v after %d attempts, want the transient error after 3", err, f.Calls(faulty.Put))
		}
	})
	t.Run("time", func(t *testing.T) {
		f := faulty.New(openLocal(t))
		o := fast
		o.MaxAttempts, o.BaseDelay, o.MaxDelay, o.MaxElapsed = 1000, 20*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
		f.FailNext(faulty.Put, 1000, errTransient)
		start := time.Now()
		err := objstore.Resilient(f, o).Put(ctx, "k", nil)
		if took := time.Since(start); !errors.Is(err, objstore.ErrTransient) || took > time.Second {
			t.Errorf("Put = %v after %v, want the transient error within MaxElapsed", err, took)
		}
		if n := f.Calls(faulty.Put); n < 2 || n > 12 {
			t.Errorf("%d attempts in 100ms with 10-20ms backoff", n)
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		f := faulty.New(openLocal(t))
		o := fast
		o.BaseDelay, o.MaxDelay = time.Second, time.Second
		f.FailNext(faulty.Put, 100, errTransient)
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := objstore.Resilient(f, o).Put(ctx, "k", nil)
		if took := time.Since(start); err == nil || took > 500*time.Millisecond {
			t.Errorf("Put = %v after %v; want a quick failure when the backoff outlasts the caller's deadline", err, took)
		}
	})
	t.Run("cancel during backoff", func(t *testing.T) {
		f := faulty.New(openLocal(t))
		o := fast
		o.BaseDelay, o.MaxDelay = time.Second, time.Second
		f.FailNext(faulty.Put, 100, errTransient)
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(30*time.Millisecond, cancel)
		start := time.Now()
		err := objstore.Resilient(f, o).Put(ctx, "k", nil)
		if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 500*time.Millisecond {
			t.Errorf("Put = %v after %v, want context.Canceled soon after cancel", err, took)
		}
	})
	t.Run("attempt timeout", func(t *testing.T) {
		f := faulty.New(openLocal(t))
		o := fast
		o.MaxAttempts, o.AttemptTimeout = 3, 20*time.Millisecond
		f.SetLatency(faulty.Put, 10*time.Second) // a hung connection
		start := time.Now()
		err := objstore.Resilient(f, o).Put(ctx, "k", nil)
		if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > time.Second {
			t.Errorf("Put = %v after %v, want DeadlineExceeded after 3 short attempts", err, took)
		}
		if n := f.Calls(faulty.Put); n != 3 {
			t.Errorf("%d attempts, want 3: a timed-out attempt is retried", n)
		}
	})
}

// flakyList fails List with a transient error after passing `after` keys
// to fn, failures times.
type flakyList struct {
	objstore.Bucket
	mu       sync.Mutex
	failures int
	after    int
}

func (b *flakyList) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	n := 0
	return b.Bucket.List(ctx, prefix, func(oi objstore.ObjectInfo) error {
		b.mu.Lock()
		fail := n == b.after && b.failures > 0
		if fail {
			b.failures--
		}
		b.mu.Unlock()
		if fail {
			return errTransient
		}
		n++
		return fn(oi)
	})
}

func TestListResumes(t *testing.T) {
	ctx := context.Background()
	local := openLocal(t)
	var want []string
	for i := range 6 {
		key := fmt.Sprintf("k%d", i)
		want = append(want, key)
		if err := local.Put(ctx, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := objstore.Resilient(&flakyList{Bucket: local, failures: 2, after: 2}, fast)
	var got []string
	if err := r.List(ctx, "", func(oi objstore.ObjectInfo) error {
		got = append(got, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List with two failures mid-way passed %q to fn, want each key once: %q", got, want)
	}

	// An error from fn itself ends the listing, even one that looks
	// transient.
	calls := 0
	err := r.List(ctx, "", func(objstore.ObjectInfo) error {
		calls++
		return errTransient
	})
	if !errors.Is(err, errTransient) || calls != 1 {
		t.Errorf("List whose fn fails = %v after %d calls, want fn's error after 1", err, calls)
	}
}
