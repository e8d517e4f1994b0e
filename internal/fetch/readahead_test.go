package fetch_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
	"github.com/floe-io/floe/internal/testutil"
)

// recordingBucket records every GET's object and can hold GETs until
// released, counting the most it ever had in flight.
type recordingBucket struct {
	objstore.Bucket

	mu          sync.Mutex
	gets        []string // object keys, in order
	bytes       int64    // bytes asked for
	held        bool
	release     chan struct{}
	inflight    int
	maxInflight int
}

func (b *recordingBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	b.mu.Lock()
	b.gets = append(b.gets, key)
	b.bytes += length
	b.inflight++
	b.maxInflight = max(b.maxInflight, b.inflight)
	held, release := b.held, b.release
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}()
	if held {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.Bucket.GetRange(ctx, key, offset, length)
}

func (b *recordingBucket) objects() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.gets)
}

// raFixture is a topic of several partitions whose every segment is one
// object per partition batch set, read by a reader with read-ahead (and
// compared with one without).
type raFixture struct {
	store  *embedded.Store
	bucket *recordingBucket
	blocks *cache.Blocks
	reader *fetch.Reader
	plain  *fetch.Reader // no read-ahead, its own cache
	topic  metastore.Topic
	// objects[p] lists the objects holding partition p's batches, in
	// offset order, with the offset each starts at.
	objects map[int32][]objectAt
}

type objectAt struct {
	key  string
	base int64
}

func newRAFixture(t *testing.T, partitions int32, opts cache.Options) *raFixture {
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
	f := &raFixture{store: store, bucket: &recordingBucket{Bucket: lb}, topic: topic, objects: map[int32][]objectAt{}}
	f.blocks = cache.New(f.bucket, opts, nil)
	t.Cleanup(f.blocks.Close)
	f.reader = fetch.NewReader(store, nil, f.blocks)
	f.reader.SetReadAhead(fetch.ReadAheadOptions{Budget: 1 << 20})
	f.plain = fetch.NewReader(store, nil, cache.New(lb, cache.Options{BlockSize: opts.BlockSize}, nil))
	return f
}

// write commits one object holding, for each partition, batches batches
// of records records, as the write path does.
func (f *raFixture) write(t *testing.T, batches, records int) {
	t.Helper()
	f.writeTopic(t, f.topic, batches, records)
}

