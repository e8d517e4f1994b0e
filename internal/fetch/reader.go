// Package fetch serves reads: it turns (partition, offset) into extents
// from the metadata store, extents into byte ranges of objects read through
// the block cache, and patches each batch's baseOffset on the way out.
// It also wakes long-polling fetches when a commit lands.
//
// Reads are read_uncommitted (up to the high watermark) or read_committed
// (up to the last stable offset, with the aborted transactions the
// returned batches need). Both cut at batch boundaries and return control
// batches, as Kafka does; clients skip them.
//
// What a read costs the metadata store: at the live edge, one Offsets
// and one Extents read per commit of the partition, shared by every
// reader of it on this agent (the cached tail); a read further back, one
// Extents read per 64 extents. A read_committed read whose returned
// batches hold no transactional batch (the header's transactional bit,
// which the reader parses anyway) costs nothing more, so non-transactional
// topics pay nothing for read_committed consumers; one that returns a
// transactional batch reads the aborted index once (AbortedTxns), unless
// the cached tail already holds its entries for that range.
//
// It never changes stored bytes: patching happens on private copies.
package fetch

import (
	"context"
	"errors"
	"fmt"

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

// Isolation is a read's isolation level, numbered as Kafka's.
type Isolation int8

// Isolation levels.
const (
	// ReadUncommitted reads up to the high watermark.
	ReadUncommitted Isolation = 0
	// ReadCommitted reads up to the last stable offset and lists the
	// aborted transactions of what it returns.
	ReadCommitted Isolation = 1
)

// AbortedIndex is what a Reader needs of the transaction store: the
// aborted transaction index (metastore.TxnStore.AbortedTxns).
type AbortedIndex interface {
	// AbortedTxns returns the entries of a partition overlapping
	// [from, to): LastOffset >= from and FirstOffset < to, sorted by
	// FirstOffset.
	AbortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error)
}

// Reader reads partitions.
type Reader struct {
	store   metastore.ExtentReader
	aborted AbortedIndex // nil: the store keeps no transactions
	blocks  *cache.Blocks
	extents *extentCache
	ahead   *readAhead // nil: no read-ahead (readahead.go)
	pos     *positions
	bufs    *Buffers // records' memory (buffers.go)
}

// NewReader returns a Reader over store and blocks. aborted is the
// store's aborted transaction index; nil means the store keeps no
// transactions, so that every partition's last stable offset is its high
// watermark whatever store reports.
func NewReader(store metastore.ExtentReader, aborted AbortedIndex, blocks *cache.Blocks) *Reader {
	return &Reader{store: store, aborted: aborted, blocks: blocks, extents: newExtentCache(), pos: newPositions(), bufs: &Buffers{}}
}

// Buffers is where the records Read returns come from: a caller that is
// done with a Partition's Records (its response is encoded and nothing
// else holds them) may Put them back there, for the next Read.
func (r *Reader) Buffers() *Buffers { return r.bufs }

// Offsets reads a partition's offsets from the store (never from the
// cache, so a caller sees every commit made before it asked), with the
// last stable offset as reads use it.
func (r *Reader) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	offs, err := r.store.Offsets(ctx, id, partition)
	return r.stable(offs), err
}

// CachedOffsets returns a partition's offsets as the cached tail holds
// them (kept fresh by commit notices, as reads are), reading the store
// only when nothing is cached; for fetch answers that report offsets
// without records.
func (r *Reader) CachedOffsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	offs, version, ok := r.extents.offsets(id, partition)
	if ok {
		return offs, nil
	}
	offs, err := r.Offsets(ctx, id, partition)
	if err != nil {
		return offs, err
	}
	r.extents.put(id, partition, version, offs, nil)
	return offs, nil
}

// stable returns offs with its last stable offset within [log start
// offset, high watermark], as Kafka keeps it: an open transaction whose
// start was deleted holds back nothing below the log start. Without
// transactions it is the high watermark.
func (r *Reader) stable(offs metastore.PartitionOffsets) metastore.PartitionOffsets {
	if r.aborted == nil {
		offs.LastStableOffset = offs.HighWatermark
	} else {
		offs.LastStableOffset = min(max(offs.LastStableOffset, offs.LogStartOffset), offs.HighWatermark)
	}
	return offs
}

