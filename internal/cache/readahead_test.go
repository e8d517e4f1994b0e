package cache_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/testutil"
)

// heldBucket serves objects whose bytes are a function of their offset,
// holds every GET until the test releases it, fails the GETs it is told
// to, and records the most GETs it ever had in flight at once.
type heldBucket struct {
	objstore.Bucket // nil: only GetRange is used

	release chan struct{} // one value lets one held GET go on
	closed  chan struct{} // closed: GETs are no longer held
	fail    atomic.Int32  // the next fail GETs fail

	mu          sync.Mutex
	inflight    int
	maxInflight int
	gets        []getCall
}

func newHeldBucket() *heldBucket {
	return &heldBucket{release: make(chan struct{}), closed: make(chan struct{})}
}

func byteAt(off int64) byte { return byte(off*7 + off>>8) }

func objectBytes(offset, length int64) []byte {
	out := make([]byte, length)
	for i := range out {
		out[i] = byteAt(offset + int64(i))
	}
	return out
}

func (b *heldBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	b.mu.Lock()
	b.inflight++
	b.maxInflight = max(b.maxInflight, b.inflight)
	b.gets = append(b.gets, getCall{key, offset, length})
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}()
	select {
	case <-b.release:
	case <-b.closed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.fail.Add(-1) >= 0 {
		return nil, errors.New("injected GET failure")
	}
	return objectBytes(offset, length), nil
}

func (b *heldBucket) stats() (inflight, maxInflight int, gets []getCall) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight, b.maxInflight, append([]getCall(nil), b.gets...)
}

// openAll stops holding GETs.
func (b *heldBucket) openAll() { close(b.closed) }

// waitIdle waits until the cache has no read-ahead in flight.
func waitIdle(t *testing.T, c *cache.Blocks) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "read-ahead to finish", func() bool {
		gets, n := c.ReadAheadInFlight()
		return gets == 0 && n == 0
	})
}

func TestPrefetchThenReadsMakeNoGet(t *testing.T) {
	b := newHeldBucket()
	b.openAll()
	reg := prometheus.NewRegistry()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 10_000, ReadAheadRunBytes: 300}, reg)
	defer c.Close()
	if !c.Prefetch("obj", 1050, 150, 900) { // blocks 1..10
		t.Fatal("Prefetch within the bounds reported it could not start everything")
	}
	waitIdle(t, c)
	_, _, gets := b.stats()
	// Ten blocks in runs of at most three: 1-3, 4-6, 7-9, 10 (50 bytes).
	want := map[getCall]bool{{"obj", 100, 300}: true, {"obj", 400, 300}: true, {"obj", 700, 300}: true, {"obj", 1000, 50}: true}
	if len(gets) != len(want) {
		t.Fatalf("GETs %v, want %v", gets, want)
	}
	for _, g := range gets {
		if !want[g] {
			t.Fatalf("GETs %v, want %v", gets, want)
		}
	}
	got, err := c.AppendRange(context.Background(), []byte("x"), "obj", 1050, 150, 900)
	if err != nil || !bytes.Equal(got, append([]byte("x"), objectBytes(150, 900)...)) {
		t.Fatalf("AppendRange after read-ahead: %d bytes, %v", len(got), err)
	}
	if _, _, after := b.stats(); len(after) != len(gets) {
		t.Fatalf("a read of prefetched blocks made %d more GETs", len(after)-len(gets))
	}
	// Prefetching what is cached starts nothing.
	if !c.Prefetch("obj", 1050, 100, 950) {
		t.Fatal("Prefetch of cached blocks reported it could not start them")
	}
	if _, _, after := b.stats(); len(after) != len(gets) {
		t.Fatalf("a Prefetch of cached blocks made %d GETs", len(after)-len(gets))
	}
}

