package fetch

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Read-ahead: a consumer reading history (a catch-up) would otherwise
// wait for one bucket GET after another, each of tens of milliseconds,
// and read at the speed of the bucket's latency rather than its
// bandwidth. So the reader fetches, in the background, the blocks a
// partition's reader will need next:
//
//   - before a fetch reads its partitions one by one, ReadAhead starts
//     the GETs every partition's share of the fetch needs, so that they
//     run in parallel across partitions instead of one after the other;
//   - after a Read, the blocks of the partition's next bytes, up to its
//     window, so that the consumer's next fetch finds them in memory.
//
// The first come before the second: what a fetch needs now is asked
// for before anything it may need next.
//
// What bounds it:
//
//   - the block cache's read-ahead bounds (bytes and GETs in flight):
//     when they are full, read-ahead is skipped, never queued, and
//     planned again by the next read;
//   - a window per partition, counted in bytes of the blocks it touches
//     (a block of a multi-partition object costs its whole size):
//     Budget divided by the groups of partitions whose read-ahead needed
//     GETs in the last few seconds (readers of the live edge, whose
//     blocks are cached, do not count), at most MaxWindow, and none at
//     all below one block. A group is the partitions whose reads stopped
//     in the same block: they read the same blocks next (a catch-up of
//     multi-partition objects reads its partitions in step), so their
//     windows overlap and are counted once; partitions of a compacted
//     object, each in its own blocks, are groups of one. The windows of
//     all groups together stay within about Budget;
//   - nothing runs by itself: read-ahead is planned only by a consumer's
//     fetch, so when consumers stop, it stops once the GETs already in
//     flight end (the cache's Close cancels those);
//   - it never plans past the read's limit: the high watermark, or the
//     last stable offset for read_committed;
//   - it costs the metadata store nothing at steady state: a Read leaves
//     the extents it looked up and did not reach in a cursor, from which
//     the next fetch of the partition plans. Only a partition read for
//     the first time (or after a seek) costs one more Extents lookup.
//
// It only fills the block cache: what a Read returns and in which order
// is decided by Read alone, from the metadata store, exactly as without
// read-ahead. Blocks owned by a zone peer are asked of that peer (the
// cache's fetch hook), so the one-owner-per-zone rule holds.

// ReadAheadOptions enable read-ahead (SetReadAhead).
type ReadAheadOptions struct {
	// Budget is the bytes of blocks the read-ahead windows of all
	// partitions may span together; it should not exceed the block
	// cache's read-ahead bytes. 0 disables read-ahead.
	Budget int64
	// MaxWindow bounds one partition's window (default 64 MiB).
	MaxWindow int64
}

const (
	defaultMaxWindow = 64 << 20
	// activeFor is how long a partition counts as read ahead after its
	// last read: the budget is shared among the partitions read
	// recently.
	activeFor = 5 * time.Second
	// maxCursors bounds the partitions whose next extents are kept.
	maxCursors = 4096
)

// readAhead is a Reader's read-ahead state: the cursors, and the groups
// of partitions read ahead recently.
type readAhead struct {
	budget, maxWindow int64

	mu      sync.Mutex
	cursors map[cursorKey]*cursor
	// groups counts the active cursors (read ahead within activeFor, as
	// of counted) by the block their reads stopped in.
	groups    map[groupKey]int
	counted   time.Time // when groups was last recounted
	now       func() time.Time
	blockSize int64
}

// groupKey is a block of an object: the partitions whose reads stopped
// in it read ahead through the same blocks and share a window's worth
// of the budget.
type groupKey struct {
	object string
	block  int64
}

type cursorKey struct {
	partitionKey
	iso Isolation
}

// cursor is what a Read left of a partition: the extents from where it
// stopped (at most one lookup's worth), and the limit it read under.
type cursor struct {
	extents []metastore.Extent
	limit   int64
	used    time.Time
	// fetched is when the partition's read-ahead last found blocks
	// missing: a partition counts among those sharing the budget only
	// while it needs GETs, not while it reads what is cached (the live
	// edge).
	fetched time.Time
	// group is the block the partition's read-ahead last started from;
	// inGroups is set while it is counted in readAhead.groups.
	group    groupKey
	inGroups bool
}