// Invalidate drops what the reader remembers of a partition's extents;
// call it for every partition a commit touched.
func (r *Reader) Invalidate(id metastore.TopicID, partition int32) {
	r.extents.invalidate(id, partition)
}

// InvalidateUnlessAt is Invalidate for a notice that saw the partition's
// high watermark plus log start offset at seen (CommitNotice.Seen): what
// the reader remembers is kept if it is at exactly that.
func (r *Reader) InvalidateUnlessAt(id metastore.TopicID, partition int32, seen int64) {
	r.extents.invalidateUnlessAt(id, partition, seen)
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
	offs, err := r.Offsets(ctx, id, partition)
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
	// PartitionOffsets are the partition's bounds as the read saw them;
	// LastStableOffset is within [LogStartOffset, HighWatermark].
	metastore.PartitionOffsets
	// Aborted lists, for a ReadCommitted read, the aborted transactions
	// overlapping [offset, end of Records): LastOffset >= offset and
	// FirstOffset < the offset after the last returned batch, sorted by
	// FirstOffset; empty but not nil when there are none. It is nil for
	// ReadUncommitted, as Kafka answers null there.
	Aborted []metastore.AbortedTxn
}

// extentsPerLookup bounds one metadata lookup; a read that needs more
// asks again.
const extentsPerLookup = 64

// Read returns whole batches starting with the one that holds offset, up
// to maxBytes. When atLeastOne is set, the first batch is returned even if
// it is larger than maxBytes (KIP-74), so a consumer always progresses.
//
// ReadUncommitted returns batches below the high watermark; ReadCommitted
// only batches that end at or below the last stable offset, and the
// aborted transactions they need. An offset is out of range only outside
// [log start offset, high watermark], whatever the isolation level: a
// read_committed offset between the last stable offset and the high
// watermark reads nothing and waits, as in Kafka.
func (r *Reader) Read(ctx context.Context, id metastore.TopicID, partition int32, offset int64, maxBytes int, atLeastOne bool, iso Isolation) (Partition, error) {
	res, _, err := r.read(ctx, id, partition, offset, maxBytes, atLeastOne, iso, false)
	return res, err
}

// ReadReady is Read without waiting for the bucket: it stops at the
// first batch whose bytes are not in the block cache but on their way
// (a GET in flight, or a read-ahead GET it starts) and reports waiting. A
// fetch reads its partitions this way, so that it answers with what is
// ready instead of waiting for a GET, and, while it has nothing, waits
// for whichever of their GETs lands first (Landed); the consumer's next
// fetch finds the rest. What it returns is a prefix of what Read would
// return.
func (r *Reader) ReadReady(ctx context.Context, id metastore.TopicID, partition int32, offset int64, maxBytes int, atLeastOne bool, iso Isolation) (res Partition, waiting bool, err error) {
	return r.read(ctx, id, partition, offset, maxBytes, atLeastOne, iso, true)
}

// Landed returns a channel closed when the next bucket GET of the block
// cache ends (cache.Blocks.Landed). Take it before ReadReady.
func (r *Reader) Landed() <-chan struct{} { return r.blocks.Landed() }

func (r *Reader) read(ctx context.Context, id metastore.TopicID, partition int32, offset int64, maxBytes int, atLeastOne bool, iso Isolation, ready bool) (Partition, bool, error) {
	offs, extents, err := r.tail(ctx, id, partition, offset)
	if err != nil {
		return Partition{}, false, err
	}
	res := Partition{PartitionOffsets: offs}
	rd := read{key: partitionKey{id, partition}, res: &res, maxBytes: maxBytes, atLeastOne: atLeastOne, limit: offs.HighWatermark, end: offset, ready: ready}
	if offset < offs.LogStartOffset || offset > offs.HighWatermark {
		return res, false, ErrOffsetOutOfRange
	}
	if iso == ReadCommitted {
		rd.limit = offs.LastStableOffset
	}
	if err := r.readExtents(ctx, id, partition, offset, extents, &rd); err != nil {
		return res, false, err
	}
	r.readAheadAfter(id, partition, iso, &rd)
	if iso != ReadCommitted {
		return res, rd.waiting, nil
	}
	res.Aborted = []metastore.AbortedTxn{}
	if rd.transactional && r.aborted != nil {
		res.Aborted, err = r.abortedTxns(ctx, id, partition, offset, rd.end)
	}
	return res, rd.waiting, err
}

