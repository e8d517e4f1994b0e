package embedded

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/floe-io/floe/internal/metastore"
)

// Offsets implements metastore.Store.
func (s *Store) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	pk := partitionKey{id: id, partition: partition}
	var o metastore.PartitionOffsets
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		o, err = partitionOffsets(tx, pk) // fails for an unknown partition
		return err
	})
	if err != nil {
		return metastore.PartitionOffsets{}, fmt.Errorf("offsets %s: %w", pk, err)
	}
	return o, nil
}

// Extents implements metastore.Store. It seeks to the last extent starting
// at or before from, which is the one containing it if any, and reads on in
// key (= offset) order.
func (s *Store) Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error) {
	pk := partitionKey{id: id, partition: partition}
	from = max(from, 0)
	var extents []metastore.Extent
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if err := checkPartition(tx, pk); err != nil {
			return err
		}
		prefix := pk.bytes()
		c := tx.Bucket([]byte(bucketExtents)).Cursor()
		start := pk.extentKey(from)
		k, _ := c.Seek(start)
		if !bytes.Equal(k, start) {
			// Step back to the extent before the seek position.
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			if bytes.HasPrefix(k, prefix) {
				start = bytes.Clone(k)
			}
		}
		for k, v := c.Seek(start); bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeExtent(k, v)
			if err != nil {
				return err
			}
			if e.EndOffset <= from {
				continue // the extent before from ends before it
			}
			extents = append(extents, e)
			if limit > 0 && len(extents) == limit {
				break
			}
		}
		return nil
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
	return s.view(ctx, func(tx *bolt.Tx) error {
		if err := checkPartition(tx, pk); err != nil {
			return err
		}
		prefix := pk.bytes()
		c := tx.Bucket([]byte(bucketExtents)).Cursor()
		for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeExtent(k, v)
			if err != nil {
				return err
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}