func TestPrefetchIsBoundedInBytesAndGets(t *testing.T) {
	b := newHeldBucket()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 100_000, ReadAheadBytes: 1000, ReadAheadGets: 3, ReadAheadRunBytes: 200}, nil)
	defer c.Close()
	// Three GETs of two blocks fit; the fourth GET does not.
	if c.Prefetch("a", 10_000, 0, 2000) {
		t.Fatal("Prefetch past the GET bound reported that it started everything")
	}
	if gets, n := c.ReadAheadInFlight(); gets != 3 || n != 600 {
		t.Fatalf("in flight: %d GETs, %d bytes; want 3 and 600", gets, n)
	}
	// Nothing more starts while the bounds are full, whatever is asked.
	for i := range 20 {
		if c.Prefetch("b", 10_000, int64(i)*500, 500) {
			t.Fatal("Prefetch with full bounds reported that it started everything")
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the three GETs to reach the bucket", func() bool { in, _, _ := b.stats(); return in == 3 })
	if gets, n := c.ReadAheadInFlight(); gets != 3 || n != 600 {
		t.Fatalf("in flight: %d GETs, %d bytes; want 3 and 600", gets, n)
	}
	// The byte bound: with one GET left and 400 bytes left, a run of two
	// blocks fits and the next block does not.
	b.release <- struct{}{}
	testutil.WaitFor(t, 5*time.Second, "one GET to finish", func() bool { gets, _ := c.ReadAheadInFlight(); return gets == 2 })
	if c.Prefetch("c", 10_000, 0, 1000) {
		t.Fatal("Prefetch past the GET bound reported that it started everything")
	}
	if gets, n := c.ReadAheadInFlight(); gets != 3 || n != 600 {
		t.Fatalf("in flight: %d GETs, %d bytes; want 3 and 600", gets, n)
	}
	b.openAll()
	waitIdle(t, c)
	if _, most, _ := b.stats(); most > 3 {
		t.Fatalf("%d read-ahead GETs in flight at once, bound 3", most)
	}
}

func TestReaderSharingAFailedPrefetchReadsItself(t *testing.T) {
	b := newHeldBucket()
	reg := prometheus.NewRegistry()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 10_000}, reg)
	f := &fixture{cache: c, reg: reg}
	defer c.Close()
	b.fail.Store(1)
	if !c.Prefetch("obj", 1000, 0, 200) {
		t.Fatal("Prefetch did not start")
	}
	testutil.WaitFor(t, 5*time.Second, "the read-ahead GET to reach the bucket", func() bool { in, _, _ := b.stats(); return in == 1 })
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := c.ReadRange(context.Background(), "obj", 1000, 50, 100) // shares the prefetch
		done <- result{data, err}
	}()
	// Once the read has joined the prefetch (a hit on a block in
	// flight), fail the prefetch; the read makes its own GET, which
	// succeeds.
	testutil.WaitFor(t, 5*time.Second, "the read to join the read-ahead", func() bool {
		return f.metric(t, "floe_cache_hits_total") == 2
	})
	b.release <- struct{}{}
	b.openAll()
	select {
	case r := <-done:
		if r.err != nil || !bytes.Equal(r.data, objectBytes(50, 100)) {
			t.Fatalf("read after a failed read-ahead: %d bytes, %v", len(r.data), r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not return")
	}
	if _, _, gets := b.stats(); len(gets) != 2 {
		t.Fatalf("%d GETs, want the failed read-ahead and the reader's own", len(gets))
	}
}

func TestCloseStopsReadAhead(t *testing.T) {
	b := newHeldBucket()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 10_000}, nil)
	c.Prefetch("obj", 1000, 0, 1000)
	testutil.WaitFor(t, 5*time.Second, "read-ahead GETs to reach the bucket", func() bool { in, _, _ := b.stats(); return in > 0 })
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the held read-ahead GETs")
	}
	if in, _, _ := b.stats(); in != 0 {
		t.Fatalf("%d GETs still in flight after Close", in)
	}
	if gets, n := c.ReadAheadInFlight(); gets != 0 || n != 0 {
		t.Fatalf("after Close: %d read-ahead GETs, %d bytes in flight", gets, n)
	}
	_, _, before := b.stats()
	if c.Prefetch("obj", 1000, 0, 1000) {
		t.Fatal("Prefetch after Close reported that it started")
	}
	// Reads still work, with their own GETs.
	b.openAll()
	if got, err := c.ReadRange(context.Background(), "obj", 1000, 0, 10); err != nil || !bytes.Equal(got, objectBytes(0, 10)) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, _, after := b.stats(); len(after) != len(before)+1 {
		t.Fatalf("after Close: %d GETs for one read, want 1", len(after)-len(before))
	}
	c.Close() // again
}

