// Package fetch serves reads: it turns (partition, offset) into extents
// from the metadata store, extents into byte ranges of objects read through
// the block cache, and patches each batch's baseOffset on the way out.
// It also wakes long-polling fetches when a commit lands.
//
// It never changes stored bytes: patching happens on private copies.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
)

// LeaderEpoch is the partition leader epoch Floe reports everywhere. No
// partition ever changes leader in the Kafka sense: any agent may serve
// it, and the log cannot diverge, so the epoch never needs to move.
const LeaderEpoch = 0

// ErrOffsetOutOfRange reports a fetch offset outside [logStart, hwm].
var ErrOffsetOutOfRange = errors.New("offset out of range")

// Reader reads partitions.
type Reader struct {
	store   metastore.ExtentReader
	blocks  *cache.Blocks
	extents *extentCache
}

// NewReader returns a Reader over store and blocks.
func NewReader(store metastore.ExtentReader, blocks *cache.Blocks) *Reader {
	return &Reader{store: store, blocks: blocks, extents: newExtentCache()}
}

// Invalidate drops what the reader remembers of a partition's extents;
// call it for every partition a commit touched.
func (r *Reader) Invalidate(id metastore.TopicID, partition int32) {
	r.extents.invalidate(id, partition)
}

// InvalidateAll drops everything the reader remembers of extents, for a
// commit notice that does not say which partitions changed.
func (r *Reader) InvalidateAll() { r.extents.invalidateAll() }

// tail returns the partition's offsets and the extents holding from
// onwards (up to extentsPerLookup of them when read from the store).
func (r *Reader) tail(ctx context.Context, id metastore.TopicID, partition int32, from int64) (metastore.PartitionOffsets, []metastore.Extent, error) {
	offs, extents, version, ok := r.extents.get(id, partition, from)
	if ok {
		return offs, extents, nil
	}
	offs, err := r.store.Offsets(ctx, id, partition)
	if err != nil {
		return offs, nil, err
	}
	if from < offs.LogStartOffset || from >= offs.HighWatermark {
		r.extents.put(id, partition, version, offs, nil)
		return offs, nil, nil
	}
	extents, err = r.store.Extents(ctx, id, partition, from, extentsPerLookup)
	if err != nil {
		return offs, nil, err
	}
	// Keep only what the offsets read above cover, so the cached extents
	// end exactly at the cached high watermark.
	for i, e := range extents {
		if e.EndOffset > offs.HighWatermark {
			extents = extents[:i]
			break
		}
	}
	if n := len(extents); n > 0 && extents[n-1].EndOffset == offs.HighWatermark {
		r.extents.put(id, partition, version, offs, extents)
	}
	return offs, extents, nil
}

// Partition is the result of reading one partition.
type Partition struct {
	Records []byte // complete batches with patched offsets
	metastore.PartitionOffsets
}

// extentsPerLookup bounds one metadata lookup; a read that needs more
// asks again.
const extentsPerLookup = 64

// Read returns whole batches starting with the one that holds offset, up
// to maxBytes. When atLeastOne is set, the first batch is returned even if
// it is larger than maxBytes (KIP-74), so a consumer always progresses.
func (r *Reader) Read(ctx context.Context, id metastore.TopicID, partition int32, offset int64, maxBytes int, atLeastOne bool) (Partition, error) {
	offs, extents, err := r.tail(ctx, id, partition, offset)
	if err != nil {
		return Partition{}, err
	}
	res := Partition{PartitionOffsets: offs}
	if offset < offs.LogStartOffset || offset > offs.HighWatermark {
		return res, ErrOffsetOutOfRange
	}
	// from is the next offset to serve. Extents read by a later lookup
	// may have been replaced by compaction meanwhile and start before it:
	// only their batches from it on are served, so none is served twice.
	from := offset
	for len(extents) > 0 {
		for _, e := range extents {
			full, err := r.appendExtent(ctx, &res, e, from, maxBytes, atLeastOne)
			if err != nil || full {
				return res, err
			}
			from = max(from, e.EndOffset)
		}
		next := extents[len(extents)-1].EndOffset
		if next >= offs.HighWatermark {
			break
		}
		// More than one lookup's worth: read on from the store, within
		// the offsets already reported.
		more, err := r.store.Extents(ctx, id, partition, next, extentsPerLookup)
		if err != nil {
			return res, err
		}
		extents = extents[:0:0]
		for _, e := range more {
			if e.BaseOffset < offs.HighWatermark {
				extents = append(extents, e)
			}
		}
	}
	return res, nil
}

// appendExtent appends the batches of e that end at or after from. It
// reports whether maxBytes was reached.
func (r *Reader) appendExtent(ctx context.Context, res *Partition, e metastore.Extent, from int64, maxBytes int, atLeastOne bool) (bool, error) {
	pos := e.ByteOffset
	end := e.ByteOffset + e.ByteLength
	base := e.BaseOffset
	for pos < end {
		if end-pos < recordbatch.HeaderSize {
			return false, fmt.Errorf("extent %s@%d: truncated batch header at %d", e.Object, e.BaseOffset, pos)
		}
		hb, err := r.blocks.ReadRange(ctx, e.Object, e.ObjectSize, pos, recordbatch.HeaderSize)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", e.Object, err)
		}
		h, err := recordbatch.ParseHeader(hb)
		if err != nil {
			return false, fmt.Errorf("extent %s@%d: %w", e.Object, e.BaseOffset, err)
		}
		size := int64(h.Size())
		count := int64(h.LastOffsetDelta) + 1
		if pos+size > end {
			return false, fmt.Errorf("extent %s@%d: batch overruns extent", e.Object, e.BaseOffset)
		}
		if base+count > from {
			first := len(res.Records) == 0
			if len(res.Records)+int(size) > maxBytes && !(first && atLeastOne) {
				return true, nil
			}
			b, err := r.blocks.ReadRange(ctx, e.Object, e.ObjectSize, pos, size)
			if err != nil {
				return false, fmt.Errorf("read %s: %w", e.Object, err)
			}
			recordbatch.SetBaseOffset(b, base)
			recordbatch.SetPartitionLeaderEpoch(b, LeaderEpoch)
			res.Records = append(res.Records, b...)
			if len(res.Records) >= maxBytes {
				return true, nil
			}
		}
		base += count
		pos += size
	}
	return false, nil
}

// Notifier wakes every waiter when a commit lands. Waiters take the
// channel before reading, so a commit between the read and the wait is
// never missed.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewNotifier returns a Notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{})} }

// Changed returns a channel closed at the next Broadcast.
func (n *Notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Broadcast wakes everyone waiting on Changed.
func (n *Notifier) Broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}