// read is the state of one Read across extents.
type read struct {
	key        partitionKey
	res        *Partition
	maxBytes   int
	atLeastOne bool
	// limit is the offset no returned batch may reach past: the high
	// watermark, or the last stable offset for read_committed.
	limit int64
	// end is the offset after the last returned batch (the fetch offset
	// while none is).
	end int64
	// transactional is set once a returned batch has the transactional
	// bit (control batches have it too).
	transactional bool
	// ready: stop at the first batch not in the block cache, and set
	// waiting (ReadReady).
	ready, waiting bool
	// ahead holds, when the read stopped before the data ran out, the
	// extents from the one it stopped in (the first batch not returned
	// starts at byte aheadPos of ahead[0]): where read-ahead goes on.
	ahead    []metastore.Extent
	aheadPos int64
}

// stop records that the read stopped in extents[0], before the batch of
// base offset base at byte pos, so that the next read of the partition
// starts there (positions) and read-ahead goes on from there.
func (r *Reader) stop(rd *read, extents []metastore.Extent, base, pos int64) {
	rd.ahead, rd.aheadPos = extents, pos
	if pos < extents[0].ByteOffset+extents[0].ByteLength {
		r.pos.keep(rd.key, extents[0], base, pos)
	}
}

// readExtents appends to rd the batches from offset on, starting with
// extents (the cached tail or the store's first answer) and reading on
// from the store, until the limit, maxBytes or the data runs out.
func (r *Reader) readExtents(ctx context.Context, id metastore.TopicID, partition int32, offset int64, extents []metastore.Extent, rd *read) error {
	if offset >= rd.limit {
		return nil
	}
	// Size the records once, from the extents in hand, up to maxBytes.
	var want int64
	for _, e := range extents {
		if want >= int64(rd.maxBytes) || e.BaseOffset >= rd.limit {
			break
		}
		want += max(e.ByteLength, 0)
	}
	if want = min(want, int64(rd.maxBytes)); want > 0 {
		rd.res.Records = r.bufs.Get(int(want))
	}
	// from is the next offset to serve. Extents read by a later lookup
	// may have been replaced by compaction meanwhile and start before it:
	// only their batches from it on are served, so none is served twice.
	from := offset
	for len(extents) > 0 {
		for i, e := range extents {
			if e.BaseOffset >= rd.limit {
				// Nothing of it can be returned: not even its first
				// header is read.
				r.stop(rd, extents[i:], e.BaseOffset, e.ByteOffset)
				return nil
			}
			done, pos, base, err := r.appendExtent(ctx, rd, e, from)
			if err != nil {
				return err
			}
			if done {
				r.stop(rd, extents[i:], base, pos)
				return nil
			}
			from = max(from, e.EndOffset)
		}
		next := extents[len(extents)-1].EndOffset
		if next >= rd.limit {
			return nil
		}
		// More than one lookup's worth: read on from the store, within
		// the offsets already reported.
		more, err := r.store.Extents(ctx, id, partition, next, extentsPerLookup)
		if err != nil {
			return err
		}
		extents = extents[:0:0]
		for _, e := range more {
			if e.BaseOffset < rd.limit {
				extents = append(extents, e)
			}
		}
	}
	return nil
}