// writeTopic is write for any topic of the fixture's store; it returns
// the object, as the writer would insert it into the cache.
func (f *raFixture) writeTopic(t *testing.T, topic metastore.Topic, batches, records int) (string, []byte) {
	t.Helper()
	sb := segment.NewBuilder()
	var counts []int64
	for p := range topic.Partitions {
		for range batches {
			recs := make([]recordbatch.Record, records)
			for j := range recs {
				recs[j] = recordbatch.Record{Value: bytes.Repeat([]byte{byte(p), byte(j)}, 20), Timestamp: int64(j)}
			}
			sb.Add(topic.ID, topic.Name, p, recordbatch.Build(recordbatch.BuildOptions{}, recs...))
			counts = append(counts, int64(records))
		}
	}
	obj, placements := sb.Build()
	key := segment.NewKey()
	if err := f.bucket.Bucket.Put(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
	c := metastore.SegmentCommit{Object: key, Size: int64(len(obj))}
	for i, pl := range placements {
		h, _ := recordbatch.ParseHeader(obj[pl.ByteOffset : pl.ByteOffset+pl.ByteLength])
		c.Batches = append(c.Batches, metastore.BatchCommit{
			TopicID: pl.TopicID, Partition: pl.Partition, ByteOffset: pl.ByteOffset, ByteLength: pl.ByteLength,
			OffsetCount: counts[i], MaxTimestamp: h.MaxTimestamp, ProducerID: -1,
		})
	}
	if _, err := f.store.CommitSegment(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for p := range topic.Partitions {
		offs, err := f.store.Offsets(context.Background(), topic.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if topic.ID == f.topic.ID {
			f.objects[p] = append(f.objects[p], objectAt{key, offs.HighWatermark - int64(batches*records)})
		}
		f.reader.Invalidate(topic.ID, p)
		f.plain.Invalidate(topic.ID, p)
	}
	return key, obj
}

// consume reads every partition from offset 0 to its high watermark as a
// consumer's fetches would (ReadAhead for every partition, then a Read
// of each, ReadReady once the fetch has records), maxBytes per partition
// and fetch, and returns each
// partition's records. It checks that each fetch starts at the offset
// the last one ended at, and that the reads end at the high watermark.
func (f *raFixture) consume(t *testing.T, r *fetch.Reader, maxBytes int) map[int32][]byte {
	t.Helper()
	ctx := context.Background()
	next := map[int32]int64{}
	out := map[int32][]byte{}
	for fetches := 0; ; fetches++ {
		if fetches > 10_000 {
			t.Fatal("no end to the reads")
		}
		for p := range f.topic.Partitions {
			r.ReadAhead(ctx, f.topic.ID, p, next[p], maxBytes, fetch.ReadUncommitted)
		}
		progressed := false
		for p := range f.topic.Partitions {
			// As the handler does: once the fetch has records, the other
			// partitions do not wait for GETs.
			var res fetch.Partition
			var err error
			waiting := false
			if progressed {
				res, waiting, err = r.ReadReady(ctx, f.topic.ID, p, next[p], maxBytes, false, fetch.ReadUncommitted)
			} else {
				res, err = r.Read(ctx, f.topic.ID, p, next[p], maxBytes, true, fetch.ReadUncommitted)
			}
			if err != nil {
				t.Fatalf("read partition %d at %d: %v", p, next[p], err)
			}
			if len(res.Records) == 0 {
				if next[p] != res.HighWatermark && !waiting {
					t.Fatalf("partition %d: nothing read at %d, below the high watermark %d", p, next[p], res.HighWatermark)
				}
				continue
			}
			progressed = true
			batches := baseOffsets(t, res.Records)
			if batches[0] != next[p] {
				t.Fatalf("partition %d: a read at %d returned batches from %d", p, next[p], batches[0])
			}
			end := recordEnd(t, res.Records)
			if end > res.HighWatermark {
				t.Fatalf("partition %d: read past the high watermark %d (to %d)", p, res.HighWatermark, end)
			}
			out[p] = append(out[p], res.Records...)
			next[p] = end
		}
		if !progressed {
			return out
		}
	}
}

// Read-ahead changes what is fetched from the bucket, never what a read
// returns: consumers reading four partitions from the start, with and
// without read-ahead, get the same bytes, every batch once and in order
// (consume checks offsets are contiguous), up to the high watermark. And
// the reads that read-ahead prepared make no GET of their own: one GET
// per block at most.
func TestReadAheadServesEveryByteOnceInOrder(t *testing.T) {
	f := newRAFixture(t, 4, cache.Options{BlockSize: 1024, Capacity: 1 << 20, ReadAheadBytes: 1 << 20})
	for range 40 {
		f.write(t, 3, 5)
	}
	got := f.consume(t, f.reader, 700)
	want := f.consume(t, f.plain, 700)
	for p := range f.topic.Partitions {
		if len(got[p]) == 0 || !bytes.Equal(got[p], want[p]) {
			t.Fatalf("partition %d: %d bytes with read-ahead, %d without, or they differ", p, len(got[p]), len(want[p]))
		}
		offs, _ := f.store.Offsets(context.Background(), f.topic.ID, p)
		if n := int64(len(baseOffsets(t, got[p]))); n*5 != offs.HighWatermark {
			t.Fatalf("partition %d: %d batches of 5 records, high watermark %d", p, n, offs.HighWatermark)
		}
	}
	// Every block of every object was fetched once at most: GETs never
	// repeat a block, even though reads and read-ahead raced for them.
	seen := map[string]int{}
	for _, k := range f.bucket.objects() {
		seen[k]++
	}
	for _, o := range f.objects[0] {
		size, _, _ := f.store.ObjectSize(context.Background(), o.key)
		if blocks := int((size + 1023) / 1024); seen[o.key] > blocks {
			t.Fatalf("object %s of %d blocks: %d GETs", o.key, blocks, seen[o.key])
		}
	}
}

// Read-ahead for a read_committed consumer stops at the last stable
// offset: no object holding only batches at or past it is fetched,
// neither by the reads nor ahead of them.
func TestReadAheadStopsAtTheLastStableOffset(t *testing.T) {
	f := newRAFixture(t, 1, cache.Options{BlockSize: 512, Capacity: 1 << 20, ReadAheadBytes: 1 << 20})
	for range 30 {
		f.write(t, 1, 4)
	}
	lso := int64(40) // 10 objects below it, 20 at or past it
	txns := &txnStore{Store: f.store, openAt: lso}
	r := fetch.NewReader(txns, txns, f.blocks)
	r.SetReadAhead(fetch.ReadAheadOptions{Budget: 1 << 20})
	ctx := context.Background()
	var next int64
	for range 100 {
		r.ReadAhead(ctx, f.topic.ID, 0, next, 300, fetch.ReadCommitted)
		res, err := r.Read(ctx, f.topic.ID, 0, next, 300, true, fetch.ReadCommitted)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) == 0 {
			break
		}
		next = recordEnd(t, res.Records)
		if next > lso {
			t.Fatalf("read_committed returned records up to %d, past the last stable offset %d", next, lso)
		}
	}
	if next != lso {
		t.Fatalf("read_committed stopped at %d, want the last stable offset %d", next, lso)
	}
	// Read-ahead runs in the background: wait for it, then look at what
	// was fetched.
	testutil.WaitFor(t, 5*time.Second, "read-ahead to finish", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 0
	})
	past := map[string]bool{}
	for _, o := range f.objects[0] {
		if o.base >= lso {
			past[o.key] = true
		}
	}
	for _, k := range f.bucket.objects() {
		if past[k] {
			t.Fatalf("object %s, all at or past the last stable offset %d, was fetched", k, lso)
		}
	}
	if len(f.bucket.objects()) == 0 {
		t.Fatal("no GET at all: the test read nothing from the bucket")
	}
}

// Read-ahead is bounded by the cache's bounds however many partitions
// are read, and stops with the consumer: once its GETs end, nothing more
// is fetched until the next read.
func TestReadAheadIsBoundedAndStopsWithTheConsumer(t *testing.T) {
	f := newRAFixture(t, 30, cache.Options{BlockSize: 256, Capacity: 1 << 20, ReadAheadBytes: 4096, ReadAheadGets: 3})
	for range 10 {
		f.write(t, 2, 3)
	}
	f.bucket.mu.Lock()
	f.bucket.held, f.bucket.release = true, make(chan struct{})
	f.bucket.mu.Unlock()
	ctx := context.Background()
	for p := range f.topic.Partitions {
		f.reader.ReadAhead(ctx, f.topic.ID, p, 0, 1<<20, fetch.ReadUncommitted)
	}
	testutil.WaitFor(t, 5*time.Second, "read-ahead GETs to reach the bucket", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 3
	})
	if gets, n := f.blocks.ReadAheadInFlight(); gets > 3 || n > 4096 {
		t.Fatalf("%d read-ahead GETs of %d bytes in flight, bounds 3 and 4096", gets, n)
	}
	// The consumer stops: release the held GETs; read-ahead drains and
	// starts nothing new.
	f.bucket.mu.Lock()
	f.bucket.held = false
	close(f.bucket.release)
	f.bucket.mu.Unlock()
	testutil.WaitFor(t, 5*time.Second, "read-ahead to drain", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 0
	})
	n := len(f.bucket.objects())
	time.Sleep(100 * time.Millisecond)
	if after := len(f.bucket.objects()); after != n {
		t.Fatalf("%d GETs after the consumer stopped", after-n)
	}
	f.bucket.mu.Lock()
	most := f.bucket.maxInflight
	f.bucket.mu.Unlock()
	if most > 3 {
		t.Fatalf("%d GETs in flight at once, read-ahead bound 3 and no reads", most)
	}
}

