package embedded

import (
	"github.com/floe-io/floe/internal/kv"
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
	tail map[partitionKey]*partitionSlab
}

// partitionSlab is a partition's current slab, its free part after len,
// and where its last extent went in the extents bucket: the next goes
// right after it (kv.Hint).
type partitionSlab struct {
	buf  []byte
	hint kv.Hint
}

// Slab sizes: each partition's first slab is small (a topic of many
// quiet partitions), then each is twice the last, up to maxSlab.
const (
	minSlab = 1 << 10
	maxSlab = 16 << 10
)

func newExtentSlabs() *extentSlabs {
	return &extentSlabs{tail: map[partitionKey]*partitionSlab{}}
}

// put stores extent e of partition pk in extents, built in the
// partition's slab. nil slabs (a store on file, where the array is
// copied at commit) build it alone.
func (s *extentSlabs) put(extents kv.Bucket, pk partitionKey, e *metastore.Extent) error {
	n := extentKeyLen + extentValueHeader + len(e.Object)
	if s == nil || n > maxSlab/8 {
		return kv.PutPair(extents, pk.extentPair(e), extentKeyLen)
	}
	ps := s.tail[pk]
	if ps == nil {
		ps = &partitionSlab{}
		s.tail[pk] = ps
	}
	if cap(ps.buf)-len(ps.buf) < n {
		ps.buf = make([]byte, 0, min(max(2*cap(ps.buf), minSlab), maxSlab))
	}
	pair := ps.buf[len(ps.buf) : len(ps.buf) : len(ps.buf)+n]
	ps.buf = ps.buf[:len(ps.buf)+n]
	pair = appendExtent(pk.appendExtentKey(pair, e.BaseOffset), e)
	return kv.PutPairHint(extents, pair, extentKeyLen, &ps.hint)
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
