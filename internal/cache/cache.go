// Package cache keeps recently read parts of immutable bucket objects in
// memory, so that many readers of the same bytes (consumers at the live
// edge, a replay of history) cost one object-store GET per block instead of
// one per reader.
//
// Objects are split into fixed-size blocks. A read fetches only the blocks
// it is missing, with one ranged GET per run of consecutive missing blocks,
// and concurrent readers of a missing block share one GET. Objects that an
// agent has just written are inserted whole, so live-edge readers never GET
// them at all.
//
// The cache relies on objects being immutable and keys never being reused:
// it must never be used for objects that change, it never revalidates, and
// it never caches errors.
package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/objstore"
)

// Defaults for Options.
const (
	DefaultBlockSize = 4 << 20   // 4 MiB
	DefaultCapacity  = 256 << 20 // 256 MiB
)

// Options configure a Blocks cache. Zero values mean the defaults.
type Options struct {
	// BlockSize is the unit of caching and of fetching: reads are widened
	// to whole blocks.
	BlockSize int64
	// Capacity bounds the bytes of block data held; the least recently
	// used blocks are evicted first.
	Capacity int64
	// Fetch, if set, replaces the bucket GET for a missing run of blocks
	// [start, end) of an object of objectSize bytes: the agent uses it to
	// ask the block's owner in its zone instead of the bucket. It must
	// return exactly end-start bytes.
	Fetch func(ctx context.Context, key string, objectSize, start, end int64) ([]byte, error)
}

// Blocks is a block cache in front of a bucket. It is safe for concurrent
// use.
type Blocks struct {
	bucket    objstore.Bucket
	fetchFn   func(ctx context.Context, key string, objectSize, start, end int64) ([]byte, error)
	blockSize int64
	capacity  int64
	metrics   metrics

	mu       sync.Mutex
	lru      list.List // of *block; front is the most recently used
	blocks   map[blockID]*list.Element
	inflight map[blockID]*fetch
	size     int64 // bytes of block data held
}

type blockID struct {
	key   string
	index int64 // block number: byte offset / block size
}

type block struct {
	id   blockID
	data []byte // never modified, never handed out
	// objectSize is the object size the block was fetched for. A reader
	// that knows another size does not use it: the last block is clamped
	// to the size, so a wrong size would make a truncated block.
	objectSize int64
}

// fetch is one GET of a run of consecutive blocks [first, last]. Readers
// that need any of its blocks wait for done; blocks and err are set before
// done is closed and never change after.
type fetch struct {
	first, last int64
	done        chan struct{}
	blocks      [][]byte
	err         error
}

type metrics struct {
	hits   prometheus.Counter
	misses prometheus.Counter
	bytes  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_cache_hits_total",
			Help: "Blocks read without a new object-store GET: held in memory, or shared with a GET already in flight.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_cache_misses_total",
			Help: "Blocks fetched from the object store.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_cache_bytes",
			Help: "Bytes of block data held by the cache.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.bytes)
	}
	return m
}

// New returns an empty cache in front of b. Its metrics are registered
// with reg unless reg is nil.
func New(b objstore.Bucket, opts Options, reg prometheus.Registerer) *Blocks {
	if opts.BlockSize <= 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
	}
	fetchFn := opts.Fetch
	if fetchFn == nil {
		fetchFn = func(ctx context.Context, key string, _, start, end int64) ([]byte, error) {
			return b.GetRange(ctx, key, start, end-start)
		}
	}
	return &Blocks{
		bucket:    b,
		fetchFn:   fetchFn,
		blockSize: opts.BlockSize,
		capacity:  opts.Capacity,
		metrics:   newMetrics(reg),
		blocks:    make(map[blockID]*list.Element),
		inflight:  make(map[blockID]*fetch),
	}
}

// BlockSize is the cache's block size.
func (c *Blocks) BlockSize() int64 { return c.blockSize }

// ReadRange returns exactly length bytes of the object key from offset, in
// a new slice the caller may modify. objectSize must be the object's true
// size (from the metadata store); the last block is clamped to it.
func (c *Blocks) ReadRange(ctx context.Context, key string, objectSize, offset, length int64) ([]byte, error) {
	if objectSize < 0 || offset < 0 || length < 0 || offset > objectSize || length > objectSize-offset {
		return nil, fmt.Errorf("read %s: range %d+%d outside an object of %d bytes", key, offset, length, objectSize)
	}
	if length == 0 {
		return []byte{}, nil
	}
	first, last := offset/c.blockSize, (offset+length-1)/c.blockSize
	for {
		parts, retry, err := c.blocksFor(ctx, key, objectSize, first, last)
		if retry {
			// A GET we shared was canceled by its owner's context, not
			// ours: look again, and fetch ourselves if still missing.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s [%d, %d): %w", key, offset, offset+length, err)
		}
		return c.assemble(key, parts, first, offset, length)
	}
}

