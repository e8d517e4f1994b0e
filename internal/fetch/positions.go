package fetch

import (
	"sync"

	"github.com/floe-io/floe/internal/metastore"
)

// positions remembers, per partition, where the last Read stopped inside
// an extent: the byte position and base offset of the first batch it did
// not return. Reading an extent from an offset inside it otherwise means
// walking its batch headers from the extent's start, and a compacted
// extent holds tens of MiB: a consumer reading it 1 MiB per fetch would
// touch every block from the start each time, and with many partitions
// those blocks fall out of the cache and are fetched again and again.
//
// A position is a fact about an immutable object (keys are never
// reused), so it stays true as long as the extent read is the one it
// was taken in (same object, byte offset and base offset); compaction
// makes new objects, whose extents never match an old position.
type positions struct {
	mu sync.Mutex
	m  map[partitionKey]position
}

// position is where the batch of base offset base starts: byte pos of
// the object, inside the extent at byte extentByte of base offset
// extentBase.
type position struct {
	object     string
	extentByte int64
	extentBase int64
	base, pos  int64
}

// maxPositions bounds the partitions whose position is kept.
const maxPositions = 4096

func newPositions() *positions { return &positions{m: map[partitionKey]position{}} }

// start returns where to start walking e's batches to serve from: the
// kept position if it lies in e at or before from, else e's start.
func (p *positions) start(k partitionKey, e metastore.Extent, from int64) (pos, base int64) {
	p.mu.Lock()
	h, ok := p.m[k]
	p.mu.Unlock()
	if ok && h.object == e.Object && h.extentByte == e.ByteOffset && h.extentBase == e.BaseOffset &&
		h.base <= from && h.base >= e.BaseOffset && h.base < e.EndOffset &&
		h.pos >= e.ByteOffset && h.pos < e.ByteOffset+e.ByteLength {
		return h.pos, h.base
	}
	return e.ByteOffset, e.BaseOffset
}

// keep records where a read of the partition stopped in e.
func (p *positions) keep(k partitionKey, e metastore.Extent, base, pos int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[k]; !ok && len(p.m) >= maxPositions {
		for old := range p.m {
			delete(p.m, old)
			break
		}
	}
	p.m[k] = position{object: e.Object, extentByte: e.ByteOffset, extentBase: e.BaseOffset, base: base, pos: pos}
}
