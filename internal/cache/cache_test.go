package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/testutil"
)

// getCall is one GetRange that reached the bucket.
type getCall struct {
	key            string
	offset, length int64
}

// countingBucket records every GetRange, and can hold them until a gate
// opens.
type countingBucket struct {
	objstore.Bucket

	mu    sync.Mutex
	gets  []getCall
	gate  chan struct{} // nil: no hold
	calls chan struct{} // receives one value per GetRange, if not nil
}

func (b *countingBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	b.mu.Lock()
	b.gets = append(b.gets, getCall{key, offset, length})
	gate, calls := b.gate, b.calls
	b.mu.Unlock()
	if calls != nil {
		calls <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.Bucket.GetRange(ctx, key, offset, length)
}

// takeGets returns the GETs made since the last call.
func (b *countingBucket) takeGets() []getCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	gets := b.gets
	b.gets = nil
	return gets
}

type fixture struct {
	bucket *countingBucket
	cache  *cache.Blocks
	reg    *prometheus.Registry
}

func newFixture(t *testing.T, inner objstore.Bucket, opts cache.Options) *fixture {
	t.Helper()
	if inner == nil {
		var err error
		if inner, err = localdir.Open(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{bucket: &countingBucket{Bucket: inner}, reg: prometheus.NewRegistry()}
	f.cache = cache.New(f.bucket, opts, f.reg)
	return f
}

// put stores a random object of n bytes under key and returns it.
func (f *fixture) put(t *testing.T, key string, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	if err := f.bucket.Bucket.Put(context.Background(), key, data); err != nil {
		t.Fatal(err)
	}
	return data
}

// read reads through the cache and checks the bytes against object.
func (f *fixture) read(t *testing.T, key string, object []byte, offset, length int64) {
	t.Helper()
	got, err := f.cache.ReadRange(context.Background(), key, int64(len(object)), offset, length)
	if err != nil {
		t.Fatalf("ReadRange(%s, %d, %d): %v", key, offset, length, err)
	}
	if !bytes.Equal(got, object[offset:offset+length]) {
		t.Fatalf("ReadRange(%s, %d, %d) returned the wrong bytes", key, offset, length)
	}
}

func (f *fixture) expectGets(t *testing.T, want ...getCall) {
	t.Helper()
	got := f.bucket.takeGets()
	slices.SortFunc(got, func(a, b getCall) int { return int(a.offset - b.offset) })
	if !slices.Equal(got, want) {
		t.Fatalf("GETs = %v, want %v", got, want)
	}
}

func (f *fixture) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (f *fixture) expectHitsMisses(t *testing.T, hits, misses float64) {
	t.Helper()
	gotHits, gotMisses := f.metric(t, "floe_cache_hits_total"), f.metric(t, "floe_cache_misses_total")
	if gotHits != hits || gotMisses != misses {
		t.Fatalf("hits, misses = %v, %v; want %v, %v", gotHits, gotMisses, hits, misses)
	}
}

func TestHitsAndMisses(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100, Capacity: 10_000})
	obj := f.put(t, "obj", 1000)

	f.read(t, "obj", obj, 150, 100) // blocks 1 and 2, one run
	f.expectGets(t, getCall{"obj", 100, 200})
	f.expectHitsMisses(t, 0, 2)

	f.read(t, "obj", obj, 150, 100)
	f.read(t, "obj", obj, 120, 10)
	f.expectGets(t)
	f.expectHitsMisses(t, 3, 2)

	// Blocks 0..9: 0 and 3..9 are missing, in two runs, one GET each.
	f.read(t, "obj", obj, 0, 1000)
	f.expectGets(t, getCall{"obj", 0, 100}, getCall{"obj", 300, 700})
	f.expectHitsMisses(t, 5, 10)

	f.read(t, "obj", obj, 0, 1000)
	f.expectGets(t)
	f.expectHitsMisses(t, 15, 10)
}

