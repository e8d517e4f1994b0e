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
// with a commit never stores what the commit already made stale.
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
}

// invalidateAll marks every partition stale.
func (c *extentCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.parts {
		t.version++
		t.loaded, t.extents = false, nil
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
	t.version++
	t.loaded, t.extents = false, nil
}
