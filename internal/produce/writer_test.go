package produce_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

type fixture struct {
	store  *embedded.Store
	bucket *faulty.Bucket
	topic  metastore.Topic
}

func newFixture(t *testing.T, partitions int32) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := embedded.Open(filepath.Join(dir, "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lb, err := localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := store.CreateTopic(context.Background(), metastore.TopicSpec{Name: "t", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, bucket: faulty.New(lb), topic: topic}
}

func batch(records int, tag string) []byte {
	var recs []recordbatch.Record
	for i := range records {
		recs = append(recs, recordbatch.Record{Value: fmt.Appendf(nil, "%s-%d", tag, i)})
	}
	return recordbatch.Build(recordbatch.BuildOptions{}, recs...)
}

func wait(t *testing.T, p *produce.Pending) (metastore.BatchResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("batch never resolved")
	}
	if err == nil {
		err = res.Err
	}
	return res, err
}

func TestLingerFlushesOneObject(t *testing.T) {
	f := newFixture(t, 3)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: 100 * time.Millisecond})
	defer w.Close()
	start := time.Now()
	var ps []*produce.Pending
	for i := range 9 {
		ps = append(ps, w.Append(f.topic.ID, "t", int32(i%3), batch(2, "x")))
	}
	for i, p := range ps {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(i/3) * 2; res.BaseOffset != want {
			t.Fatalf("batch %d: offset %d, want %d", i, res.BaseOffset, want)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("answered after %v, before the linger expired", d)
	}
	if puts := f.bucket.Calls(faulty.Put); puts != 1 {
		t.Fatalf("%d PUTs, want 1 for one linger window", puts)
	}
}

func TestSizeFlushDoesNotWaitForLinger(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour, MaxSegmentBytes: 1000})
	defer w.Close()
	var ps []*produce.Pending
	for range 30 { // each batch is ~90 bytes
		ps = append(ps, w.Append(f.topic.ID, "t", 0, batch(1, "y")))
	}
	for _, p := range ps[:20] {
		if _, err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	if puts := f.bucket.Calls(faulty.Put); puts < 2 {
		t.Fatalf("%d PUTs, want size flushes", puts)
	}
}

// TestCommitsKeepAppendOrder makes PUTs finish out of order: offsets must
// still follow append order, because commits wait for earlier flushes.
func TestCommitsKeepAppendOrder(t *testing.T) {
	f := newFixture(t, 1)
	slow := &jitterBucket{Bucket: f.bucket}
	w := produce.NewWriter(slow, f.store, produce.Options{Linger: time.Hour, MaxSegmentBytes: 1, MaxInflightFlushes: 4})
	defer w.Close()
	var ps []*produce.Pending
	for range 40 {
		ps = append(ps, w.Append(f.topic.ID, "t", 0, batch(1, "z")))
	}
	for i, p := range ps {
		res, err := wait(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(i) {
			t.Fatalf("batch %d got offset %d: commits reordered", i, res.BaseOffset)
		}
	}
}

type jitterBucket struct{ objstore.Bucket }

func (b *jitterBucket) Put(ctx context.Context, key string, data []byte) error {
	time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
	return b.Bucket.Put(ctx, key, data)
}

func TestFailedPutFailsOnlyItsSegment(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: 20 * time.Millisecond})
	defer w.Close()
	if _, err := wait(t, w.Append(f.topic.ID, "t", 0, batch(1, "a"))); err != nil {
		t.Fatal(err)
	}
	f.bucket.FailNext(faulty.Put, 1, nil)
	failed := []*produce.Pending{w.Append(f.topic.ID, "t", 0, batch(1, "b")), w.Append(f.topic.ID, "t", 0, batch(1, "c"))}
	for _, p := range failed {
		if _, err := wait(t, p); !errors.Is(err, produce.ErrStorage) {
			t.Fatalf("batch in failed segment: %v, want ErrStorage", err)
		}
	}
	res, err := wait(t, w.Append(f.topic.ID, "t", 0, batch(1, "d")))
	if err != nil || res.BaseOffset != 1 {
		t.Fatalf("after failure: offset %d err %v, want 1", res.BaseOffset, err)
	}
}

func TestHungBucketTimesOut(t *testing.T) {
	f := newFixture(t, 1)
	f.bucket.SetLatency(faulty.Put, time.Hour)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: 10 * time.Millisecond, FlushTimeout: 200 * time.Millisecond})
	defer w.Close()
	if _, err := wait(t, w.Append(f.topic.ID, "t", 0, batch(1, "h"))); !errors.Is(err, produce.ErrStorage) {
		t.Fatalf("hung PUT: %v, want ErrStorage", err)
	}
}

func TestCloseFlushesAndRejectsLaterAppends(t *testing.T) {
	f := newFixture(t, 1)
	w := produce.NewWriter(f.bucket, f.store, produce.Options{Linger: time.Hour})
	p := w.Append(f.topic.ID, "t", 0, batch(3, "q"))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Close() }()
	if _, err := wait(t, p); err != nil {
		t.Fatalf("batch open at Close: %v", err)
	}
	wg.Wait()
	if _, err := wait(t, w.Append(f.topic.ID, "t", 0, batch(1, "late"))); !errors.Is(err, produce.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}
