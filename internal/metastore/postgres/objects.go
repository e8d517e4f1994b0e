package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// ReplaceExtents implements metastore.ExtentReplacer in one transaction:
// it locks the replacements' partitions rows in commit order (so it is
// ordered with commits and retention on them), reads and checks the old
// extents, swaps them and moves the objects' reference counts.
func (s *Store) ReplaceExtents(ctx context.Context, rs []metastore.PartitionReplacement) error {
	if err := metastore.ValidateReplacements(rs); err != nil {
		return fmt.Errorf("replace extents: %w", err)
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b metastore.PartitionReplacement) int {
		return comparePartitions(partitionKey{a.TopicID, a.Partition}, partitionKey{b.TopicID, b.Partition})
	})
	notice := metastore.CommitNotice{Partitions: []metastore.TopicPartition{}}
	for _, r := range sorted {
		notice.Partitions = append(notice.Partitions, metastore.TopicPartition{TopicID: r.TopicID, Partition: r.Partition})
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ids, parts := make([][]byte, len(sorted)), make([]int32, len(sorted))
		for i, r := range sorted {
			ids[i], parts[i] = sqlID(r.TopicID), r.Partition
		}
		rows, _ := tx.Query(ctx, partitionsByKey("topic_id, part, log_start_offset", "FOR UPDATE"), ids, parts)
		logStarts := map[partitionKey]int64{}
		var (
			id       []byte
			pk       partitionKey
			logStart int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&id, &pk.partition, &logStart}, func() error {
			var err error
			pk.id, err = topicID(id)
			logStarts[pk] = logStart
			return err
		}); err != nil {
			return err
		}
		var (
			conflicts      []metastore.TopicPartition
			removed, added []metastore.Extent
		)
		for _, r := range sorted {
			tp := metastore.TopicPartition{TopicID: r.TopicID, Partition: r.Partition}
			logStart, exists := logStarts[partitionKey{r.TopicID, r.Partition}]
			if !exists {
				conflicts = append(conflicts, tp)
				continue
			}
			rows, _ := tx.Query(ctx, `
				SELECT `+extentColumns+` FROM extents
				WHERE topic_id = $1 AND part = $2 AND base_offset >= $3
				ORDER BY base_offset LIMIT $4`, sqlID(r.TopicID), r.Partition, r.Old[0].BaseOffset, len(r.Old))
			stored, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.Extent, error) {
				e := metastore.Extent{TopicID: r.TopicID, Partition: r.Partition}
				err := row.Scan(&e.BaseOffset, &e.EndOffset, &e.Object, &e.ObjectSize,
					&e.ByteOffset, &e.ByteLength, &e.MaxTimestamp, &e.CommittedAt)
				return e, err
			})
			if err != nil {
				return err
			}
			newExtents, old, conflict, err := metastore.ResolveReplacement(r, stored, logStart)
			if err != nil {
				return err
			}
			if conflict {
				conflicts = append(conflicts, tp)
				continue
			}
			removed, added = append(removed, old...), append(added, newExtents...)
		}
		if len(conflicts) > 0 {
			return &metastore.ReplaceConflictError{Partitions: conflicts}
		}
		var batch pgx.Batch
		for _, r := range sorted {
			if len(r.DropAborted) > 0 {
				batch.Queue(`DELETE FROM txn_aborted WHERE topic_id = $1 AND part = $2 AND last_offset = ANY($3)`,
					sqlID(r.TopicID), r.Partition, r.DropAborted)
			}
		}
		for _, e := range removed {
			batch.Queue(`DELETE FROM extents WHERE topic_id = $1 AND part = $2 AND base_offset = $3`,
				sqlID(e.TopicID), e.Partition, e.BaseOffset)
		}
		for _, e := range added {
			batch.Queue(`
				INSERT INTO extents (topic_id, part, base_offset, end_offset, object, object_size,
					byte_offset, byte_length, max_timestamp, committed_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				sqlID(e.TopicID), e.Partition, e.BaseOffset, e.EndOffset, e.Object, e.ObjectSize,
				e.ByteOffset, e.ByteLength, e.MaxTimestamp, e.CommittedAt)
		}
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if err := applyRefs(ctx, tx, metastore.RefChanges(removed, added), false); err != nil {
			return err
		}
		return s.queueNotice(ctx, tx, notice)
	})
	if err != nil {
		return fmt.Errorf("replace extents: %w", err)
	}
	s.announce(notice)
	return nil
}

// ListDeletable implements metastore.ObjectLedger.
func (s *Store) ListDeletable(ctx context.Context, before time.Time, limit int) ([]metastore.UnreferencedObject, error) {
	var out []metastore.UnreferencedObject
	lim := int64(1 << 62)
	if limit > 0 {
		lim = int64(limit)
	}
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `
			SELECT object, size, since FROM unreferenced_objects
			WHERE since < $1 ORDER BY since LIMIT $2`, before, lim)
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.UnreferencedObject, error) {
			var o metastore.UnreferencedObject
			err := row.Scan(&o.Key, &o.Size, &o.Since)
			return o, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list deletable objects: %w", err)
	}
	metastore.SortDeletable(out)
	return out, nil
}

// ForgetObject implements metastore.ObjectLedger.
func (s *Store) ForgetObject(ctx context.Context, key string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var refs int64
		err := tx.QueryRow(ctx, `SELECT refs FROM objects WHERE object = $1 FOR UPDATE`, key).Scan(&refs)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case refs > 0:
			return metastore.ErrObjectReferenced
		}
		var batch pgx.Batch
		batch.Queue(`DELETE FROM objects WHERE object = $1`, key)
		batch.Queue(`DELETE FROM unreferenced_objects WHERE object = $1`, key)
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("forget object %s: %w", key, err)
	}
	return nil
}

// KnownObjects implements metastore.ObjectLedger.
func (s *Store) KnownObjects(ctx context.Context, keys []string) (map[string]bool, error) {
	known := make(map[string]bool)
	err := s.run(ctx, func(ctx context.Context) error {
		clear(known)
		rows, _ := s.pool.Query(ctx, `SELECT object FROM objects WHERE object = ANY($1)`, keys)
		var key string
		_, err := pgx.ForEachRow(rows, []any{&key}, func() error {
			known[key] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("known objects: %w", err)
	}
	return known, nil
}

// ObjectUsage implements metastore.ObjectLedger.
func (s *Store) ObjectUsage(ctx context.Context) (metastore.ObjectUsage, error) {
	var u metastore.ObjectUsage
	err := s.run(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `
			SELECT
				COALESCE(SUM(CASE WHEN refs > 0 THEN 1 ELSE 0 END), 0),
				COALESCE(SUM(CASE WHEN refs > 0 THEN size ELSE 0 END), 0),
				COALESCE(SUM(CASE WHEN refs = 0 THEN 1 ELSE 0 END), 0),
				COALESCE(SUM(CASE WHEN refs = 0 THEN size ELSE 0 END), 0)
			FROM objects`).Scan(&u.ReferencedObjects, &u.ReferencedBytes, &u.UnreferencedObjects, &u.UnreferencedBytes)
	})
	if err != nil {
		return metastore.ObjectUsage{}, fmt.Errorf("object usage: %w", err)
	}
	return u, nil
}

// ObjectSize implements metastore.ObjectLedger.
func (s *Store) ObjectSize(ctx context.Context, key string) (int64, bool, error) {
	var (
		size  int64
		known bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `SELECT size FROM objects WHERE object = $1`, key).Scan(&size)
		known = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("object size %s: %w", key, err)
	}
	return size, known, nil
}
