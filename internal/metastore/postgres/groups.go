package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.GroupStore = (*Store)(nil)

// CommitOffsets implements metastore.GroupStore. The partitions are
// checked under a share lock, so a DeleteTopic cannot slip between the
// check and the write and leave offsets of a deleted topic behind. A zero
// CommittedAt is set from the database clock; any other is kept.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	if len(offsets) == 0 {
		return s.ready(ctx)
	}
	var keys []partitionKey
	for _, o := range offsets {
		keys = append(keys, partitionKey{o.TopicID, o.Partition})
	}
	slices.SortFunc(keys, comparePartitions)
	keys = slices.Compact(keys)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockPartitionsShared(ctx, tx, keys); err != nil {
			return err
		}
		// In call order, so that a partition named twice keeps the last.
		var batch pgx.Batch
		for _, o := range offsets {
			batch.Queue(`
				INSERT INTO group_offsets (group_name, topic_id, part, committed_offset, leader_epoch, metadata, committed_at)
				VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::TIMESTAMPTZ, now()))
				ON CONFLICT (group_name, topic_id, part) DO UPDATE SET
					committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
					metadata = excluded.metadata, committed_at = excluded.committed_at`,
				[]byte(group), sqlID(o.TopicID), o.Partition, o.Offset, o.LeaderEpoch, []byte(o.Metadata), nullTime(o.CommittedAt))
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("commit offsets %q: %w", group, err)
	}
	s.log.Debug("offsets committed", "group", group, "partitions", len(offsets))
	return nil
}

// nullTime is NULL for the zero time, so that the database's clock fills
// it in.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// FetchOffsets implements metastore.GroupStore. BYTEA sorts bytewise, which
// is the interface's topic id order.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	var offsets []metastore.CommittedOffset
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `
			SELECT topic_id, part, committed_offset, leader_epoch, metadata, committed_at
			FROM group_offsets WHERE group_name = $1 ORDER BY topic_id, part`, []byte(group))
		var err error
		offsets, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.CommittedOffset, error) {
			var (
				o        metastore.CommittedOffset
				id, meta []byte
			)
			if err := row.Scan(&id, &o.Partition, &o.Offset, &o.LeaderEpoch, &meta, &o.CommittedAt); err != nil {
				return o, err
			}
			o.Metadata = string(meta)
			o.TopicID, err = topicID(id)
			return o, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets %q: %w", group, err)
	}
	return offsets, nil
}

// DeleteOffsets implements metastore.GroupStore. Partitions without a
// committed offset are ignored.
func (s *Store) DeleteOffsets(ctx context.Context, group string, partitions []metastore.TopicPartition) error {
	ids, parts := make([][]byte, len(partitions)), make([]int32, len(partitions))
	for i, tp := range partitions {
		ids[i], parts[i] = sqlID(tp.TopicID), tp.Partition
	}
	err := s.run(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `
			DELETE FROM group_offsets WHERE group_name = $1
			AND (topic_id, part) IN (SELECT * FROM unnest($2::BYTEA[], $3::INTEGER[]))`,
			[]byte(group), ids, parts)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete offsets %q: %w", group, err)
	}
	return nil
}