// SetReadAhead enables read-ahead with opts (or disables it when
// opts.Budget is 0). Call it before the reader is used.
func (r *Reader) SetReadAhead(opts ReadAheadOptions) {
	if opts.Budget <= 0 {
		r.ahead = nil
		return
	}
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = defaultMaxWindow
	}
	r.ahead = &readAhead{
		budget: opts.Budget, maxWindow: opts.MaxWindow,
		cursors: map[cursorKey]*cursor{}, groups: map[groupKey]int{}, now: time.Now, blockSize: r.blocks.BlockSize(),
	}
}

// ReadAhead starts, in the background, the GETs that a Read of the
// partition from offset of up to maxBytes will need (the window after
// them is the Read's to plan, once it has served them). It never waits
// for the bucket. It plans from the partition's cursor; without one it reads the extents
// (as the Read that follows would) unless the partition's tail is cached
// (a consumer at the live edge, whose data this agent holds). It does
// nothing when read-ahead is disabled.
func (r *Reader) ReadAhead(ctx context.Context, id metastore.TopicID, partition int32, offset int64, maxBytes int, iso Isolation) {
	ra := r.ahead
	if ra == nil || maxBytes <= 0 {
		return
	}
	key := cursorKey{partitionKey{id, partition}, iso}
	extents, limit, ok := ra.take(key, offset)
	if !ok {
		if _, _, _, cached := r.extents.get(id, partition, offset); cached {
			return
		}
		offs, tail, err := r.tail(ctx, id, partition, offset)
		if err != nil || len(tail) == 0 {
			return
		}
		extents, limit = tail, offs.HighWatermark
		if iso == ReadCommitted {
			limit = offs.LastStableOffset
		}
	}
	if r.prefetch(extents, -1, offset, limit, int64(maxBytes), 0) {
		// Counted among the partitions read ahead from now on, so that
		// the windows this fetch's Reads plan share the budget with it.
		ra.fetching(key, groupKey{extents[0].Object, bytePosition(extents[0], offset) / ra.blockSize})
	}
}

// readAheadAfter is called by Read once it has served rd: it keeps the
// extents the read did not reach as the partition's cursor and starts
// the GETs of the window that follows.
func (r *Reader) readAheadAfter(id metastore.TopicID, partition int32, iso Isolation, rd *read) {
	ra := r.ahead
	if ra == nil || len(rd.ahead) == 0 || rd.end >= rd.limit {
		return
	}
	key := cursorKey{partitionKey{id, partition}, iso}
	ra.keep(key, rd.ahead, rd.limit)
	if r.prefetch(rd.ahead, rd.aheadPos, rd.end, rd.limit, 0, ra.window()) {
		ra.fetching(key, groupKey{rd.ahead[0].Object, rd.aheadPos / ra.blockSize})
	}
}

// fetching records that the partition's read-ahead, starting in block
// g, found blocks missing: it counts in g's group from now on.
func (ra *readAhead) fetching(key cursorKey, g groupKey) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	now := ra.now()
	c := ra.cursorFor(key)
	ra.ungroup(c)
	c.group, c.inGroups = g, true
	ra.groups[g]++
	c.fetched, c.used = now, now
}

// ungroup removes c from its group's count. ra.mu must be held.
func (ra *readAhead) ungroup(c *cursor) {
	if !c.inGroups {
		return
	}
	c.inGroups = false
	if ra.groups[c.group]--; ra.groups[c.group] <= 0 {
		delete(ra.groups, c.group)
	}
}

func (ra *readAhead) isActive(c *cursor, now time.Time) bool {
	return !c.fetched.IsZero() && now.Sub(c.fetched) < activeFor
}

// cursorFor returns the partition's cursor, made if it has none. ra.mu
// must be held.
func (ra *readAhead) cursorFor(key cursorKey) *cursor {
	c := ra.cursors[key]
	if c == nil {
		if len(ra.cursors) >= maxCursors {
			ra.sweep(true)
		}
		c = &cursor{}
		ra.cursors[key] = c
	}
	return c
}

// take returns the cursor's extents from the one holding offset, if the
// cursor holds offset.
func (ra *readAhead) take(key cursorKey, offset int64) ([]metastore.Extent, int64, bool) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	c := ra.cursors[key]
	if c == nil || len(c.extents) == 0 || offset < c.extents[0].BaseOffset || offset >= c.extents[len(c.extents)-1].EndOffset {
		return nil, 0, false
	}
	c.used = ra.now()
	i := 0
	for c.extents[i].EndOffset <= offset {
		i++
	}
	return c.extents[i:], c.limit, true
}