func TestGapsBetweenCachedBlocks(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 10, Capacity: 10_000})
	obj := f.put(t, "obj", 100)
	f.read(t, "obj", obj, 20, 10) // block 2
	f.read(t, "obj", obj, 50, 10) // block 5
	f.bucket.takeGets()
	f.read(t, "obj", obj, 5, 90) // blocks 0..9: runs 0-1, 3-4, 6-9
	f.expectGets(t, getCall{"obj", 0, 20}, getCall{"obj", 30, 20}, getCall{"obj", 60, 40})
}

func TestObjectTail(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100, Capacity: 10_000})
	obj := f.put(t, "obj", 250)

	f.read(t, "obj", obj, 180, 70) // blocks 1 and 2; block 2 is 50 bytes
	f.expectGets(t, getCall{"obj", 100, 150})
	f.read(t, "obj", obj, 249, 1)
	f.read(t, "obj", obj, 200, 50)
	f.expectGets(t)
	f.read(t, "obj", obj, 0, 250)
	f.expectGets(t, getCall{"obj", 0, 100})
	if got := f.cache.Size(); got != 250 {
		t.Errorf("Size = %d, want 250", got)
	}

	// Zero-length reads need no GET, even at the end of the object.
	for _, off := range []int64{0, 100, 250} {
		got, err := f.cache.ReadRange(context.Background(), "other", 250, off, 0)
		if err != nil || len(got) != 0 {
			t.Errorf("ReadRange(other, 250, %d, 0) = %d bytes, %v", off, len(got), err)
		}
	}
	f.expectGets(t)
}

func TestOutOfRange(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100})
	tests := []struct{ size, offset, length int64 }{
		{250, 0, 251},
		{250, 250, 1},
		{250, 251, 0},
		{250, -1, 10},
		{250, 10, -1},
		{-1, 0, 0},
		{250, 1, 1<<63 - 1},
	}
	for _, tt := range tests {
		if _, err := f.cache.ReadRange(context.Background(), "obj", tt.size, tt.offset, tt.length); err == nil {
			t.Errorf("ReadRange(size %d, %d, %d): no error", tt.size, tt.offset, tt.length)
		}
	}
	f.expectGets(t)
}

func TestSingleFlight(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 1 << 10, Capacity: 1 << 20})
	obj := f.put(t, "obj", 3000)
	f.bucket.gate = make(chan struct{})

	const readers = 20
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() { f.read(t, "obj", obj, 1000, 1500) }) // blocks 0..2
	}
	// Open the gate only once every reader has found the blocks missing
	// or in flight, so that all of them had the chance to GET.
	testutil.WaitFor(t, 10*time.Second, "every reader to reach the cache", func() bool {
		return f.metric(t, "floe_cache_hits_total")+f.metric(t, "floe_cache_misses_total") >= readers*3
	})
	close(f.bucket.gate)
	wg.Wait()
	f.expectGets(t, getCall{"obj", 0, 3000})
	f.expectHitsMisses(t, (readers-1)*3, 3)
}

func TestEvictionLRU(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100, Capacity: 300})
	obj := f.put(t, "obj", 1000)

	f.read(t, "obj", obj, 0, 300)   // blocks 0, 1, 2: full
	f.read(t, "obj", obj, 0, 10)    // block 0 is now the most recent
	f.read(t, "obj", obj, 300, 100) // block 3 evicts block 1
	f.bucket.takeGets()
	if got := f.cache.Size(); got != 300 {
		t.Errorf("Size = %d, want 300", got)
	}
	if got := f.metric(t, "floe_cache_bytes"); got != 300 {
		t.Errorf("floe_cache_bytes = %v, want 300", got)
	}

	f.read(t, "obj", obj, 0, 100)
	f.read(t, "obj", obj, 200, 200)
	f.expectGets(t)
	f.read(t, "obj", obj, 100, 100)
	f.expectGets(t, getCall{"obj", 100, 100})

	// A read larger than the capacity still returns every byte.
	f.read(t, "obj", obj, 0, 1000)
	if got := f.cache.Size(); got > 300 {
		t.Errorf("Size = %d, above the capacity of 300", got)
	}
}

