package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// KeyPolicy is a compacted topic's key compaction, in Kafka's terms.
type KeyPolicy struct {
	Compact     bool          // cleanup.policy includes compact
	MinLag      time.Duration // min.compaction.lag.ms
	MaxLag      time.Duration // max.compaction.lag.ms
	DeleteRet   time.Duration // delete.retention.ms: how long tombstones stay
	DirtyRatio  float64       // min.cleanable.dirty.ratio
	maxLagLimit bool
}

// TopicKeyPolicy reads a topic's key compaction configs, with Kafka's
// defaults for the rest.
func TopicKeyPolicy(configs map[string]string) KeyPolicy {
	policy, _ := config.TopicValue(configs, "cleanup.policy")
	ratio := 0.5
	if v, ok := config.TopicValue(configs, "min.cleanable.dirty.ratio"); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			ratio = f
		}
	}
	maxLag := config.TopicInt(configs, "max.compaction.lag.ms")
	return KeyPolicy{
		Compact:     slices.Contains(config.SplitList(policy), "compact"),
		MinLag:      time.Duration(config.TopicInt(configs, "min.compaction.lag.ms")) * time.Millisecond,
		MaxLag:      time.Duration(min(maxLag, int64(1<<62)/int64(time.Millisecond))) * time.Millisecond,
		DeleteRet:   time.Duration(config.TopicInt(configs, "delete.retention.ms")) * time.Millisecond,
		DirtyRatio:  ratio,
		maxLagLimit: maxLag < 1<<62/int64(time.Millisecond),
	}
}

// KeyedRecord is what the key compaction planner knows of a record.
type KeyedRecord struct {
	Offset    int64
	Key       []byte // nil: no key (kept)
	Tombstone bool   // null value
	// Committed is when the record's extent was committed (store clock).
	Committed time.Time
}

// KeyDecision is the key compaction of one partition's cleanable range.
type KeyDecision struct {
	// Remove holds the offsets of the records to drop.
	Remove map[int64]bool
	// Due reports whether the range should be rewritten now: something
	// to remove, and the dirty ratio reached or max.compaction.lag.ms
	// passed for a record to remove.
	Due bool
}

// PlanKeyCompaction decides which records of a cleanable range (every
// record committed at least min.compaction.lag.ms ago, from the log
// start, in offset order) to keep: the latest record of every key, and a
// tombstone only until delete.retention.ms after its commit. Records
// without a key are kept. dirty is the share of the range's bytes not
// cleaned by an earlier pass (DirtyRatio), which min.cleanable.dirty.ratio
// bounds, as in Kafka.
func PlanKeyCompaction(records []KeyedRecord, p KeyPolicy, now time.Time, dirty float64) KeyDecision {
	latest := make(map[string]int64, len(records)/4+1)
	for _, r := range records {
		if r.Key != nil {
			latest[string(r.Key)] = r.Offset
		}
	}
	d := KeyDecision{Remove: map[int64]bool{}}
	var oldest time.Time
	for _, r := range records {
		if r.Key == nil {
			continue
		}
		remove := latest[string(r.Key)] != r.Offset ||
			(r.Tombstone && now.Sub(r.Committed) > p.DeleteRet)
		if remove {
			d.Remove[r.Offset] = true
			if oldest.IsZero() || r.Committed.Before(oldest) {
				oldest = r.Committed
			}
		}
	}
	if len(d.Remove) == 0 {
		return d
	}
	d.Due = dirty >= p.DirtyRatio || (p.maxLagLimit && now.Sub(oldest) > p.MaxLag)
	return d
}

// DirtyRatio is Kafka's dirty ratio of a cleanable range: the share of
// its bytes at or after cleanEnd, the offset up to which an earlier pass
// cleaned it. sizes[i] is the size of the batch starting at offset
// bases[i]. An empty range is not dirty.
func DirtyRatio(bases, sizes []int64, cleanEnd int64) float64 {
	var clean, dirty int64
	for i, b := range bases {
		if b < cleanEnd {
			clean += sizes[i]
		} else {
			dirty += sizes[i]
		}
	}
	if clean+dirty == 0 {
		return 0
	}
	return float64(dirty) / float64(clean+dirty)
}

