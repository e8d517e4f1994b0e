package embedded

import (
	"context"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// Offsets implements metastore.Store.
func (s *Store) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	pk := partitionKey{id: id, partition: partition}
	var o metastore.PartitionOffsets
	err := s.view(ctx, func(tx kv.Tx) error {
		var err error
		o, err = partitionOffsets(tx, pk) // fails for an unknown partition
		return err
	})
	if err != nil {
		return metastore.PartitionOffsets{}, fmt.Errorf("offsets %s: %w", pk, err)
	}
	return o, nil
}

// Extents implements metastore.Store (partitionExtents).
func (s *Store) Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error) {
	pk := partitionKey{id: id, partition: partition}
	from = max(from, 0)
	var extents []metastore.Extent
	err := s.view(ctx, func(tx kv.Tx) error {
		return partitionExtents(tx, pk, from, func(e metastore.Extent) bool {
			extents = append(extents, e)
			return limit <= 0 || len(extents) < limit
		})
	})
	if err != nil {
		return nil, fmt.Errorf("extents %s from %d: %w", pk, from, err)
	}
	return extents, nil
}

// ExtentAtTimestamp implements metastore.Store with a scan of the
// partition's extents.
func (s *Store) ExtentAtTimestamp(ctx context.Context, id metastore.TopicID, partition int32, ts int64) (metastore.Extent, bool, error) {
	pk := partitionKey{id: id, partition: partition}
	var (
		found  metastore.Extent
		exists bool
	)
	err := s.scanExtents(ctx, pk, func(e metastore.Extent) bool {
		if e.MaxTimestamp >= ts {
			found, exists = e, true
			return false
		}
		return true
	})
	if err != nil {
		return metastore.Extent{}, false, fmt.Errorf("extent at timestamp %s %d: %w", pk, ts, err)
	}
	return found, exists, nil
}

// ExtentWithMaxTimestamp implements metastore.Store with a scan of the
// partition's extents.
func (s *Store) ExtentWithMaxTimestamp(ctx context.Context, id metastore.TopicID, partition int32) (metastore.Extent, bool, error) {
	pk := partitionKey{id: id, partition: partition}
	var (
		found  metastore.Extent
		exists bool
	)
	err := s.scanExtents(ctx, pk, func(e metastore.Extent) bool {
		if !exists || e.MaxTimestamp > found.MaxTimestamp {
			found, exists = e, true
		}
		return true
	})
	if err != nil {
		return metastore.Extent{}, false, fmt.Errorf("extent with max timestamp %s: %w", pk, err)
	}
	return found, exists, nil
}

// scanExtents calls fn for every extent of a partition in offset order
// until fn returns false.
func (s *Store) scanExtents(ctx context.Context, pk partitionKey, fn func(metastore.Extent) bool) error {
	return s.view(ctx, func(tx kv.Tx) error {
		return partitionExtents(tx, pk, 0, fn)
	})
}