func TestInsertThenRead(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100, Capacity: 10_000})
	obj := f.put(t, "obj", 950)
	written := slices.Clone(obj)
	f.cache.Insert("obj", written)
	clear(written) // the writer may reuse its buffer

	f.read(t, "obj", obj, 0, 950)
	f.read(t, "obj", obj, 901, 49)
	f.read(t, "obj", obj, 333, 1)
	f.expectGets(t)
	if got := f.cache.Size(); got != 950 {
		t.Errorf("Size = %d, want 950", got)
	}

	// The caller owns what ReadRange returns.
	got, err := f.cache.ReadRange(context.Background(), "obj", 950, 0, 950)
	if err != nil {
		t.Fatal(err)
	}
	clear(got)
	f.read(t, "obj", obj, 0, 950)

	// Inserting again replaces rather than double-counts.
	f.cache.Insert("obj", obj)
	if got := f.cache.Size(); got != 950 {
		t.Errorf("Size after a second Insert = %d, want 950", got)
	}
	f.cache.Insert("empty", nil)
	f.expectGets(t)
}

func TestErrorsNotCached(t *testing.T) {
	inner, err := localdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(inner)
	f := newFixture(t, fb, cache.Options{BlockSize: 100})
	obj := f.put(t, "obj", 300)

	fb.FailNext(faulty.Get, 1, nil)
	if _, err := f.cache.ReadRange(context.Background(), "obj", 300, 0, 300); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("ReadRange with a failing GET = %v, want the injected error", err)
	}
	if got := f.cache.Size(); got != 0 {
		t.Errorf("Size after a failed GET = %d, want 0", got)
	}
	f.read(t, "obj", obj, 0, 300)
	if got := len(f.bucket.takeGets()); got != 2 {
		t.Errorf("%d GETs, want 2: the failed one and its retry", got)
	}

	_, err = f.cache.ReadRange(context.Background(), "missing", 100, 0, 10)
	if !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("ReadRange of a missing object = %v, want objstore.ErrNotFound", err)
	}
}

// A reader that shares another's GET must not fail because the other
// reader gave up.
func TestSharedGetCanceledByOwner(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100})
	obj := f.put(t, "obj", 100)
	f.bucket.gate = make(chan struct{})
	f.bucket.calls = make(chan struct{}, 10)

	ownerCtx, cancelOwner := context.WithCancel(context.Background())
	ownerErr := make(chan error, 1)
	go func() {
		_, err := f.cache.ReadRange(ownerCtx, "obj", 100, 0, 100)
		ownerErr <- err
	}()
	<-f.bucket.calls // the owner's GET is in flight

	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		f.read(t, "obj", obj, 0, 100)
	}()
	testutil.WaitFor(t, 10*time.Second, "the waiter to share the GET", func() bool {
		return f.metric(t, "floe_cache_hits_total") >= 1
	})
	cancelOwner()
	if err := <-ownerErr; !errors.Is(err, context.Canceled) {
		t.Errorf("owner's ReadRange = %v, want context.Canceled", err)
	}
	<-f.bucket.calls // the waiter's own GET
	close(f.bucket.gate)
	<-waiterDone
	if got := len(f.bucket.takeGets()); got != 2 {
		t.Errorf("%d GETs, want 2", got)
	}
}

func TestWaiterContextCanceled(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100})
	obj := f.put(t, "obj", 100)
	f.bucket.gate = make(chan struct{})
	f.bucket.calls = make(chan struct{}, 10)

	ownerDone := make(chan struct{})
	go func() {
		defer close(ownerDone)
		f.read(t, "obj", obj, 0, 100)
	}()
	<-f.bucket.calls
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := f.cache.ReadRange(ctx, "obj", 100, 0, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter's ReadRange = %v, want context.DeadlineExceeded", err)
	}
	close(f.bucket.gate)
	<-ownerDone
}

