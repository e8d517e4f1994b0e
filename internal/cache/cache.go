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
	"cmp"
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
	// ReadAheadBytes bounds the bytes of read-ahead GETs (Prefetch) in
	// flight at once; 0 means half of Capacity, negative disables
	// read-ahead.
	ReadAheadBytes int64
	// ReadAheadGets bounds the read-ahead GETs in flight at once
	// (default DefaultReadAheadGets).
	ReadAheadGets int
	// ReadAheadRunBytes bounds one read-ahead GET (default
	// DefaultReadAheadRun, at least one block): longer runs of missing
	// blocks are split into GETs that run in parallel.
	ReadAheadRunBytes int64
}

// DefaultReadAheadGets is the default bound on concurrent read-ahead GETs.
const DefaultReadAheadGets = 16

// DefaultReadAheadRun bounds one read-ahead GET: runs of missing blocks
// longer than this are split into several GETs that run in parallel.
// Ranged GETs of 8–16 MiB are what object stores serve best, and 16 MiB
// is the peer protocol's default limit on one request.
const DefaultReadAheadRun = 16 << 20

// maxReadAttempts bounds how often a read starts over because a GET it
// shared was given up by its owner (a canceled reader, a failed or
// stopped read-ahead).
const maxReadAttempts = 8

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
	// landed is closed, and replaced, each time a GET ends (Landed).
	landed chan struct{}

	// Read-ahead: GETs started by Prefetch run on raCtx, counted in
	// raGets and raBytes (under mu) against their bounds; Close cancels
	// them and waits for their goroutines.
	raMaxBytes int64 // 0: read-ahead disabled
	raMaxGets  int
	raMaxRun   int64 // blocks per read-ahead GET
	raGets     int
	raBytes    int64
	raClosed   bool
	raCtx      context.Context
	raCancel   context.CancelFunc
	raWG       sync.WaitGroup
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
	// readAhead is set while a block fetched by read-ahead has not been
	// read yet; evicting it then counts as wasted read-ahead. spared is
	// set once eviction has passed it over for that reason.
	readAhead bool
	spared    bool
}

// fetch is one GET of a run of consecutive blocks [first, last]. Readers
// that need any of its blocks wait for done; blocks and err are set before
// done is closed and never change after.
type fetch struct {
	first, last int64
	done        chan struct{}
	blocks      [][]byte
	err         error
	// readAhead marks a GET started by Prefetch: best effort, so a
	// reader that shared it and saw it fail reads the block itself.
	readAhead bool
}

type metrics struct {
	hits   prometheus.Counter
	misses prometheus.Counter
	bytes  prometheus.Gauge
	// read-ahead: blocks fetched, blocks evicted before any read used
	// them, and Prefetch calls that found the bounds full.
	raBlocks  prometheus.Counter
	raUnused  prometheus.Counter
	raSkipped prometheus.Counter
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
	m.raBlocks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "floe_cache_readahead_blocks_total",
		Help: "Blocks fetched ahead of readers (read-ahead), also counted in floe_cache_misses_total.",
	})
	m.raUnused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "floe_cache_readahead_unused_total",
		Help: "Blocks fetched by read-ahead and evicted before any reader used them (wasted GETs).",
	})
	m.raSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "floe_cache_readahead_skipped_total",
		Help: "Read-ahead requests not (fully) started because the read-ahead bounds on bytes or GETs in flight were reached.",
	})
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.bytes, m.raBlocks, m.raUnused, m.raSkipped)
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
	raBytes := opts.ReadAheadBytes
	if raBytes == 0 {
		raBytes = opts.Capacity / 2
	}
	raBytes = max(raBytes, 0)
	raGets := opts.ReadAheadGets
	if raGets <= 0 {
		raGets = DefaultReadAheadGets
	}
	c := &Blocks{
		bucket:     b,
		fetchFn:    fetchFn,
		blockSize:  opts.BlockSize,
		capacity:   opts.Capacity,
		metrics:    newMetrics(reg),
		blocks:     make(map[blockID]*list.Element),
		inflight:   make(map[blockID]*fetch),
		landed:     make(chan struct{}),
		raMaxBytes: raBytes,
		raMaxGets:  raGets,
		raMaxRun:   max(cmp.Or(opts.ReadAheadRunBytes, DefaultReadAheadRun)/opts.BlockSize, 1),
	}
	c.raCtx, c.raCancel = context.WithCancel(context.Background())
	return c
}

// BlockSize is the cache's block size.
func (c *Blocks) BlockSize() int64 { return c.blockSize }

