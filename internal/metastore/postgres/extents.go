package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// Offsets implements metastore.Store in one query: the last stable
// offset is a seek on txn_open's primary key.
func (s *Store) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	var o metastore.PartitionOffsets
	err := s.run(ctx, func(ctx context.Context) error {
		var logStart, hwm, oldest int64
		err := s.pool.QueryRow(ctx, `
			SELECT p.log_start_offset, p.high_watermark, `+oldestOpenSQL+`
			FROM partitions p WHERE p.topic_id = $1 AND p.part = $2`,
			sqlID(id), partition).Scan(&logStart, &hwm, &oldest)
		if errors.Is(err, pgx.ErrNoRows) {
			return metastore.ErrUnknownTopicOrPartition
		}
		o = metastore.NewPartitionOffsets(logStart, hwm, oldest)
		return err
	})
	if err != nil {
		return metastore.PartitionOffsets{}, fmt.Errorf("offsets %s: %w", partitionName(id, partition), err)
	}
	return o, nil
}

const extentColumns = `base_offset, end_offset, object, object_size, byte_offset, byte_length, max_timestamp, committed_at`

// Extents implements metastore.Store. Extents of a partition never
// overlap, so those ending after from are the one starting at the
// greatest base offset <= from and all later ones: both bounds are seeks
// on the primary key, however long the partition.
func (s *Store) Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error) {
	from = max(from, 0)
	lim := int64(math.MaxInt64)
	if limit > 0 {
		lim = int64(limit)
	}
	extents, err := s.queryExtents(ctx, id, partition, `
		SELECT `+extentColumns+` FROM extents
		WHERE topic_id = $1 AND part = $2 AND end_offset > $3
		  AND base_offset >= COALESCE((
			SELECT MAX(base_offset) FROM extents
			WHERE topic_id = $1 AND part = $2 AND base_offset <= $3), 0)
		ORDER BY base_offset
		LIMIT $4`, from, lim)
	if err != nil {
		return nil, fmt.Errorf("extents %s from %d: %w", partitionName(id, partition), from, err)
	}
	return extents, nil
}

// ExtentAtTimestamp implements metastore.Store.
func (s *Store) ExtentAtTimestamp(ctx context.Context, id metastore.TopicID, partition int32, ts int64) (metastore.Extent, bool, error) {
	extents, err := s.queryExtents(ctx, id, partition, `
		SELECT `+extentColumns+` FROM extents
		WHERE topic_id = $1 AND part = $2 AND max_timestamp >= $3
		ORDER BY base_offset
		LIMIT 1`, ts)
	if err != nil {
		return metastore.Extent{}, false, fmt.Errorf("extent at timestamp %s %d: %w", partitionName(id, partition), ts, err)
	}
	if len(extents) == 0 {
		return metastore.Extent{}, false, nil
	}
	return extents[0], true, nil
}

// ExtentWithMaxTimestamp implements metastore.Store.
func (s *Store) ExtentWithMaxTimestamp(ctx context.Context, id metastore.TopicID, partition int32) (metastore.Extent, bool, error) {
	extents, err := s.queryExtents(ctx, id, partition, `
		SELECT `+extentColumns+` FROM extents
		WHERE topic_id = $1 AND part = $2
		ORDER BY max_timestamp DESC, base_offset
		LIMIT 1`)
	if err != nil {
		return metastore.Extent{}, false, fmt.Errorf("extent with max timestamp %s: %w", partitionName(id, partition), err)
	}
	if len(extents) == 0 {
		return metastore.Extent{}, false, nil
	}
	return extents[0], true, nil
}

// queryExtents runs a query of one partition's extents, whose first two
// parameters are the topic id and partition, and fails with
// ErrUnknownTopicOrPartition if the partition does not exist. Both
// queries go in one round trip.
func (s *Store) queryExtents(ctx context.Context, id metastore.TopicID, partition int32, sql string, args ...any) ([]metastore.Extent, error) {
	var extents []metastore.Extent
	err := s.run(ctx, func(ctx context.Context) error {
		var batch pgx.Batch
		var exists bool
		batch.Queue(`SELECT EXISTS (SELECT 1 FROM partitions WHERE topic_id = $1 AND part = $2)`,
			sqlID(id), partition).QueryRow(func(row pgx.Row) error { return row.Scan(&exists) })
		batch.Queue(sql, append([]any{sqlID(id), partition}, args...)...).Query(func(rows pgx.Rows) error {
			var err error
			extents, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.Extent, error) {
				e := metastore.Extent{TopicID: id, Partition: partition}
				err := row.Scan(&e.BaseOffset, &e.EndOffset, &e.Object, &e.ObjectSize,
					&e.ByteOffset, &e.ByteLength, &e.MaxTimestamp, &e.CommittedAt)
				return e, err
			})
			return err
		})
		if err := s.pool.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if !exists {
			return metastore.ErrUnknownTopicOrPartition
		}
		return nil
	})
	return extents, err
}