// KeyCompaction is the job that compacts topics whose cleanup.policy
// includes compact: it rewrites a partition's cleanable range into one
// object keeping the latest record per key, offsets unchanged.
type KeyCompaction struct {
	Store  CompactionStore
	Bucket objstore.Bucket
	Logger *slog.Logger
	// PageExtents bounds the extents read per partition and pass
	// (default 10,000).
	PageExtents int

	// cleaned is, per partition, the offset up to which a pass of this
	// job cleaned it: Kafka's cleaner checkpoint. It is kept in memory:
	// an agent that takes the job over treats the whole range as dirty,
	// as Kafka's cleaner does without its checkpoint file, and cleans it
	// once more at most.
	mu      sync.Mutex
	cleaned map[partitionKey]int64
}

type partitionKey struct {
	topic     metastore.TopicID
	partition int32
}

func (k *KeyCompaction) cleanEnd(t metastore.TopicID, p int32) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cleaned[partitionKey{t, p}]
}

func (k *KeyCompaction) setCleanEnd(t metastore.TopicID, p int32, end int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cleaned == nil {
		k.cleaned = map[partitionKey]int64{}
	}
	k.cleaned[partitionKey{t, p}] = end
}

var _ Job = (*KeyCompaction)(nil)

// Name implements Job.
func (*KeyCompaction) Name() string { return "key-compaction" }