// appendExtent appends the batches of e that end after from. It reports
// whether the read is done (maxBytes reached, or a batch that would pass
// the limit) and where in e it stopped: the byte position and base
// offset of the first batch it did not return.
//
// It walks e's batch headers from where the partition's last read
// stopped, when that was in e before from (positions), else from e's
// start. Each batch is copied once, from the block cache into the
// records, and its offsets are patched there.
func (r *Reader) appendExtent(ctx context.Context, rd *read, e metastore.Extent, from int64) (bool, int64, int64, error) {
	pos, base := r.pos.start(rd.key, e, from)
	end := e.ByteOffset + e.ByteLength
	var hbuf [recordbatch.HeaderSize]byte
	for pos < end {
		if end-pos < recordbatch.HeaderSize {
			return false, pos, base, fmt.Errorf("extent %s@%d: truncated batch header at %d", e.Object, e.BaseOffset, pos)
		}
		if rd.ready && r.notReady(e, pos, recordbatch.HeaderSize) {
			rd.waiting = true
			return true, pos, base, nil
		}
		hb, err := r.blocks.AppendRange(ctx, hbuf[:0], e.Object, e.ObjectSize, pos, recordbatch.HeaderSize)
		if err != nil {
			return false, pos, base, fmt.Errorf("read %s: %w", e.Object, err)
		}
		h, err := recordbatch.ParseHeader(hb)
		if err != nil {
			return false, pos, base, fmt.Errorf("extent %s@%d: %w", e.Object, e.BaseOffset, err)
		}
		size := int64(h.Size())
		count := int64(h.LastOffsetDelta) + 1
		if pos+size > end {
			return false, pos, base, fmt.Errorf("extent %s@%d: batch overruns extent", e.Object, e.BaseOffset)
		}
		if base+count > rd.limit {
			// The last stable offset can fall inside an extent; it is
			// always a batch boundary, so whole batches are cut.
			return true, pos, base, nil
		}
		if base+count > from {
			res := rd.res
			first := len(res.Records) == 0
			if len(res.Records)+int(size) > rd.maxBytes && !(first && rd.atLeastOne) {
				return true, pos, base, nil
			}
			if rd.ready && r.notReady(e, pos, size) {
				rd.waiting = true
				return true, pos, base, nil
			}
			if res.Records == nil {
				// Sized once: the smaller of maxBytes and what the
				// extent holds from here, or this batch if larger.
				res.Records = r.bufs.Get(int(max(min(int64(rd.maxBytes), end-pos), size)))
			}
			n := len(res.Records)
			res.Records, err = r.blocks.AppendRange(ctx, res.Records, e.Object, e.ObjectSize, pos, size)
			if err != nil {
				return false, pos, base, fmt.Errorf("read %s: %w", e.Object, err)
			}
			b := res.Records[n:]
			recordbatch.SetBaseOffset(b, base)
			recordbatch.SetPartitionLeaderEpoch(b, LeaderEpoch)
			rd.end = base + count
			rd.transactional = rd.transactional || h.IsTransactional()
			if len(res.Records) >= rd.maxBytes {
				return true, pos + size, base + count, nil
			}
		}
		base += count
		pos += size
	}
	return false, pos, base, nil
}

// notReady reports whether [pos, pos+n) of e's object is missing from
// the block cache while a GET brings it: ReadReady then stops there. A
// range read-ahead cannot start (disabled, or at its bounds) is read
// anyway, waiting, so that no partition waits forever for a GET nobody
// makes.
func (r *Reader) notReady(e metastore.Extent, pos, n int64) bool {
	return !r.blocks.Cached(e.Object, e.ObjectSize, pos, n) && r.blocks.Prefetch(e.Object, e.ObjectSize, pos, n)
}

// abortedTxns returns the aborted index entries overlapping [from, to),
// from the cached tail if it holds them, else from the store, caching
// them with the tail. to is at most the last stable offset of offsets
// read before, so every transaction with records below it had ended then
// and the entries read now are final.
func (r *Reader) abortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error) {
	if out, ok := r.extents.abortedTxns(id, partition, from, to); ok {
		return out, nil
	}
	out, err := r.aborted.AbortedTxns(ctx, id, partition, from, to)
	if err != nil {
		return nil, fmt.Errorf("aborted transactions: %w", err)
	}
	if out == nil {
		out = []metastore.AbortedTxn{}
	}
	r.extents.putAborted(id, partition, from, to, out)
	return out, nil
}
