package embedded

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// InitProducerID implements metastore.Store. Only the producer's current
// epoch is stored here; per-partition sequence state is reset lazily by the
// first batch carrying the new epoch (see sequence.State.Check).
func (s *Store) InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error) {
	var (
		gotID    int64
		gotEpoch int16
	)
	err := s.update(ctx, func(tx kv.Tx) error {
		producers := tx.Bucket([]byte(bucketProducers))
		if producerID >= 0 {
			v := producers.Get(producerKey(producerID))
			if v == nil {
				return metastore.ErrUnknownProducerID
			}
			if len(v) != 2 {
				return fmt.Errorf("producer epoch: %w: %d bytes", errCorrupt, len(v))
			}
			next, fresh, err := metastore.NextProducerEpoch(epoch, int16(binary.BigEndian.Uint16(v)))
			if err != nil {
				return err
			}
			if !fresh {
				gotID, gotEpoch = producerID, next
				return putProducer(producers, gotID, gotEpoch)
			}
			// Epochs are exhausted: continue under a fresh id.
		}
		id, err := allocateProducerID(tx)
		if err != nil {
			return err
		}
		gotID, gotEpoch = id, 0
		return putProducer(producers, gotID, gotEpoch)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("init producer id %d epoch %d: %w", producerID, epoch, err)
	}
	return gotID, gotEpoch, nil
}

// allocateProducerID takes the next id from the persisted counter.
func allocateProducerID(tx kv.Tx) (int64, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	id := int64(firstProducerID)
	if v := meta.Get([]byte(keyNextProducerID)); v != nil {
		var err error
		if id, err = decodeInt64(v, "next producer id"); err != nil {
			return 0, err
		}
	}
	next := binary.BigEndian.AppendUint64(nil, uint64(id+1))
	if err := meta.Put([]byte(keyNextProducerID), next); err != nil {
		return 0, err
	}
	return id, nil
}

func putProducer(b kv.Bucket, id int64, epoch int16) error {
	return b.Put(producerKey(id), binary.BigEndian.AppendUint16(nil, uint16(epoch)))
}