// Run implements Job: one pass over every compacted topic.
func (k *KeyCompaction) Run(ctx context.Context, env *Env) error {
	log := k.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page := k.PageExtents
	if page <= 0 {
		page = 10_000
	}
	topics, err := k.Store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("key compaction: %w", err)
	}
	var errs []error
	for _, t := range topics {
		p := TopicKeyPolicy(t.Configs)
		if !p.Compact {
			continue
		}
		usage, err := k.Store.PartitionUsage(ctx, t.ID)
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key compaction %s: %w", t.Name, err))
			continue
		}
		for _, u := range usage {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if u.Extents == 0 {
				continue
			}
			if err := k.partition(ctx, env, t, u, p, page, log); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type batchAt struct {
	extent int
	base   int64 // absolute offset of the batch's first offset
	data   []byte
	recs   []recordbatch.Record
	header recordbatch.Header
}

func (k *KeyCompaction) partition(ctx context.Context, env *Env, t metastore.Topic, u metastore.PartitionUsage, p KeyPolicy, page int, log *slog.Logger) error {
	extents, err := k.Store.Extents(ctx, t.ID, u.Partition, u.LogStartOffset, page)
	if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("key compaction %s/%d: %w", t.Name, u.Partition, err)
	}
	now := env.Now()
	// Only what is older than min.compaction.lag.ms and below the last
	// stable offset is cleanable: an open transaction's records may
	// still be aborted, as Kafka's cleaner stops at the first unstable
	// offset.
	n := 0
	for n < len(extents) && now.Sub(extents[n].CommittedAt) >= p.MinLag && extents[n].EndOffset <= u.LastStableOffset {
		n++
	}
	extents = extents[:n]
	if n == 0 {
		return nil
	}
	var bytes int64
	reads := newRangeReader(k.Bucket)
	for _, e := range extents {
		reads.want(e.Object, e.ByteOffset, e.ByteLength)
		bytes += e.ByteLength
	}
	if err := env.Throttle.Wait(ctx, bytes); err != nil {
		return err
	}
	if err := reads.fetch(ctx); err != nil {
		return fmt.Errorf("key compaction %s/%d: %w", t.Name, u.Partition, err)
	}
	aborted, err := k.Store.AbortedTxns(ctx, t.ID, u.Partition, extents[0].BaseOffset, extents[n-1].EndOffset)
	if err != nil {
		return fmt.Errorf("key compaction %s/%d: %w", t.Name, u.Partition, err)
	}
	var batches []batchAt
	var keyed []KeyedRecord
	// Records of aborted transactions are dropped whatever their keys,
	// and never hide an older committed value of their key.
	dropped := map[int64]bool{}
	for i, e := range extents {
		data := reads.get(e.Object, e.ByteOffset, e.ByteLength)
		split, err := recordbatch.Split(data)
		if err != nil {
			return fmt.Errorf("key compaction %s/%d: %w", t.Name, u.Partition, err)
		}
		base := e.BaseOffset
		for _, b := range split {
			h, err := recordbatch.ParseHeader(b)
			if err != nil {
				return fmt.Errorf("key compaction %s/%d: %w", t.Name, u.Partition, err)
			}
			ba := batchAt{extent: i, base: base, data: b, header: h}
			if !h.IsControl() {
				recs, err := recordbatch.Records(b)
				if err != nil {
					return fmt.Errorf("key compaction %s/%d: batch at %d: %w", t.Name, u.Partition, base, err)
				}
				ba.recs = recs
				abortedBatch := h.IsTransactional() && inAborted(aborted, h.ProducerID, base)
				for _, r := range recs {
					off := base + r.Offset - h.BaseOffset
					if abortedBatch {
						dropped[off] = true
						continue
					}
					keyed = append(keyed, KeyedRecord{
						Offset: off, Key: r.Key, Tombstone: r.Value == nil, Committed: e.CommittedAt,
					})
				}
			}
			batches = append(batches, ba)
			base += int64(h.LastOffsetDelta) + 1
		}
		if base != e.EndOffset {
			return fmt.Errorf("key compaction %s/%d: extent %s@%d: batches end at %d, the extent at %d", t.Name, u.Partition, e.Object, e.BaseOffset, base, e.EndOffset)
		}
	}
	bases, sizes := make([]int64, len(batches)), make([]int64, len(batches))
	for i, ba := range batches {
		bases[i], sizes[i] = ba.base, int64(len(ba.data))
	}
	end := extents[n-1].EndOffset
	dirty := DirtyRatio(bases, sizes, k.cleanEnd(t.ID, u.Partition))
	d := PlanKeyCompaction(keyed, p, now, dirty)
	noDrops := len(d.Remove) == 0 && len(dropped) == 0
	for off := range dropped {
		d.Remove[off] = true
	}
	markers := removableMarkers(batches, extents, aborted, d.Remove, p.DeleteRet, now)
	if !d.Due && len(dropped) == 0 && len(markers) == 0 {
		if noDrops && dirty >= p.DirtyRatio {
			// Nothing to drop: the range is as clean as a pass would
			// leave it, as Kafka's cleaner moves its checkpoint.
			k.setCleanEnd(t.ID, u.Partition, end)
		}
		return nil
	}
	var dropAborted []int64
	for _, m := range markers {
		if m.abort {
			dropAborted = append(dropAborted, batches[m.batch].base)
		}
	}
	b := segment.NewBuilder()
	first := -1
	var last int
	removeMarker := map[int]bool{}
	for _, m := range markers {
		removeMarker[m.batch] = true
	}
	for i, ba := range batches {
		out := ba.data
		if removeMarker[i] {
			// An empty batch keeps the marker's offset covered, as
			// Kafka's cleaner keeps empty batches: readers step over it.
			out = rebuild(ba.header, nil)
		} else if ba.recs != nil {
			kept := ba.recs[:0:0]
			for _, r := range ba.recs {
				if !d.Remove[ba.base+r.Offset-ba.header.BaseOffset] {
					kept = append(kept, r)
				}
			}
			if len(kept) != len(ba.recs) {
				out = rebuild(ba.header, kept)
			}
		}
		ai := b.Add(t.ID, t.Name, u.Partition, out)
		if first < 0 {
			first = ai
		}
		last = ai
	}
	object, placements := b.Build()
	key := segment.NewKey()
	if err := k.Bucket.Put(ctx, key, object); err != nil {
		return fmt.Errorf("key compaction %s/%d: put %s: %w", t.Name, u.Partition, key, err)
	}
	ne := metastore.Extent{
		BaseOffset: extents[0].BaseOffset, EndOffset: extents[len(extents)-1].EndOffset,
		Object: key, ObjectSize: int64(len(object)),
		ByteOffset:   placements[first].ByteOffset,
		ByteLength:   placements[last].ByteOffset + placements[last].ByteLength - placements[first].ByteOffset,
		MaxTimestamp: -1,
	}
	old := make([]metastore.ExtentRef, len(extents))
	objects := map[string]bool{}
	for i, e := range extents {
		old[i] = metastore.ExtentRef{BaseOffset: e.BaseOffset, Object: e.Object}
		ne.MaxTimestamp = max(ne.MaxTimestamp, e.MaxTimestamp)
		objects[e.Object] = true
	}
	err = k.Store.ReplaceExtents(ctx, []metastore.PartitionReplacement{{
		TopicID: t.ID, Partition: u.Partition, Old: old, New: []metastore.Extent{ne}, DropAborted: dropAborted,
	}})
	if errors.Is(err, metastore.ErrExtentsChanged) || errors.Is(err, metastore.ErrInvalidReplacement) {
		if derr := k.Bucket.Delete(context.WithoutCancel(ctx), key); derr != nil {
			log.Warn("key compaction could not delete an abandoned object", "key", key, "err", derr)
		}
		if errors.Is(err, metastore.ErrExtentsChanged) {
			return nil // the next pass plans again
		}
	}
	if err != nil {
		return fmt.Errorf("key compaction %s/%d: replace extents: %w", t.Name, u.Partition, err)
	}
	k.setCleanEnd(t.ID, u.Partition, end)
	env.Stats.In(len(objects), bytes)
	env.Stats.Out(1, int64(len(object)))
	log.Info("key compaction rewrote a partition", "topic", t.Name, "partition", u.Partition,
		"records_removed", len(d.Remove), "markers_removed", len(markers), "records", len(keyed), "bytes_in", bytes, "bytes_out", len(object))
	return nil
}