// ReadRange returns exactly length bytes of the object key from offset, in
// a new slice the caller may modify. objectSize must be the object's true
// size (from the metadata store); the last block is clamped to it.
func (c *Blocks) ReadRange(ctx context.Context, key string, objectSize, offset, length int64) ([]byte, error) {
	if err := checkRange(key, objectSize, offset, length); err != nil {
		return nil, err
	}
	return c.AppendRange(ctx, make([]byte, 0, length), key, objectSize, offset, length)
}

// AppendRange appends exactly length bytes of the object key from offset
// to dst and returns the extended slice: the bytes are copied once, from
// the cached blocks to dst. On error dst is returned unchanged in length.
// objectSize is as for ReadRange.
func (c *Blocks) AppendRange(ctx context.Context, dst []byte, key string, objectSize, offset, length int64) ([]byte, error) {
	if err := checkRange(key, objectSize, offset, length); err != nil {
		return dst, err
	}
	if length == 0 {
		return dst, nil
	}
	first, last := offset/c.blockSize, (offset+length-1)/c.blockSize
	for attempt := 1; ; attempt++ {
		parts, retry, err := c.blocksFor(ctx, key, objectSize, first, last)
		if retry && attempt < maxReadAttempts {
			// A GET we shared was given up by its owner (a canceled
			// reader, a failed read-ahead), not by us: look again, and
			// fetch ourselves if still missing.
			continue
		}
		if err == nil && retry {
			err = errors.New("blocks given up by other readers too often")
		}
		if err != nil {
			return dst, fmt.Errorf("read %s [%d, %d): %w", key, offset, offset+length, err)
		}
		return c.assemble(dst, key, parts, first, offset, length)
	}
}

func checkRange(key string, objectSize, offset, length int64) error {
	if objectSize < 0 || offset < 0 || length < 0 || offset > objectSize || length > objectSize-offset {
		return fmt.Errorf("read %s: range %d+%d outside an object of %d bytes", key, offset, length, objectSize)
	}
	return nil
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
				b.readAhead = false
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
			ownerGaveUp := f.readAhead || errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)
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
				c.add(blockID{key, f.first + int64(i)}, data, objectSize, f.readAhead)
			}
		}
		close(c.landed)
		c.landed = make(chan struct{})
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

// assemble appends [offset, offset+length) out of the blocks first... to
// dst.
func (c *Blocks) assemble(dst []byte, key string, parts [][]byte, first, offset, length int64) ([]byte, error) {
	n := len(dst)
	dst = slices.Grow(dst, int(length))
	for i, data := range parts {
		blockStart := (first + int64(i)) * c.blockSize
		from := max(offset-blockStart, 0)
		to := min(offset+length-blockStart, c.blockSize)
		if to > int64(len(data)) {
			// Only possible if callers disagree about the object's size.
			return dst[:n], fmt.Errorf("read %s: block %d holds %d bytes, need %d; wrong object size?",
				key, first+int64(i), len(data), to)
		}
		dst = append(dst, data[from:to]...)
	}
	return dst, nil
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
		c.add(blockID{key, int64(i)}, data, size, false)
	}
}

// add caches one block of an object of objectSize bytes and evicts least
// recently used blocks until the cache fits its capacity. readAhead says
// a read-ahead fetched it and no reader has used it yet. c.mu must be
// held.
func (c *Blocks) add(id blockID, data []byte, objectSize int64, readAhead bool) {
	if el, ok := c.blocks[id]; ok {
		b := el.Value.(*block)
		c.size += int64(len(data)) - int64(len(b.data))
		b.data, b.objectSize, b.readAhead, b.spared = data, objectSize, readAhead, false
		c.lru.MoveToFront(el)
	} else {
		c.blocks[id] = c.lru.PushFront(&block{id: id, data: data, objectSize: objectSize, readAhead: readAhead})
		c.size += int64(len(data))
	}
	for c.size > c.capacity {
		el := c.lru.Back()
		if b := el.Value.(*block); b.readAhead && !b.spared {
			// Fetched ahead and not read yet: its reader is coming, while
			// the blocks readers have moved past are what LRU order keeps
			// instead. One second chance, so each block is passed over
			// at most once and the loop ends.
			b.spared = true
			c.lru.MoveToFront(el)
			continue
		}
		c.remove(el)
	}
	c.metrics.bytes.Set(float64(c.size))
}

// remove drops one cached block. c.mu must be held.
func (c *Blocks) remove(el *list.Element) {
	b := c.lru.Remove(el).(*block)
	delete(c.blocks, b.id)
	c.size -= int64(len(b.data))
	if b.readAhead {
		c.metrics.raUnused.Inc()
	}
	c.metrics.bytes.Set(float64(c.size))
}

