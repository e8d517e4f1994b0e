package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// CompactionStore is what segment compaction reads and changes.
type CompactionStore interface {
	Topics(ctx context.Context) ([]metastore.Topic, error)
	PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error)
	Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error)
	ReplaceExtents(ctx context.Context, rs []metastore.PartitionReplacement) error
	// AbortedTxns tells key compaction which transactional records to
	// drop.
	AbortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error)
}

// Compaction is the segment compaction job: it merges small extents into
// larger objects (PlanPartitionCompaction, PackCompaction), writes each
// object with segment.Builder, and swaps it in with one ReplaceExtents
// per object. The replaced objects are left to the cleaner.
type Compaction struct {
	Store  CompactionStore
	Bucket objstore.Bucket
	Logger *slog.Logger
	// Fanout is the policy's size ratio (default DefaultCompactionFanout).
	Fanout int
	// MaxObjectBytes bounds a compacted object (default
	// DefaultCompactionObjectBytes).
	MaxObjectBytes int64
	// PassBytes bounds the bytes one pass rewrites (default 1 GiB); the
	// rest waits for the next pass.
	PassBytes int64
	// PageExtents bounds the extents read per partition and pass
	// (default 10,000).
	PageExtents int
}

var _ Job = (*Compaction)(nil)

// Name implements Job.
func (*Compaction) Name() string { return "compaction" }

// Run implements Job: one pass over every topic.
func (c *Compaction) Run(ctx context.Context, env *Env) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page := c.PageExtents
	if page <= 0 {
		page = 10_000
	}
	budget := c.PassBytes
	if budget <= 0 {
		budget = 1 << 30
	}
	topics, err := c.Store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("compaction: %w", err)
	}
	var lag time.Duration
	var errs []error
	for _, t := range topics {
		if budget <= 0 || ctx.Err() != nil {
			break
		}
		objs, l, err := c.plan(ctx, env, t, page)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lag = max(lag, l)
		for _, o := range objs {
			if budget <= 0 || ctx.Err() != nil {
				break
			}
			budget -= o.Bytes
			if err := c.compact(ctx, env, t, o, log); err != nil {
				errs = append(errs, err)
			}
		}
	}
	env.Stats.Lag(lag)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// plan reads a topic's extents and plans its objects. The lag is the age
// of the oldest extent it plans to merge.
func (c *Compaction) plan(ctx context.Context, env *Env, t metastore.Topic, page int) ([]CompactionObject, time.Duration, error) {
	usage, err := c.Store.PartitionUsage(ctx, t.ID)
	if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("compaction %s: %w", t.Name, err)
	}
	p := TopicCompaction(t.Configs, c.Fanout)
	var perPartition [][]CompactionRun
	var lag time.Duration
	for _, u := range usage {
		if u.Extents < 2 {
			continue
		}
		extents, err := c.Store.Extents(ctx, t.ID, u.Partition, u.LogStartOffset, page)
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("compaction %s/%d: %w", t.Name, u.Partition, err)
		}
		runs := PlanPartitionCompaction(u.Partition, extents, p)
		for _, r := range runs {
			lag = max(lag, env.Now().Sub(r.Extents[0].CommittedAt))
		}
		if len(runs) > 0 {
			perPartition = append(perPartition, runs)
		}
	}
	// Interleave partitions (first run of each, then second, …) so that
	// an object gathers many partitions, each at most once.
	var runs []CompactionRun
	for i := 0; ; i++ {
		n := len(runs)
		for _, rs := range perPartition {
			if i < len(rs) {
				runs = append(runs, rs[i])
			}
		}
		if len(runs) == n {
			break
		}
	}
	return PackCompaction(runs, c.MaxObjectBytes), lag, nil
}