// blocksFor returns the data of blocks first..last of key, from memory,
// from GETs other readers have in flight, or from GETs it makes itself.
// retry is true when a shared GET failed only because its owner gave up.
func (c *Blocks) blocksFor(ctx context.Context, key string, objectSize, first, last int64) (parts [][]byte, retry bool, err error) {
	parts = make([][]byte, last-first+1)
	var own, shared []*fetch
	var hits, misses int

	c.mu.Lock()
	var run *fetch // the run of missing blocks being extended
	for i := first; i <= last; i++ {
		id := blockID{key, i}
		if el, ok := c.blocks[id]; ok {
			if b := el.Value.(*block); b.objectSize == objectSize {
				c.lru.MoveToFront(el)
				parts[i-first] = b.data
				hits++
				run = nil
				continue
			}
			// Fetched for another object size: only one of the two can be
			// right, and the metadata store's is the one readers use.
			c.remove(el)
		}
		if f, ok := c.inflight[id]; ok {
			if len(shared) == 0 || shared[len(shared)-1] != f {
				shared = append(shared, f)
			}
			hits++
			run = nil
			continue
		}
		misses++
		if run == nil {
			run = &fetch{first: i, done: make(chan struct{})}
			own = append(own, run)
		}
		run.last = i
		c.inflight[id] = run
	}
	c.mu.Unlock()
	c.metrics.hits.Add(float64(hits))
	c.metrics.misses.Add(float64(misses))

	// Our own GETs run even if a shared one fails, because others may be
	// waiting on them.
	if len(own) == 1 {
		c.get(ctx, key, objectSize, own[0])
	} else if len(own) > 1 {
		var wg sync.WaitGroup
		for _, f := range own {
			wg.Go(func() { c.get(ctx, key, objectSize, f) })
		}
		wg.Wait()
	}
	for _, f := range own {
		if f.err != nil {
			return nil, false, f.err
		}
		fill(parts, first, last, f)
	}
	for _, f := range shared {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if f.err != nil {
			ownerGaveUp := errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)
			if ownerGaveUp && ctx.Err() == nil {
				return nil, true, nil
			}
			return nil, false, f.err
		}
		fill(parts, first, last, f)
	}
	return parts, false, nil
}

// fill copies the fetched blocks that fall in [first, last] into parts.
func fill(parts [][]byte, first, last int64, f *fetch) {
	for i := max(first, f.first); i <= min(last, f.last); i++ {
		parts[i-first] = f.blocks[i-f.first]
	}
}

// get performs the GET for run f, caches the blocks on success, and
// releases everyone waiting for f, whatever happens.
func (c *Blocks) get(ctx context.Context, key string, objectSize int64, f *fetch) {
	defer func() {
		c.mu.Lock()
		for i := f.first; i <= f.last; i++ {
			delete(c.inflight, blockID{key, i})
		}
		if f.err == nil {
			for i, data := range f.blocks {
				c.add(blockID{key, f.first + int64(i)}, data, objectSize)
			}
		}
		c.mu.Unlock()
		close(f.done)
	}()
	// Until the GET returns, a panic must still release waiters.
	f.err = errors.New("block fetch did not complete")

	start := f.first * c.blockSize
	end := min((f.last+1)*c.blockSize, objectSize)
	data, err := c.fetchFn(ctx, key, objectSize, start, end)
	if err != nil {
		f.err = err
		return
	}
	if int64(len(data)) != end-start {
		f.err = fmt.Errorf("bucket returned %d bytes for range [%d, %d)", len(data), start, end)
		return
	}
	n := f.last - f.first + 1
	f.blocks = make([][]byte, n)
	for i := range n {
		part := data[i*c.blockSize : min((i+1)*c.blockSize, int64(len(data)))]
		if n > 1 || cap(part) != len(part) {
			// Own each block's memory, so that evicting one block frees it
			// and the cache's byte count is the truth.
			part = slices.Clone(part)
		}
		f.blocks[i] = part
	}
	f.err = nil
}

// assemble copies [offset, offset+length) out of the blocks first... into
// a new slice.
func (c *Blocks) assemble(key string, parts [][]byte, first, offset, length int64) ([]byte, error) {
	out := make([]byte, length)
	var n int64
	for i, data := range parts {
		blockStart := (first + int64(i)) * c.blockSize
		from := max(offset-blockStart, 0)
		to := min(offset+length-blockStart, c.blockSize)
		if to > int64(len(data)) {
			// Only possible if callers disagree about the object's size.
			return nil, fmt.Errorf("read %s: block %d holds %d bytes, need %d; wrong object size?",
				key, first+int64(i), len(data), to)
		}
		n += int64(copy(out[n:], data[from:to]))
	}
	return out, nil
}

// Insert caches a whole object, typically one this agent has just written,
// so readers never GET it. object is copied; the caller may reuse it.
func (c *Blocks) Insert(key string, object []byte) {
	size := int64(len(object))
	blocks := make([][]byte, 0, (size+c.blockSize-1)/c.blockSize)
	for start := int64(0); start < size; start += c.blockSize {
		blocks = append(blocks, slices.Clone(object[start:min(start+c.blockSize, size)]))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, data := range blocks {
		c.add(blockID{key, int64(i)}, data, size)
	}
}

// add caches one block of an object of objectSize bytes and evicts least
// recently used blocks until the cache fits its capacity. c.mu must be
// held.
func (c *Blocks) add(id blockID, data []byte, objectSize int64) {
	if el, ok := c.blocks[id]; ok {
		b := el.Value.(*block)
		c.size += int64(len(data)) - int64(len(b.data))
		b.data, b.objectSize = data, objectSize
		c.lru.MoveToFront(el)
	} else {
		c.blocks[id] = c.lru.PushFront(&block{id: id, data: data, objectSize: objectSize})
		c.size += int64(len(data))
	}
	for c.size > c.capacity {
		c.remove(c.lru.Back())
	}
	c.metrics.bytes.Set(float64(c.size))
}

// remove drops one cached block. c.mu must be held.
func (c *Blocks) remove(el *list.Element) {
	b := c.lru.Remove(el).(*block)
	delete(c.blocks, b.id)
	c.size -= int64(len(b.data))
	c.metrics.bytes.Set(float64(c.size))
}

// Size returns the bytes of block data held.
func (c *Blocks) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