// A consumer reading one large extent (a compacted one) a little at a
// time walks its batch headers from where its last read stopped, not
// from the extent's start: each block is fetched about once even when
// the cache holds only two, and a read that seeks back still returns the
// right batches.
func TestReadsInsideALargeExtentStartWhereTheLastStopped(t *testing.T) {
	f := newRAFixture(t, 1, cache.Options{BlockSize: 512, Capacity: 1024, ReadAheadBytes: -1})
	f.write(t, 100, 3) // one extent of 100 batches
	r := fetch.NewReader(f.store, nil, f.blocks)
	size, _, _ := f.store.ObjectSize(context.Background(), f.objects[0][0].key)
	blocks := int((size + 511) / 512)
	got := f.consume(t, r, 200)
	want := f.consume(t, f.plain, 200)
	if !bytes.Equal(got[0], want[0]) || len(baseOffsets(t, got[0])) != 100 {
		t.Fatalf("%d bytes read, %d expected, or they differ", len(got[0]), len(want[0]))
	}
	if gets := len(f.bucket.objects()); gets > blocks+2 {
		t.Fatalf("%d GETs to read an object of %d blocks once", gets, blocks)
	}
	// Seek back: the kept position (past the offset) is not used.
	res, err := r.Read(context.Background(), f.topic.ID, 0, 31, 200, true, fetch.ReadUncommitted)
	if err != nil {
		t.Fatal(err)
	}
	if b := baseOffsets(t, res.Records); len(b) == 0 || b[0] != 30 {
		t.Fatalf("read at 31 after the end: batches %v, want from 30", b)
	}
}

