package embedded

import (
	"github.com/floe-io/floe/internal/metastore"
)

// extentSlabs hands out the arrays of a store in memory's folded extents
// (kv.PutPair keeps them as they are) from one slab per partition, many
// extents to an allocation. The extents are most of the state's keys, and
// the garbage collector marks every live object at each cycle: as one
// small allocation each they took a third of the control plane's CPU
// (docs/benchmarks.md). A slab holds consecutive extents of one
// partition, which retention and compaction remove in runs, so a slab is
// freed when its range is; what one pins is bounded by its size.
// Compaction's output is not put in slabs: it outlives the raw extents
// around it, and a slab of dead extents would stay for each. Part of
// a slab handed out is never written again (a rolled-back transaction
// leaves its part unused), so the states that readers hold stay as they
// were. Used by the writer alone, in its transactions.
type extentSlabs struct {
	tail map[partitionKey][]byte // each partition's current slab, its free part after len
}

// Slab sizes: each partition's first slab is small (a topic of many
// quiet partitions), then each is twice the last, up to maxSlab.
const (
	minSlab = 1 << 10
	maxSlab = 16 << 10
)

func newExtentSlabs() *extentSlabs {
	return &extentSlabs{tail: map[partitionKey][]byte{}}
}

// pair is pk.extentPair(e), in the partition's slab. nil slabs (a store
// on file, where the array is copied at commit) allocate it alone.
func (s *extentSlabs) pair(pk partitionKey, e *metastore.Extent) []byte {
	n := extentKeyLen + extentValueHeader + len(e.Object)
	if s == nil || n > maxSlab/8 {
		return pk.extentPair(e)
	}
	buf := s.tail[pk]
	if cap(buf)-len(buf) < n {
		buf = make([]byte, 0, min(max(2*cap(buf), minSlab), maxSlab))
	}
	kv := buf[len(buf) : len(buf) : len(buf)+n]
	s.tail[pk] = buf[:len(buf)+n]
	return appendExtent(pk.appendExtentKey(kv, e.BaseOffset), e)
}

// dropTopic forgets a deleted topic's slabs (its extents are gone).
func (s *extentSlabs) dropTopic(id metastore.TopicID) {
	if s == nil {
		return
	}
	for pk := range s.tail {
		if pk.id == id {
			delete(s.tail, pk)
		}
	}
}