// Many readers over several objects with a small capacity: every read
// returns the right bytes while blocks are fetched, shared and evicted.
func TestConcurrentRandomReads(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 64, Capacity: 64 * 20})
	objects := make(map[string][]byte)
	for i := range 5 {
		key := fmt.Sprintf("segments/%d", i)
		objects[key] = f.put(t, key, 200+i*321)
	}
	f.cache.Insert("segments/0", objects["segments/0"])

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 200 {
				key := fmt.Sprintf("segments/%d", r.IntN(5))
				obj := objects[key]
				off := r.Int64N(int64(len(obj)))
				n := r.Int64N(int64(len(obj)) - off + 1)
				got, err := f.cache.ReadRange(context.Background(), key, int64(len(obj)), off, n)
				if err != nil {
					t.Errorf("ReadRange(%s, %d, %d): %v", key, off, n, err)
					return
				}
				if !bytes.Equal(got, obj[off:off+n]) {
					t.Errorf("ReadRange(%s, %d, %d) returned the wrong bytes", key, off, n)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := f.cache.Size(); got > 64*20 {
		t.Errorf("Size = %d, above the capacity", got)
	}
	if got := f.metric(t, "floe_cache_bytes"); got != float64(f.cache.Size()) {
		t.Errorf("floe_cache_bytes = %v, Size = %d", got, f.cache.Size())
	}
}

func TestDefaults(t *testing.T) {
	f := newFixture(t, nil, cache.Options{})
	obj := f.put(t, "obj", 5<<20)
	f.read(t, "obj", obj, 4<<20-1, 2) // straddles the first 4 MiB block
	f.expectGets(t, getCall{"obj", 0, 5 << 20})
}

// A read made with a wrong (short) object size caches a truncated last
// block; readers that know the true size never use it.
func TestWrongObjectSizeNeverServed(t *testing.T) {
	f := newFixture(t, nil, cache.Options{BlockSize: 100})
	object := f.put(t, "segments/a", 250)
	// The last block is [200, 250); a reader told the object has 210
	// bytes fetches and caches [200, 210) only.
	if got, err := f.cache.ReadRange(context.Background(), "segments/a", 210, 200, 10); err != nil || !bytes.Equal(got, object[200:210]) {
		t.Fatalf("read with a short size: %v", err)
	}
	f.bucket.takeGets()
	f.read(t, "segments/a", object, 200, 50)
	f.expectGets(t, getCall{"segments/a", 200, 50})
	// And the other way round: the right block is not dropped for nothing.
	f.read(t, "segments/a", object, 150, 100)
	f.expectGets(t, getCall{"segments/a", 100, 100})
}

// Landed is closed when a GET ends, whether it cached its blocks or
// failed, and not before; a Landed taken after that waits for the next.
func TestLandedClosesWhenAGetEnds(t *testing.T) {
	inner, err := localdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(inner)
	f := newFixture(t, fb, cache.Options{BlockSize: 100, ReadAheadBytes: 1 << 20})
	f.put(t, "obj", 300)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	gate := make(chan struct{})
	f.bucket.mu.Lock()
	f.bucket.gate = gate
	f.bucket.mu.Unlock()
	landed := f.cache.Landed()
	if !f.cache.Prefetch("obj", 300, 0, 300) {
		t.Fatal("Prefetch did not start the read-ahead")
	}
	time.Sleep(20 * time.Millisecond)
	if closed(landed) {
		t.Fatal("Landed closed while the GET was held")
	}
	close(gate)
	testutil.WaitFor(t, 5*time.Second, "Landed after the GET", func() bool { return closed(landed) })
	if !f.cache.Cached("obj", 300, 0, 300) {
		t.Fatal("the blocks are not cached once Landed is closed")
	}

	next := f.cache.Landed()
	if closed(next) {
		t.Fatal("a Landed taken after the GET is already closed")
	}
	fb.FailNext(faulty.Get, 1, nil)
	f.put(t, "obj2", 300)
	if _, err := f.cache.ReadRange(context.Background(), "obj2", 300, 0, 100); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("ReadRange with a failing GET = %v, want the injected error", err)
	}
	if !closed(next) {
		t.Fatal("Landed not closed after a failed GET")
	}
}
