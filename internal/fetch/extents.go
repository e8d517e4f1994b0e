package fetch

import (
	"sync"

	"github.com/floe-io/floe/internal/metastore"
)

// extentCache keeps, for each partition read recently, its offsets and its
// extents from some offset up to the high watermark, as last read from the
// metadata store. Consumers at the live edge then cost one store read per
// commit of their partition, not one per fetch.
//
// A commit invalidates the partitions it touched (Invalidate); the next
// reader reloads them. Each partition has a version so that a load racing
// with a commit never stores what the commit already made stale. Ending a
// transaction is such a commit (its markers' partitions are announced), so
// the cached last stable offset moves with it.
//
// A cached tail may also hold aborted transaction index entries, loaded by
// the first read_committed read that returned a transactional batch from
// it, so that the other consumers of the partition's live edge on this
// agent do not read them again.
type extentCache struct {
	mu    sync.Mutex
	parts map[partitionKey]*cachedTail
}

type partitionKey struct {
	id        metastore.TopicID
	partition int32
}

type cachedTail struct {
	version uint64
	loaded  bool
	offs    metastore.PartitionOffsets
	extents []metastore.Extent // contiguous, ending at offs.HighWatermark
	// aborted holds every aborted index entry overlapping [abortedFrom,
	// abortedTo); abortedTo is 0 when none are cached. Entries for a
	// range below a last stable offset are final (a transaction still
	// open then starts at or after it), so they stay valid whatever
	// commit comes later; they are dropped with the tail only to bound
	// memory.
	aborted                []metastore.AbortedTxn
	abortedFrom, abortedTo int64
}

func newExtentCache() *extentCache {
	return &extentCache{parts: map[partitionKey]*cachedTail{}}
}

// get returns the cached offsets and the extents that hold from onwards,
// or ok=false with the version to pass to put after loading.
func (c *extentCache) get(id metastore.TopicID, partition int32, from int64) (offs metastore.PartitionOffsets, extents []metastore.Extent, version uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := partitionKey{id, partition}
	t := c.parts[k]
	if t == nil {
		// Recorded now, so that a commit announced while the caller
		// loads moves the version and its put is dropped.
		t = &cachedTail{}
		c.parts[k] = t
	}
	if !t.loaded {
		return offs, nil, t.version, false
	}
	if from > t.offs.HighWatermark {
		// Past what this agent last saw. Another agent may have committed
		// more, its notice still on the way; only the store can say the
		// offset is out of range, which makes a consumer reset.
		return offs, nil, t.version, false
	}
	if from == t.offs.HighWatermark || from < t.offs.LogStartOffset {
		// Nothing to read yet, or below the log start: the offsets
		// alone answer.
		return t.offs, nil, t.version, true
	}
	if len(t.extents) == 0 || from < t.extents[0].BaseOffset {
		return offs, nil, t.version, false
	}
	i := 0
	for i < len(t.extents) && t.extents[i].EndOffset <= from {
		i++
	}
	return t.offs, t.extents[i:], t.version, true
}

// offsets returns a partition's cached offsets, or ok=false with the
// version to pass to put after reading them.
func (c *extentCache) offsets(id metastore.TopicID, partition int32) (offs metastore.PartitionOffsets, version uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := partitionKey{id, partition}
	t := c.parts[k]
	if t == nil {
		t = &cachedTail{} // recorded now, as in get
		c.parts[k] = t
	}
	return t.offs, t.version, t.loaded
}

// put stores a partition's tail loaded at version; it is dropped if a
// commit invalidated the partition meanwhile.
func (c *extentCache) put(id metastore.TopicID, partition int32, version uint64, offs metastore.PartitionOffsets, extents []metastore.Extent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := partitionKey{id, partition}
	t := c.parts[k]
	if t == nil {
		t = &cachedTail{}
		c.parts[k] = t
	}
	if t.version != version {
		return
	}
	t.loaded, t.offs, t.extents = true, offs, extents
	t.aborted, t.abortedFrom, t.abortedTo = nil, 0, 0
}

// abortedTxns returns the cached aborted entries overlapping [from, to),
// or ok=false if the cache does not cover that range.
func (c *extentCache) abortedTxns(id metastore.TopicID, partition int32, from, to int64) (out []metastore.AbortedTxn, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.parts[partitionKey{id, partition}]
	if t == nil || !t.loaded || from < t.abortedFrom || to > t.abortedTo {
		return nil, false
	}
	out = []metastore.AbortedTxn{}
	for _, a := range t.aborted {
		if a.LastOffset >= from && a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out, true
}

// putAborted caches the aborted entries overlapping [from, to), read from
// the store after offsets whose last stable offset was at least to, with
// the partition's tail; without a cached tail it keeps nothing.
func (c *extentCache) putAborted(id metastore.TopicID, partition int32, from, to int64, aborted []metastore.AbortedTxn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.parts[partitionKey{id, partition}]
	if t == nil || !t.loaded || from >= to {
		return
	}
	t.aborted, t.abortedFrom, t.abortedTo = aborted, from, to
}

// invalidateAll marks every partition stale.
func (c *extentCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.parts {
		t.drop()
	}
}

// invalidate marks a partition stale.
func (c *extentCache) invalidate(id metastore.TopicID, partition int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := partitionKey{id, partition}
	t := c.parts[k]
	if t == nil {
		return
	}
	t.drop()
}

// invalidateUnlessAt drops a partition's tail unless it is loaded with
// offsets whose high watermark plus log start offset is seen: then it is
// what a read of the store that found seen would load.
func (c *extentCache) invalidateUnlessAt(id metastore.TopicID, partition int32, seen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.parts[partitionKey{id, partition}]
	if t == nil || t.loaded && t.offs.HighWatermark+t.offs.LogStartOffset == seen {
		return
	}
	t.drop()
}

// drop marks the tail stale and frees what it held.
func (t *cachedTail) drop() {
	t.version++
	t.loaded, t.extents = false, nil
	t.aborted, t.abortedFrom, t.abortedTo = nil, 0, 0
}