// keep stores a partition's cursor.
func (ra *readAhead) keep(key cursorKey, extents []metastore.Extent, limit int64) {
	// Read's extents may be the extent cache's: keep a copy of our own.
	extents = slices.Clone(extents[:min(len(extents), extentsPerLookup)])
	ra.mu.Lock()
	defer ra.mu.Unlock()
	c := ra.cursorFor(key)
	c.extents, c.limit, c.used = extents, limit, ra.now()
}

// window returns a partition's window: the budget shared among the
// groups of partitions whose read-ahead needed GETs recently, at most
// maxWindow; 0 when the share is less than a block.
func (ra *readAhead) window() int64 {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	now := ra.now()
	if now.Sub(ra.counted) >= time.Second {
		ra.sweep(false)
		ra.counted = now
	}
	w := min(ra.budget/int64(max(len(ra.groups), 1)), ra.maxWindow)
	if w < ra.blockSize {
		return 0
	}
	return w
}

// sweep drops cursors unused for activeFor and counts the active ones
// by group; when full it drops one more (any) so that a new cursor
// fits. ra.mu must be held.
func (ra *readAhead) sweep(full bool) {
	now := ra.now()
	clear(ra.groups)
	for k, c := range ra.cursors {
		c.inGroups = false
		if now.Sub(c.used) >= activeFor {
			delete(ra.cursors, k)
			continue
		}
		if ra.isActive(c, now) {
			c.inGroups = true
			ra.groups[c.group]++
		}
	}
	if full && len(ra.cursors) >= maxCursors {
		for k, c := range ra.cursors {
			ra.ungroup(c)
			delete(ra.cursors, k)
			break
		}
	}
}

// prefetch starts the GETs of the partition's bytes from extents[0]:
// from byte pos of it (or, when pos < 0, from offset's estimated
// position), first demand bytes of the partition, then blocks up to
// window bytes of blocks; never past limit. It stops when the cache's
// read-ahead bounds are full. It reports whether any of those blocks
// was missing from the cache.
func (r *Reader) prefetch(extents []metastore.Extent, pos, offset, limit, demand, window int64) (missing bool) {
	bs := r.ahead.blockSize
	var (
		spanned   int64 // bytes of the blocks the window touched
		lastKey   string
		lastBlock int64 = -1
	)
	for i, e := range extents {
		if e.BaseOffset >= limit || (demand <= 0 && spanned >= window) {
			return
		}
		start, end := e.ByteOffset, e.ByteOffset+e.ByteLength
		if i == 0 {
			start = pos
			if pos < 0 {
				start = bytePosition(e, offset)
			}
		}
		if e.EndOffset > limit {
			// The limit (a last stable offset) falls inside the extent:
			// stop at its estimated position, rounded to a block anyway.
			end = bytePosition(e, limit)
		}
		if start >= end {
			continue
		}
		if demand > 0 {
			n := min(demand, end-start)
			if !r.blocks.Cached(e.Object, e.ObjectSize, start, n) {
				missing = true
				if !r.blocks.Prefetch(e.Object, e.ObjectSize, start, n) {
					return
				}
			}
			demand -= n
			lastKey, lastBlock = e.Object, (start+n-1)/bs
			start += n
			if start >= end {
				continue
			}
		}
		// The window: count the blocks this piece adds, and stop at the
		// block where the window is full. The block the read stopped in
		// is not counted: the consumer is reading it now.
		first := start / bs
		if e.Object == lastKey && first == lastBlock || i == 0 && pos >= 0 {
			first++ // already counted, or being read
		}
		last := (end - 1) / bs
		if first <= last {
			room := (window - spanned) / bs
			if room <= 0 {
				return
			}
			if last-first+1 > room {
				last = first + room - 1
				end = min(end, (last+1)*bs)
			}
			spanned += (last - first + 1) * bs
		}
		if !r.blocks.Cached(e.Object, e.ObjectSize, start, end-start) {
			missing = true
			if !r.blocks.Prefetch(e.Object, e.ObjectSize, start, end-start) {
				return
			}
		}
		lastKey, lastBlock = e.Object, (end-1)/bs
	}
	return missing
}

// bytePosition estimates where offset lies in e's bytes, assuming
// batches of equal size per offset: exact at the extent's ends, close
// enough inside it to choose blocks.
func bytePosition(e metastore.Extent, offset int64) int64 {
	switch {
	case offset <= e.BaseOffset:
		return e.ByteOffset
	case offset >= e.EndOffset:
		return e.ByteOffset + e.ByteLength
	}
	return e.ByteOffset + (offset-e.BaseOffset)*e.ByteLength/(e.EndOffset-e.BaseOffset)
}
