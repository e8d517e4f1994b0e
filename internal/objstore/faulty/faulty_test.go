package faulty_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func newFaulty(t *testing.T) (*faulty.Bucket, objstore.Bucket) {
	t.Helper()
	inner, err := localdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return faulty.New(inner), inner
}

// With nothing armed, the wrapper must be an ordinary bucket.
func TestContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Bucket {
		f, _ := newFaulty(t)
		return f
	})
}

func TestFailNextPutsConcurrently(t *testing.T) {
	f, inner := newFaulty(t)
	ctx := context.Background()
	const puts, failures = 40, 7
	f.FailNext(faulty.Put, failures, nil)

	failed := make([]bool, puts)
	var wg sync.WaitGroup
	for i := range puts {
		wg.Go(func() {
			err := f.Put(ctx, fmt.Sprintf("k/%02d", i), []byte("data"))
			if err != nil && !errors.Is(err, faulty.ErrInjected) {
				t.Errorf("put %d: unexpected error %v", i, err)
			}
			failed[i] = err != nil
		})
	}
	wg.Wait()

	var nFailed int
	for i, fail := range failed {
		_, err := inner.GetRange(ctx, fmt.Sprintf("k/%02d", i), 0, -1)
		switch {
		case fail:
			nFailed++
			if !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("put %d failed but its object exists (%v)", i, err)
			}
		case err != nil:
			t.Errorf("put %d succeeded but its object cannot be read: %v", i, err)
		}
	}
	if nFailed != failures {
		t.Errorf("%d puts failed, want exactly %d", nFailed, failures)
	}
	if got := f.Injected(faulty.Put); got != failures {
		t.Errorf("Injected(Put) = %d, want %d", got, failures)
	}
	if got := f.Calls(faulty.Put); got != puts {
		t.Errorf("Calls(Put) = %d, want %d", got, puts)
	}
	// Disarmed after n failures.
	if err := f.Put(ctx, "after", nil); err != nil {
		t.Errorf("put after the armed failures: %v", err)
	}
}

func TestFailNextGetsWithCustomError(t *testing.T) {
	f, _ := newFaulty(t)
	ctx := context.Background()
	if err := f.Put(ctx, "k", []byte("data")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("503 slow down")
	f.FailNext(faulty.Get, 2, boom)
	for i := range 2 {
		if _, err := f.GetRange(ctx, "k", 0, -1); !errors.Is(err, boom) {
			t.Errorf("get %d = %v, want the armed error", i, err)
		}
	}
	if got, err := f.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "data" {
		t.Errorf("third get = %q, %v; want data", got, err)
	}
	// Other kinds of request are unaffected by armed gets.
	f.FailNext(faulty.Get, 1, nil)
	if err := f.Delete(ctx, "nothing"); err != nil {
		t.Errorf("delete while gets are armed: %v", err)
	}
	f.FailNext(faulty.Get, 0, nil)
	if _, err := f.GetRange(ctx, "k", 0, -1); err != nil {
		t.Errorf("get after disarming: %v", err)
	}
}

func TestFailDeleteAndList(t *testing.T) {
	f, _ := newFaulty(t)
	ctx := context.Background()
	f.FailNext(faulty.Delete, 1, nil)
	f.FailNext(faulty.List, 1, nil)
	if err := f.Delete(ctx, "k"); !errors.Is(err, faulty.ErrInjected) {
		t.Errorf("delete = %v, want ErrInjected", err)
	}
	err := f.List(ctx, "", func(objstore.ObjectInfo) error { return nil })
	if !errors.Is(err, faulty.ErrInjected) {
		t.Errorf("list = %v, want ErrInjected", err)
	}
}

func TestLoseNextPutAcks(t *testing.T) {
	f, inner := newFaulty(t)
	ctx := context.Background()
	f.LoseNextPutAcks(1)
	if err := f.Put(ctx, "k", []byte("data")); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("put = %v, want ErrInjected", err)
	}
	if got, err := inner.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "data" {
		t.Errorf("object after a lost ack = %q, %v; want it stored", got, err)
	}
	if err := f.Put(ctx, "k2", nil); err != nil {
		t.Errorf("second put: %v", err)
	}
}

func TestLatency(t *testing.T) {
	f, _ := newFaulty(t)
	const delay = 50 * time.Millisecond
	f.SetLatency(faulty.Put, delay)

	start := time.Now()
	if err := f.Put(context.Background(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("put took %v, want at least %v", took, delay)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	f.SetLatency(faulty.Put, time.Hour)
	if err := f.Put(ctx, "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("put with an hour of latency and a short deadline = %v, want DeadlineExceeded", err)
	}
	if _, err := f.GetRange(context.Background(), "slow", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("a put abandoned during its latency was stored (%v)", err)
	}

	f.Reset()
	start = time.Now()
	if err := f.Put(context.Background(), "fast", nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("put after Reset took %v", took)
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[faulty.Op]string{faulty.Put: "put", faulty.Get: "get", faulty.Delete: "delete", faulty.List: "list"} {
		if op.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(op), op.String(), want)
		}
	}
}