// The read-ahead windows of all partitions together stay within the
// budget: one fetch of eight partitions, each reading a little, fetches
// its own blocks and at most the budget more (plus a block per partition
// for rounding), however much history lies ahead.
func TestReadAheadWindowsShareTheBudget(t *testing.T) {
	f := newRAFixture(t, 8, cache.Options{BlockSize: 256, Capacity: 1 << 20, ReadAheadBytes: 1 << 20})
	for range 20 {
		f.write(t, 10, 1) // per object: 10 batches of ~100 bytes per partition
	}
	const budget = 4096
	r := fetch.NewReader(f.store, nil, f.blocks)
	r.SetReadAhead(fetch.ReadAheadOptions{Budget: budget})
	ctx := context.Background()
	var read int64
	for p := range f.topic.Partitions {
		r.ReadAhead(ctx, f.topic.ID, p, 0, 150, fetch.ReadUncommitted)
	}
	for p := range f.topic.Partitions {
		res, err := r.Read(ctx, f.topic.ID, p, 0, 150, true, fetch.ReadUncommitted)
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("partition %d: %d bytes, %v", p, len(res.Records), err)
		}
		read += int64(len(res.Records))
	}
	testutil.WaitFor(t, 5*time.Second, "read-ahead to finish", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 0
	})
	f.bucket.mu.Lock()
	got := f.bucket.bytes
	f.bucket.mu.Unlock()
	// What the reads needed: their blocks (each partition's read lies in
	// at most two); the rest is read-ahead.
	if limit := int64(8*2*256 + budget + 8*256); got > limit {
		t.Fatalf("one fetch of 8 partitions fetched %d bytes; at most %d with a read-ahead budget of %d", got, limit, budget)
	}
	if got <= int64(8*2*256) {
		t.Fatalf("one fetch fetched %d bytes: no read-ahead happened", got)
	}
}

// ReadReady does not wait for the bucket: it stops where a GET is
// bringing the bytes and says so, returning a prefix of what Read
// returns; with read-ahead off (no GET it could start) it reads.
func TestReadReadyDoesNotWaitForGets(t *testing.T) {
	f := newRAFixture(t, 1, cache.Options{BlockSize: 512, Capacity: 1 << 20, ReadAheadBytes: 1 << 20})
	for range 4 {
		f.write(t, 3, 4)
	}
	f.bucket.mu.Lock()
	f.bucket.held, f.bucket.release = true, make(chan struct{})
	f.bucket.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, waiting, err := f.reader.ReadReady(ctx, f.topic.ID, 0, 0, 1<<20, false, fetch.ReadUncommitted)
	if err != nil || !waiting || len(res.Records) != 0 || res.HighWatermark != 48 {
		t.Fatalf("ReadReady with nothing cached: %d bytes, waiting %v, hwm %d, %v; want nothing, waiting, 48", len(res.Records), waiting, res.HighWatermark, err)
	}
	f.bucket.mu.Lock()
	f.bucket.held = false
	close(f.bucket.release)
	f.bucket.mu.Unlock()
	full, err := f.reader.Read(ctx, f.topic.ID, 0, 0, 1<<20, true, fetch.ReadUncommitted)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "read-ahead to finish", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 0
	})
	res, waiting, err = f.reader.ReadReady(ctx, f.topic.ID, 0, 0, 1<<20, false, fetch.ReadUncommitted)
	if err != nil || waiting || !bytes.Equal(res.Records, full.Records) {
		t.Fatalf("ReadReady with everything cached: %d bytes (Read: %d), waiting %v, %v", len(res.Records), len(full.Records), waiting, err)
	}

	// Read-ahead off: nothing would bring the bytes, so it reads them.
	off := newRAFixture(t, 1, cache.Options{BlockSize: 512, Capacity: 1 << 20, ReadAheadBytes: -1})
	off.write(t, 3, 4)
	r := fetch.NewReader(off.store, nil, off.blocks)
	res, waiting, err = r.ReadReady(ctx, off.topic.ID, 0, 0, 1<<20, false, fetch.ReadUncommitted)
	if err != nil || waiting || len(baseOffsets(t, res.Records)) != 3 {
		t.Fatalf("ReadReady without read-ahead: %d bytes, waiting %v, %v; want the 3 batches", len(res.Records), waiting, err)
	}
}

