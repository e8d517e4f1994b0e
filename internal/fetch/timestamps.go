package fetch

import (
	"context"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
)

// OffsetForTimestamp returns the first offset at or after the log start
// offset whose record timestamp is at or after ts, with that record's
// timestamp, as ListOffsets does. found is false when every such record
// is older. Records below the log start offset, which an extent
// straddling it still holds, are never answered.
func (r *Reader) OffsetForTimestamp(ctx context.Context, id metastore.TopicID, partition int32, ts int64) (offset, recordTS int64, found bool, err error) {
	offs, err := r.store.Offsets(ctx, id, partition)
	if err != nil {
		return -1, -1, false, err
	}
	e, ok, err := r.store.ExtentAtTimestamp(ctx, id, partition, ts)
	for ok && err == nil {
		found = false
		err = r.eachBatch(ctx, e, func(base int64, h recordbatch.Header, batch []byte) (bool, error) {
			if h.MaxTimestamp < ts || base+int64(h.LastOffsetDelta) < offs.LogStartOffset {
				return true, nil
			}
			recordbatch.SetBaseOffset(batch, base)
			recs, err := recordbatch.Records(batch)
			if err != nil {
				return false, err
			}
			for _, rec := range recs {
				if rec.Timestamp >= ts && rec.Offset >= offs.LogStartOffset {
					offset, recordTS, found = rec.Offset, rec.Timestamp, true
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil || found {
			break
		}
		// Only an extent straddling the log start can hold no answer:
		// look on from its end.
		e, ok, err = r.nextAtTimestamp(ctx, id, partition, e.EndOffset, ts)
	}
	if err != nil || !found {
		return -1, -1, false, err
	}
	return offset, recordTS, true, nil
}

// nextAtTimestamp returns the first extent from offset from whose
// MaxTimestamp >= ts.
func (r *Reader) nextAtTimestamp(ctx context.Context, id metastore.TopicID, partition int32, from, ts int64) (metastore.Extent, bool, error) {
	for {
		es, err := r.store.Extents(ctx, id, partition, from, extentsPerLookup)
		if err != nil || len(es) == 0 {
			return metastore.Extent{}, false, err
		}
		for _, e := range es {
			if e.MaxTimestamp >= ts {
				return e, true, nil
			}
		}
		from = es[len(es)-1].EndOffset
	}
}

// OffsetOfMaxTimestamp returns the offset of the record with the largest
// timestamp in the partition (the first one on ties), as ListOffsets with
// timestamp -3 (KIP-734) does.
func (r *Reader) OffsetOfMaxTimestamp(ctx context.Context, id metastore.TopicID, partition int32) (offset, recordTS int64, found bool, err error) {
	e, ok, err := r.store.ExtentWithMaxTimestamp(ctx, id, partition)
	if err != nil || !ok {
		return -1, -1, false, err
	}
	offset, recordTS = -1, -1
	err = r.eachBatch(ctx, e, func(base int64, h recordbatch.Header, batch []byte) (bool, error) {
		if found && h.MaxTimestamp <= recordTS {
			return true, nil
		}
		recordbatch.SetBaseOffset(batch, base)
		recs, err := recordbatch.Records(batch)
		if err != nil {
			return false, err
		}
		for _, rec := range recs {
			if !found || rec.Timestamp > recordTS {
				offset, recordTS, found = rec.Offset, rec.Timestamp, true
			}
		}
		return true, nil
	})
	return offset, recordTS, found, err
}

// eachBatch reads extent e and calls fn for each batch with its base
// offset, until fn returns false or an error.
func (r *Reader) eachBatch(ctx context.Context, e metastore.Extent, fn func(base int64, h recordbatch.Header, batch []byte) (bool, error)) error {
	data, err := r.blocks.ReadRange(ctx, e.Object, e.ObjectSize, e.ByteOffset, e.ByteLength)
	if err != nil {
		return err
	}
	batches, err := recordbatch.Split(data)
	if err != nil {
		return err
	}
	base := e.BaseOffset
	for _, b := range batches {
		h, err := recordbatch.ParseHeader(b)
		if err != nil {
			return err
		}
		more, err := fn(base, h, b)
		if err != nil || !more {
			return err
		}
		base += int64(h.LastOffsetDelta) + 1
	}
	return nil
}