// Size returns the bytes of block data held.
func (c *Blocks) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Prefetch starts, in the background, the GETs of the blocks of
// [offset, offset+length) of key that are neither cached nor already
// being fetched, so that a later read finds them in memory. It never
// waits for the network: a run is started only while the read-ahead
// bounds (bytes and GETs in flight) allow it, and Prefetch reports
// whether every missing block was started, so that a caller planning
// further ahead can stop. Runs longer than ReadAheadRunBytes are split
// into GETs that run in parallel. The GETs go through the cache's fetch hook, so
// a block owned by a zone peer is asked of that peer.
//
// A read-ahead GET that fails is forgotten: nothing is cached and a
// reader that was waiting for it fetches the block itself. Close stops
// the GETs in flight.
func (c *Blocks) Prefetch(key string, objectSize, offset, length int64) bool {
	if c.raMaxBytes <= 0 || checkRange(key, objectSize, offset, length) != nil {
		return false
	}
	if length == 0 {
		return true
	}
	first, last := offset/c.blockSize, (offset+length-1)/c.blockSize
	var started []*fetch
	complete := true
	c.mu.Lock()
	var run *fetch
	var runBytes int64
	for i := first; i <= last; i++ {
		id := blockID{key, i}
		_, fetching := c.inflight[id]
		if el, ok := c.blocks[id]; fetching || ok && el.Value.(*block).objectSize == objectSize {
			if run != nil {
				c.startReadAhead(key, objectSize, run, runBytes)
				run = nil
			}
			continue
		}
		size := min((i+1)*c.blockSize, objectSize) - i*c.blockSize
		if run != nil && run.last-run.first+1 < c.raMaxRun && c.raBytes+size <= c.raMaxBytes {
			run.last = i
			runBytes += size
			c.raBytes += size
			c.inflight[id] = run
			continue
		}
		if run != nil {
			c.startReadAhead(key, objectSize, run, runBytes)
			run = nil
		}
		if c.raClosed || c.raGets >= c.raMaxGets || c.raBytes+size > c.raMaxBytes {
			complete = false
			break
		}
		run = &fetch{first: i, last: i, done: make(chan struct{}), readAhead: true}
		runBytes = size
		c.raGets++
		c.raBytes += size
		c.inflight[id] = run
		started = append(started, run)
	}
	if run != nil {
		c.startReadAhead(key, objectSize, run, runBytes)
	}
	c.mu.Unlock()
	if !complete {
		c.metrics.raSkipped.Inc()
	}
	var blocks int64
	for _, f := range started {
		blocks += f.last - f.first + 1
	}
	c.metrics.misses.Add(float64(blocks))
	c.metrics.raBlocks.Add(float64(blocks))
	return complete
}

// startReadAhead runs the GET of read-ahead run f, whose bytes are
// already counted in raBytes and which is already counted in raGets and
// registered in inflight. c.mu must be held.
func (c *Blocks) startReadAhead(key string, objectSize int64, f *fetch, bytes int64) {
	c.raWG.Add(1)
	go func() {
		defer c.raWG.Done()
		c.get(c.raCtx, key, objectSize, f)
		c.mu.Lock()
		c.raGets--
		c.raBytes -= bytes
		c.mu.Unlock()
	}()
}

// Cached reports whether every block of [offset, offset+length) of key
// is in memory, so that reading it makes no GET and waits for none. It
// changes nothing (no LRU move, no metric).
func (c *Blocks) Cached(key string, objectSize, offset, length int64) bool {
	if checkRange(key, objectSize, offset, length) != nil {
		return false
	}
	if length == 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := offset / c.blockSize; i <= (offset+length-1)/c.blockSize; i++ {
		el, ok := c.blocks[blockID{key, i}]
		if !ok || el.Value.(*block).objectSize != objectSize {
			return false
		}
	}
	return true
}

// Landed returns a channel that is closed when the next GET of the cache
// ends, whether it cached its blocks or failed: a reader that found
// several ranges on their way (Prefetch, Cached) takes it before looking
// and waits on it for whichever comes first.
func (c *Blocks) Landed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.landed
}

// ReadAheadInFlight returns the read-ahead GETs and bytes in flight.
func (c *Blocks) ReadAheadInFlight() (gets int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raGets, c.raBytes
}

// Close stops read-ahead: no new read-ahead starts, the GETs in flight
// are canceled, and Close returns once their goroutines have ended.
// Reads keep working. It may be called more than once.
func (c *Blocks) Close() {
	c.mu.Lock()
	c.raClosed = true
	c.mu.Unlock()
	c.raCancel()
	c.raWG.Wait()
}