// Partitions read at the live edge, whose blocks this agent holds (the
// writer inserted them), do not share the read-ahead budget: a partition
// caught up beside eight of them gets the whole budget, not a ninth.
func TestLiveEdgeReadsDoNotShrinkReadAhead(t *testing.T) {
	f := newRAFixture(t, 1, cache.Options{BlockSize: 256, Capacity: 1 << 20, ReadAheadBytes: 1 << 20})
	ctx := context.Background()
	live, err := f.store.CreateTopic(ctx, metastore.TopicSpec{Name: "live", Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		key, obj := f.writeTopic(t, live, 4, 2)
		f.blocks.Insert(key, obj)
		f.write(t, 4, 2)
	}
	const budget = 8 * 256
	r := fetch.NewReader(f.store, nil, f.blocks)
	r.SetReadAhead(fetch.ReadAheadOptions{Budget: budget})
	// The live partitions' consumers read a little at a time (their
	// reads stop before the data ends, and plan windows: all cached).
	for p := range live.Partitions {
		r.ReadAhead(ctx, live.ID, p, 0, 100, fetch.ReadUncommitted)
		if res, err := r.Read(ctx, live.ID, p, 0, 100, true, fetch.ReadUncommitted); err != nil || len(res.Records) == 0 {
			t.Fatalf("live partition %d: %d bytes, %v", p, len(res.Records), err)
		}
	}
	if gets := len(f.bucket.objects()); gets != 0 {
		t.Fatalf("%d GETs for reads of cached objects", gets)
	}
	r.ReadAhead(ctx, f.topic.ID, 0, 0, 100, fetch.ReadUncommitted)
	if _, err := r.Read(ctx, f.topic.ID, 0, 0, 100, true, fetch.ReadUncommitted); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "read-ahead to finish", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 0
	})
	f.bucket.mu.Lock()
	got := f.bucket.bytes
	f.bucket.mu.Unlock()
	// Its own block, then a window of the whole budget (a ninth of it
	// would be less than a block: no window at all).
	if got < budget {
		t.Fatalf("the partition being caught up fetched %d bytes; with the whole read-ahead budget of %d it fetches more", got, budget)
	}
}

// Partitions read in step through multi-partition objects stop in the
// same blocks and read the same blocks next: they share one window of
// the budget instead of a share each, so a catch-up of many partitions
// reads as far ahead as one would. One fetch of eight partitions whose
// first reads all stop in the first block reads ahead about the whole
// budget; counted as eight (a window of one block each) it would fetch
// a quarter of it.
func TestPartitionsInStepShareOneWindow(t *testing.T) {
	const block = 4096
	f := newRAFixture(t, 8, cache.Options{BlockSize: block, Capacity: 1 << 20, ReadAheadBytes: 1 << 20})
	for range 40 {
		f.write(t, 1, 1) // per object: one ~70-byte batch per partition, all in one block
	}
	const budget = 8 * block
	r := fetch.NewReader(f.store, nil, f.blocks)
	r.SetReadAhead(fetch.ReadAheadOptions{Budget: budget})
	ctx := context.Background()
	for p := range f.topic.Partitions {
		r.ReadAhead(ctx, f.topic.ID, p, 0, 100, fetch.ReadUncommitted)
	}
	for p := range f.topic.Partitions {
		if res, err := r.Read(ctx, f.topic.ID, p, 0, 100, true, fetch.ReadUncommitted); err != nil || len(res.Records) == 0 {
			t.Fatalf("partition %d: %d bytes, %v", p, len(res.Records), err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "read-ahead to finish", func() bool {
		gets, _ := f.blocks.ReadAheadInFlight()
		return gets == 0
	})
	f.bucket.mu.Lock()
	got := f.bucket.bytes
	f.bucket.mu.Unlock()
	objSize, _, _ := f.store.ObjectSize(ctx, f.objects[0][0].key)
	if objSize > block {
		t.Fatalf("objects of %d bytes: the test needs each in one block", objSize)
	}
	// The first object, then objects up to the budget (each object is
	// one block, smaller than a block's size: count objects).
	if objects := len(f.bucket.objects()); objects < budget/block {
		t.Fatalf("one fetch of 8 partitions in step fetched %d objects (%d bytes); with one shared window of %d bytes it fetches at least %d",
			objects, got, budget, budget/block)
	}
	if objects := len(f.bucket.objects()); objects > budget/block+2 {
		t.Fatalf("one fetch of 8 partitions in step fetched %d objects: more than the budget of %d blocks", objects, budget/block)
	}
}
