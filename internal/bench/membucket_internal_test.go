package bench

import (
	"context"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func TestMemBucketContract(t *testing.T) {
	objstoretest.Run(t, func(*testing.T) objstore.Bucket { return newMemBucket() })
}

// The latency wrapper in front of the memory bucket must delay every
// request by at least the range's minimum: a request that returned sooner
// would mean the injected delay was skipped. Only the lower bound is
// checked; how late a loaded machine's timers fire is for the bench to
// report, not for a test to assert.
func TestLatencyBucketDelaysEveryRequest(t *testing.T) {
	const min = 15 * time.Millisecond
	b := newLatencyBucket(newMemBucket(), LatencyRange{Min: min, Max: 20 * time.Millisecond})
	ctx := context.Background()
	ops := []struct {
		name string
		do   func() error
	}{
		{"put", func() error { return b.Put(ctx, "k", []byte("value")) }},
		{"get", func() error { _, err := b.GetRange(ctx, "k", 1, 3); return err }},
		{"list", func() error { return b.List(ctx, "", func(objstore.ObjectInfo) error { return nil }) }},
		{"delete", func() error { return b.Delete(ctx, "k") }},
	}
	for _, op := range ops {
		start := time.Now()
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if took := time.Since(start); took < min {
			t.Errorf("%s took %v, less than the injected minimum %v", op.name, took, min)
		}
	}
	// One PUT and one GET, each with a drawn delay in the range.
	for _, h := range []*Histogram{b.putDrawn, b.putServed, b.getDrawn, b.getServed} {
		if s := h.Summary(); s.Count != 1 || s.Min < float64(min/time.Millisecond) {
			t.Errorf("recorded %+v, want one request of at least %v", s, min)
		}
	}
}