// ExpireOffsets implements metastore.GroupStore.
func (s *Store) ExpireOffsets(ctx context.Context, group string, olderThan time.Time) (int, error) {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM group_offsets WHERE group_name = $1 AND committed_at < $2`,
			[]byte(group), olderThan)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire offsets %q before %v: %w", group, olderThan, err)
	}
	return int(n), nil
}

// LoadGroup implements metastore.GroupStore.
func (s *Store) LoadGroup(ctx context.Context, name string) (metastore.Group, bool, error) {
	var (
		g     metastore.Group
		found bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `
			SELECT protocol_type, state, data, version, updated_at FROM consumer_groups WHERE name = $1`, []byte(name))
		groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.Group, error) {
			g := metastore.Group{Name: name}
			var protocol []byte
			err := row.Scan(&protocol, &g.State, &g.Data, &g.Version, &g.UpdatedAt)
			g.ProtocolType = string(protocol)
			return g, err
		})
		if len(groups) == 1 {
			g, found = groups[0], true
		}
		return err
	})
	if err != nil {
		return metastore.Group{}, false, fmt.Errorf("load group %q: %w", name, err)
	}
	return g, found, nil
}

// SaveGroup implements metastore.GroupStore. The version check and the
// write are one statement: an insert that yields to an existing row for
// version 0, or an update conditional on the stored version, so of two
// coordinators saving over the same version exactly one wins. A zero
// UpdatedAt is set from the database clock.
func (s *Store) SaveGroup(ctx context.Context, g metastore.Group) (int64, error) {
	data := g.Data
	if data == nil {
		data = []byte{}
	}
	var written int64
	err := s.run(ctx, func(ctx context.Context) error {
		sql := `UPDATE consumer_groups SET protocol_type = $2, state = $3, data = $4, version = version + 1,
				updated_at = COALESCE($5::TIMESTAMPTZ, now())
			WHERE name = $1 AND version = $6`
		if g.Version == 0 {
			sql = `INSERT INTO consumer_groups (name, protocol_type, state, data, updated_at, version)
				VALUES ($1, $2, $3, $4, COALESCE($5::TIMESTAMPTZ, now()), $6 + 1)
				ON CONFLICT (name) DO NOTHING`
		}
		tag, err := s.pool.Exec(ctx, sql, []byte(g.Name), []byte(g.ProtocolType), g.State, data, nullTime(g.UpdatedAt), g.Version)
		written = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("save group %q: %w", g.Name, err)
	}
	if written == 0 {
		return 0, fmt.Errorf("save group %q: expected version %d: %w", g.Name, g.Version, metastore.ErrGroupVersionConflict)
	}
	return g.Version + 1, nil
}

// ListGroups implements metastore.GroupStore.
func (s *Store) ListGroups(ctx context.Context) ([]metastore.GroupSummary, error) {
	var groups []metastore.GroupSummary
	err := s.run(ctx, func(ctx context.Context) error {
		// Groups that only commit offsets (standalone consumers, or a
		// group whose record was never saved) show as Empty consumer
		// groups; a record's fields win.
		rows, _ := s.pool.Query(ctx, `
			SELECT name, protocol_type, state FROM consumer_groups
			UNION ALL
			SELECT DISTINCT group_name, CAST(NULL AS BYTEA), CAST(NULL AS TEXT) FROM group_offsets
			WHERE group_name NOT IN (SELECT name FROM consumer_groups)`)
		var err error
		groups, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.GroupSummary, error) {
			var (
				name, protocol []byte
				state          *string
			)
			if err := row.Scan(&name, &protocol, &state); err != nil {
				return metastore.GroupSummary{}, err
			}
			if state == nil {
				return metastore.OffsetsOnlyGroup(string(name)), nil
			}
			return metastore.GroupSummary{Name: string(name), ProtocolType: string(protocol), State: *state}, nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	// Byte order, as the embedded store; the database's collation may differ.
	slices.SortFunc(groups, func(a, b metastore.GroupSummary) int { return strings.Compare(a.Name, b.Name) })
	return groups, nil
}

// DeleteGroup implements metastore.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var batch pgx.Batch
		var records, offsets int64
		batch.Queue(`DELETE FROM consumer_groups WHERE name = $1`, []byte(name)).Exec(func(tag pgconn.CommandTag) error {
			records = tag.RowsAffected()
			return nil
		})
		batch.Queue(`DELETE FROM group_offsets WHERE group_name = $1`, []byte(name)).Exec(func(tag pgconn.CommandTag) error {
			offsets = tag.RowsAffected()
			return nil
		})
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if records == 0 && offsets == 0 {
			return metastore.ErrUnknownGroup
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	return nil
}

// lockPartitionsShared takes a share lock on the rows of keys in the
// partitions table, in the lock order (sortedPartitions), so that a concurrent
// DeleteTopic waits for the caller's transaction, and fails with
// ErrUnknownTopicOrPartition naming the first partition that is not
// there.
func lockPartitionsShared(ctx context.Context, tx pgx.Tx, keys []partitionKey) error {
	ids, parts := partitionArgs(sortedPartitions(keys))
	rows, _ := tx.Query(ctx, partitionsByKey("topic_id, part", "FOR SHARE"), ids, parts)
	found, err := pgx.CollectRows(rows, scanPartitionKey)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !slices.Contains(found, k) {
			return fmt.Errorf("%s: %w", partitionName(k.id, k.partition), metastore.ErrUnknownTopicOrPartition)
		}
	}
	return nil
}