func TestReadAheadDisabled(t *testing.T) {
	b := newHeldBucket()
	b.openAll()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 10_000, ReadAheadBytes: -1}, nil)
	defer c.Close()
	if c.Prefetch("obj", 1000, 0, 1000) {
		t.Fatal("Prefetch with read-ahead disabled reported that it started")
	}
	if _, _, gets := b.stats(); len(gets) != 0 {
		t.Fatalf("%d GETs with read-ahead disabled", len(gets))
	}
}

// Runs of missing blocks separated by cached ones are each fetched, and
// a read of the whole range, which waits for them, returns.
func TestPrefetchAroundCachedBlocks(t *testing.T) {
	b := newHeldBucket()
	b.openAll()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 10_000}, nil)
	defer c.Close()
	if _, err := c.ReadRange(context.Background(), "obj", 1000, 250, 10); err != nil { // block 2
		t.Fatal(err)
	}
	if _, err := c.ReadRange(context.Background(), "obj", 1000, 650, 10); err != nil { // block 6
		t.Fatal(err)
	}
	if !c.Prefetch("obj", 1000, 0, 1000) {
		t.Fatal("Prefetch within the bounds reported it could not start everything")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.ReadRange(ctx, "obj", 1000, 0, 1000)
	if err != nil || !bytes.Equal(got, objectBytes(0, 1000)) {
		t.Fatalf("read around cached blocks: %v", err)
	}
	waitIdle(t, c)
	_, _, gets := b.stats()
	want := map[getCall]bool{{"obj", 200, 100}: true, {"obj", 600, 100}: true, {"obj", 0, 200}: true, {"obj", 300, 300}: true, {"obj", 700, 300}: true}
	if len(gets) != len(want) {
		t.Fatalf("GETs %v, want %v", gets, want)
	}
	for _, g := range gets {
		if !want[g] {
			t.Fatalf("GETs %v, want %v", gets, want)
		}
	}
}

// A block fetched ahead and not read yet is passed over once by
// eviction: blocks readers have used go first. Read, it is an ordinary
// block again.
func TestUnreadReadAheadBlocksAreEvictedLast(t *testing.T) {
	b := newHeldBucket()
	b.openAll()
	reg := prometheus.NewRegistry()
	c := cache.New(b, cache.Options{BlockSize: 100, Capacity: 300}, reg)
	f := &fixture{cache: c, reg: reg}
	defer c.Close()
	c.Prefetch("ahead", 1000, 0, 100) // block 0 of "ahead", unread
	waitIdle(t, c)
	for i := range int64(3) { // three blocks read: one must go
		if _, err := c.ReadRange(context.Background(), "read", 1000, i*100, 10); err != nil {
			t.Fatal(err)
		}
	}
	_, _, gets := b.stats()
	if _, err := c.ReadRange(context.Background(), "ahead", 1000, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, _, after := b.stats(); len(after) != len(gets) {
		t.Fatal("the unread read-ahead block was evicted before blocks already read")
	}
	if got := f.metric(t, "floe_cache_readahead_unused_total"); got != 0 {
		t.Fatalf("unused read-ahead blocks %v, want 0", got)
	}
	// Now read, it is evicted in LRU order like any other.
	for i := range int64(3) {
		if _, err := c.ReadRange(context.Background(), "other", 1000, i*100, 10); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ReadRange(context.Background(), "ahead", 1000, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, _, after := b.stats(); len(after) != len(gets)+4 {
		t.Fatalf("%d GETs, want 4 more: three blocks and the evicted one again", len(after)-len(gets))
	}
}