// marker is a transaction marker key compaction removes: batches[batch],
// an ABORT marker if abort (its aborted-index entry goes with it).
type marker struct {
	batch int
	abort bool
}

// removableMarkers picks the transaction markers that can go, as Kafka's
// cleaner removes them: a marker committed more than deleteRet ago whose
// transaction has no record left in the partition. Batches are in offset
// order from the log start, so a producer's transaction runs from its
// previous marker (or the log start) to this one.
//
// A COMMIT marker goes when none of its transaction's records survives
// this pass. An ABORT marker goes only when the records of its
// transaction were already gone before this pass (an earlier pass dropped
// them), with its aborted-index entry: a fetch that read the extents
// before the earlier pass and the index after this one would otherwise
// see aborted records no entry hides. Passes are seconds apart, markers
// stay delete.retention.ms (a day by default).
func removableMarkers(batches []batchAt, extents []metastore.Extent, aborted []metastore.AbortedTxn, remove map[int64]bool, deleteRet time.Duration, now time.Time) []marker {
	entries := map[int64]int64{} // marker offset → producer
	for _, a := range aborted {
		entries[a.LastOffset] = a.ProducerID
	}
	kept := map[int64]bool{}    // producer → a record of its transaction survives this pass
	present := map[int64]bool{} // producer → a record of its transaction was read
	var out []marker
	for i, ba := range batches {
		h := ba.header
		if !h.IsTransactional() {
			continue
		}
		pid := h.ProducerID
		if !h.IsControl() {
			for _, r := range ba.recs {
				present[pid] = true
				if !remove[ba.base+r.Offset-h.BaseOffset] {
					kept[pid] = true
				}
			}
			continue
		}
		typ, ok := controlType(ba.data)
		old := now.Sub(extents[ba.extent].CommittedAt) > deleteRet
		switch {
		case !ok, !old: // a batch Floe did not write as a marker stays
		case typ == recordbatch.ControlCommit && !kept[pid]:
			out = append(out, marker{batch: i})
		case typ == recordbatch.ControlAbort && !present[pid]:
			if p, ok := entries[ba.base]; ok && p == pid {
				out = append(out, marker{batch: i, abort: true})
			}
		}
		delete(kept, pid)
		delete(present, pid)
	}
	return out
}

// controlType reads the type of a control batch's one marker record.
func controlType(batch []byte) (recordbatch.ControlType, bool) {
	recs, err := recordbatch.Records(batch)
	if err != nil || len(recs) != 1 {
		return 0, false
	}
	return recordbatch.ParseControlKey(recs[0].Key)
}

// inAborted reports whether the batch of producer pid at offset base
// belongs to one of the aborted transactions.
func inAborted(aborted []metastore.AbortedTxn, pid, base int64) bool {
	for _, a := range aborted {
		if a.ProducerID == pid && a.FirstOffset <= base && base <= a.LastOffset {
			return true
		}
	}
	return false
}

// rebuild re-encodes a batch with only the kept records, with the codec,
// attributes and producer fields it came with; offsets, lastOffsetDelta
// and maxTimestamp stay, so the batch covers the same offsets.
func rebuild(h recordbatch.Header, kept []recordbatch.Record) []byte {
	return recordbatch.Build(recordbatch.BuildOptions{
		BaseOffset:      h.BaseOffset,
		Codec:           h.Compression(),
		ProducerID:      h.ProducerID,
		ProducerEpoch:   h.ProducerEpoch,
		BaseSequence:    h.BaseSequence,
		FirstTimestamp:  h.FirstTimestamp,
		Transactional:   h.IsTransactional(),
		LogAppendTime:   h.IsLogAppendTime(),
		KeepOffsets:     true,
		LastOffsetDelta: h.LastOffsetDelta,
		MaxTimestamp:    h.MaxTimestamp,
	}, kept...)
}
