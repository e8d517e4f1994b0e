package fetch

import (
	"context"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
)

// OffsetForTimestamp returns the first offset whose record timestamp is
// at or after ts, with that record's timestamp, as ListOffsets does.
// found is false when every record is older.
func (r *Reader) OffsetForTimestamp(ctx context.Context, id metastore.TopicID, partition int32, ts int64) (offset, recordTS int64, found bool, err error) {
	e, ok, err := r.store.ExtentAtTimestamp(ctx, id, partition, ts)
	if err != nil || !ok {
		return -1, -1, false, err
	}
	found = false
	err = r.eachBatch(ctx, e, func(base int64, h recordbatch.Header, batch []byte) (bool, error) {
		if h.MaxTimestamp < ts {
			return true, nil
		}
		recordbatch.SetBaseOffset(batch, base)
		recs, err := recordbatch.Records(batch)
		if err != nil {
			return false, err
		}
		for _, rec := range recs {
			if rec.Timestamp >= ts {
				offset, recordTS, found = rec.Offset, rec.Timestamp, true
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil || !found {
		return -1, -1, false, err
	}
	return offset, recordTS, true, nil
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
