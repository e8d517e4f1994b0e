package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.ShareStore = (*Store)(nil)

// LoadShareStates implements metastore.ShareStore. BYTEA sorts bytewise,
// which is the interface's topic id order.
func (s *Store) LoadShareStates(ctx context.Context, group string) ([]metastore.ShareState, error) {
	var states []metastore.ShareState
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `
			SELECT topic_id, part, state_epoch, start_offset, batches, version, updated_at
			FROM share_partitions WHERE group_name = $1 ORDER BY topic_id, part`, []byte(group))
		var err error
		states, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.ShareState, error) {
			var (
				st      metastore.ShareState
				id, enc []byte
			)
			if err := row.Scan(&id, &st.Partition, &st.StateEpoch, &st.StartOffset, &enc, &st.Version, &st.UpdatedAt); err != nil {
				return st, err
			}
			var err error
			if st.TopicID, err = topicID(id); err != nil {
				return st, err
			}
			st.Batches, err = metastore.DecodeShareBatches(enc)
			return st, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load share states %q: %w", group, err)
	}
	return states, nil
}

// ListShareGroups implements metastore.ShareStore: the groups with
// share-partition states and those with a membership record. Group names
// are stored as BYTEA, which sorts bytewise.
func (s *Store) ListShareGroups(ctx context.Context) ([]string, error) {
	var groups []string
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT group_name FROM share_partitions UNION SELECT group_name FROM share_groups ORDER BY group_name`)
		var err error
		groups, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
			var name []byte
			err := row.Scan(&name)
			return string(name), err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list share groups: %w", err)
	}
	return groups, nil
}

// WriteShareStates implements metastore.ShareStore. One transaction
// checks that the partitions exist (holding them against DeleteTopic, as
// CommitOffsets does) and writes each state by an update conditional on
// its version, or an insert that yields to an existing row for version
// 0; a row not written rolls the whole call back.
func (s *Store) WriteShareStates(ctx context.Context, group string, states []metastore.ShareState) ([]int64, error) {
	if err := metastore.CheckShareStates(states); err != nil {
		return nil, fmt.Errorf("write share states %q: %w", group, err)
	}
	if len(states) == 0 {
		return []int64{}, s.ready(ctx)
	}
	keys := make([]partitionKey, 0, len(states))
	for _, st := range states {
		keys = append(keys, partitionKey{st.TopicID, st.Partition})
	}
	slices.SortFunc(keys, comparePartitions)
	versions := make([]int64, len(states))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockPartitionsShared(ctx, tx, keys); err != nil {
			return err
		}
		var batch pgx.Batch
		for _, st := range states {
			sql := `UPDATE share_partitions SET state_epoch = $4, start_offset = $5, batches = $6, version = version + 1,
					updated_at = COALESCE($7::TIMESTAMPTZ, now())
				WHERE group_name = $1 AND topic_id = $2 AND part = $3 AND version = $8`
			if st.Version == 0 {
				sql = `INSERT INTO share_partitions (group_name, topic_id, part, state_epoch, start_offset, batches, updated_at, version)
					VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::TIMESTAMPTZ, now()), $8 + 1)
					ON CONFLICT (group_name, topic_id, part) DO NOTHING`
			}
			batch.Queue(sql, []byte(group), sqlID(st.TopicID), st.Partition, st.StateEpoch, st.StartOffset,
				metastore.EncodeShareBatches(st.Batches), nullTime(st.UpdatedAt), st.Version)
		}
		results := tx.SendBatch(ctx, &batch)
		for i, st := range states {
			tag, err := results.Exec()
			if err != nil {
				results.Close()
				return err
			}
			if tag.RowsAffected() == 0 {
				results.Close()
				return fmt.Errorf("%s: expected version %d: %w", partitionName(st.TopicID, st.Partition), st.Version, metastore.ErrShareVersionConflict)
			}
			versions[i] = st.Version + 1
		}
		return results.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("write share states %q: %w", group, err)
	}
	return versions, nil
}

// DeleteShareStates implements metastore.ShareStore.
func (s *Store) DeleteShareStates(ctx context.Context, group string, partitions []metastore.TopicPartition) error {
	err := s.run(ctx, func(ctx context.Context) error {
		if partitions == nil {
			_, err := s.pool.Exec(ctx, `DELETE FROM share_partitions WHERE group_name = $1`, []byte(group))
			return err
		}
		if len(partitions) == 0 {
			return nil
		}
		ids, parts := make([][]byte, 0, len(partitions)), make([]int32, 0, len(partitions))
		for _, tp := range partitions {
			ids, parts = append(ids, sqlID(tp.TopicID)), append(parts, tp.Partition)
		}
		_, err := s.pool.Exec(ctx, `DELETE FROM share_partitions WHERE group_name = $1
			AND (topic_id, part) IN (SELECT * FROM unnest($2::BYTEA[], $3::INTEGER[]))`, []byte(group), ids, parts)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete share states %q: %w", group, err)
	}
	return nil
}