// compact writes one object and swaps it in. A conflict (retention or
// another compaction changed the extents since they were read) abandons
// the object: the next pass plans again from what the store holds.
func (c *Compaction) compact(ctx context.Context, env *Env, t metastore.Topic, o CompactionObject, log *slog.Logger) error {
	if err := env.Throttle.Wait(ctx, o.Bytes); err != nil {
		return err
	}
	b := segment.NewBuilder()
	type added struct{ first, last int }
	adds := make([]added, len(o.Runs))
	oldObjects := map[string]bool{}
	reads := newRangeReader(c.Bucket)
	for _, r := range o.Runs {
		for _, e := range r.Extents {
			reads.want(e.Object, e.ByteOffset, e.ByteLength)
			oldObjects[e.Object] = true
		}
	}
	if err := reads.fetch(ctx); err != nil {
		return fmt.Errorf("compaction %s: %w", t.Name, err)
	}
	for i, r := range o.Runs {
		adds[i].first = -1
		for _, e := range r.Extents {
			data := reads.get(e.Object, e.ByteOffset, e.ByteLength)
			batches, err := recordbatch.Split(data)
			if err != nil {
				return fmt.Errorf("compaction %s/%d: extent %s@%d: %w", t.Name, r.Partition, e.Object, e.BaseOffset, err)
			}
			var count int64
			for _, batch := range batches {
				h, err := recordbatch.ParseHeader(batch)
				if err != nil {
					return fmt.Errorf("compaction %s/%d: extent %s@%d: %w", t.Name, r.Partition, e.Object, e.BaseOffset, err)
				}
				count += int64(h.LastOffsetDelta) + 1
				ai := b.Add(t.ID, t.Name, r.Partition, batch)
				if adds[i].first < 0 {
					adds[i].first = ai
				}
				adds[i].last = ai
			}
			if count != e.EndOffset-e.BaseOffset {
				return fmt.Errorf("compaction %s/%d: extent %s@%d holds %d offsets, its batches %d",
					t.Name, r.Partition, e.Object, e.BaseOffset, e.EndOffset-e.BaseOffset, count)
			}
		}
	}
	object, placements := b.Build()
	key := segment.NewKey()
	if err := c.Bucket.Put(ctx, key, object); err != nil {
		return fmt.Errorf("compaction %s: put %s: %w", t.Name, key, err)
	}
	rs := make([]metastore.PartitionReplacement, len(o.Runs))
	for i, r := range o.Runs {
		first, last := placements[adds[i].first], placements[adds[i].last]
		ne := metastore.Extent{
			BaseOffset:   r.Extents[0].BaseOffset,
			EndOffset:    r.Extents[len(r.Extents)-1].EndOffset,
			Object:       key,
			ObjectSize:   int64(len(object)),
			ByteOffset:   first.ByteOffset,
			ByteLength:   last.ByteOffset + last.ByteLength - first.ByteOffset,
			MaxTimestamp: -1,
		}
		old := make([]metastore.ExtentRef, len(r.Extents))
		for j, e := range r.Extents {
			old[j] = metastore.ExtentRef{BaseOffset: e.BaseOffset, Object: e.Object}
			ne.MaxTimestamp = max(ne.MaxTimestamp, e.MaxTimestamp)
		}
		rs[i] = metastore.PartitionReplacement{TopicID: t.ID, Partition: r.Partition, Old: old, New: []metastore.Extent{ne}}
	}
	err := c.Store.ReplaceExtents(ctx, rs)
	if errors.Is(err, metastore.ErrExtentsChanged) || errors.Is(err, metastore.ErrInvalidReplacement) {
		// Nothing refers to the object and nothing ever will: delete it
		// now rather than leave it to the orphan scan. (After any other
		// error the swap may have happened; the orphan scan decides.)
		if derr := c.Bucket.Delete(context.WithoutCancel(ctx), key); derr != nil {
			log.Warn("compaction could not delete an abandoned object", "key", key, "err", derr)
		}
		log.Info("compaction abandoned an object: extents changed", "topic", t.Name, "err", err)
		if errors.Is(err, metastore.ErrExtentsChanged) {
			return nil
		}
		return fmt.Errorf("compaction %s: %w", t.Name, err)
	}
	if err != nil {
		return fmt.Errorf("compaction %s: replace extents: %w", t.Name, err)
	}
	env.Stats.In(len(oldObjects), o.Bytes)
	env.Stats.Out(1, int64(len(object)))
	log.Info("compaction merged extents", "topic", t.Name, "object", key, "partitions", len(o.Runs),
		"objects_in", len(oldObjects), "bytes", len(object))
	return nil
}

// rangeReader reads the byte ranges compaction needs, one GET per old
// object and run of ranges lying close together.
type rangeReader struct {
	bucket objstore.Bucket
	wanted map[string][][2]int64 // object → [offset, end) ranges
	spans  map[string][]span
}

type span struct {
	off  int64
	data []byte
}

// rangeGap is the largest gap between two wanted ranges of an object that
// one GET reads through rather than issuing two.
const rangeGap = 64 << 10

func newRangeReader(b objstore.Bucket) *rangeReader {
	return &rangeReader{bucket: b, wanted: map[string][][2]int64{}, spans: map[string][]span{}}
}

func (r *rangeReader) want(object string, off, n int64) {
	r.wanted[object] = append(r.wanted[object], [2]int64{off, off + n})
}

func (r *rangeReader) fetch(ctx context.Context) error {
	for object, rs := range r.wanted {
		slices.SortFunc(rs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
		for i := 0; i < len(rs); {
			start, end := rs[i][0], rs[i][1]
			j := i + 1
			for j < len(rs) && rs[j][0]-end <= rangeGap {
				end = max(end, rs[j][1])
				j++
			}
			data, err := r.bucket.GetRange(ctx, object, start, end-start)
			if err != nil {
				return fmt.Errorf("read %s: %w", object, err)
			}
			r.spans[object] = append(r.spans[object], span{off: start, data: data})
			i = j
		}
	}
	return nil
}

func (r *rangeReader) get(object string, off, n int64) []byte {
	for _, s := range r.spans[object] {
		if off >= s.off && off+n <= s.off+int64(len(s.data)) {
			return s.data[off-s.off : off-s.off+n]
		}
	}
	panic(fmt.Sprintf("compaction: range %s[%d,+%d) was not read", object, off, n))
}
