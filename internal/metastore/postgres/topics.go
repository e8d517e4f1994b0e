package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// CreateTopic implements metastore.Store. The topic row and one row per
// partition are inserted together; CreatedAt comes from the database
// clock.
func (s *Store) CreateTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	if err := metastore.CheckTopicSpec(spec); err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	u, err := uuid.NewRandom()
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	id := metastore.TopicID(u)
	configs, err := json.Marshal(nonNil(spec.Configs))
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	var created time.Time
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO topics (id, name, partitions, configs, created_at)
			VALUES ($1, $2, $3, $4, now())
			ON CONFLICT (name) DO NOTHING
			RETURNING created_at`,
			sqlID(id), spec.Name, spec.Partitions, string(configs)).Scan(&created)
		if errors.Is(err, pgx.ErrNoRows) {
			return metastore.ErrTopicExists
		}
		if err != nil {
			return err
		}
		if err := insertPartitions(ctx, tx, id, 0, spec.Partitions); err != nil {
			return err
		}
		return s.announceTopic(ctx, tx, spec.Name)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	s.NotifyTopics(metastore.TopicNotice{Names: []string{spec.Name}})
	return metastore.Topic{
		ID:         id,
		Name:       spec.Name,
		Partitions: spec.Partitions,
		Configs:    maps.Clone(nonNil(spec.Configs)),
		CreatedAt:  created,
	}, nil
}

// insertPartitions adds the empty partitions [from, to) of a topic.
func insertPartitions(ctx context.Context, tx pgx.Tx, id metastore.TopicID, from, to int32) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO partitions (topic_id, part, high_watermark, log_start_offset)
		SELECT $1, p, 0, 0 FROM generate_series($2::INTEGER, $3::INTEGER) AS p`,
		sqlID(id), from, to-1)
	return err
}

// DeleteTopic implements metastore.Store. It locks the topic's partitions
// first, in the commit order, so that it waits for commits in progress
// instead of deadlocking with them, and then deletes every row of the
// topic, table by table.
func (s *Store) DeleteTopic(ctx context.Context, name string) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = topicByName(ctx, tx, name, true); err != nil {
			return err
		}
		id := sqlID(t.ID)
		if _, err := tx.Exec(ctx, `SELECT part FROM partitions WHERE topic_id = $1 ORDER BY part FOR UPDATE`, id); err != nil {
			return err
		}
		for _, table := range []string{"topics WHERE id = $1", "partitions WHERE topic_id = $1",
			"producer_state WHERE topic_id = $1", "group_offsets WHERE topic_id = $1",
			"txn_open WHERE topic_id = $1", "txn_aborted WHERE topic_id = $1", "txn_offsets WHERE topic_id = $1",
			"share_partitions WHERE topic_id = $1"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table, id); err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
		}
		// Its objects lose these references; those left with none
		// become the cleaner's.
		dropped, err := deleteReturning(ctx, tx, `DELETE FROM extents WHERE topic_id = $1 RETURNING object, object_size`, id)
		if err != nil {
			return fmt.Errorf("delete from extents: %w", err)
		}
		if err := applyRefs(ctx, tx, metastore.RefChanges(dropped, nil), false); err != nil {
			return err
		}
		return s.announceTopic(ctx, tx, name)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("delete topic %s: %w", name, err)
	}
	s.NotifyTopics(metastore.TopicNotice{Names: []string{name}})
	return t, nil
}

// CreatePartitions implements metastore.Store.
func (s *Store) CreatePartitions(ctx context.Context, name string, total int32) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = topicByName(ctx, tx, name, true); err != nil {
			return err
		}
		if err := metastore.CheckPartitionIncrease(t.Partitions, total); err != nil {
			return err
		}
		if err := insertPartitions(ctx, tx, t.ID, t.Partitions, total); err != nil {
			return err
		}
		t.Partitions = total
		if _, err = tx.Exec(ctx, `UPDATE topics SET partitions = $2 WHERE id = $1`, sqlID(t.ID), total); err != nil {
			return err
		}
		return s.announceTopic(ctx, tx, name)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create partitions %s: %w", name, err)
	}
	s.NotifyTopics(metastore.TopicNotice{Names: []string{name}})
	return t, nil
}

// AlterTopicConfigs implements metastore.Store.
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, changes []metastore.ConfigChange) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = topicByName(ctx, tx, name, true); err != nil {
			return err
		}
		t.Configs = metastore.ApplyConfigChanges(t.Configs, changes)
		configs, err := json.Marshal(t.Configs)
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `UPDATE topics SET configs = $2 WHERE id = $1`, sqlID(t.ID), string(configs)); err != nil {
			return err
		}
		return s.announceTopic(ctx, tx, name)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("alter topic configs %s: %w", name, err)
	}
	s.NotifyTopics(metastore.TopicNotice{Names: []string{name}})
	return t, nil
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.run(ctx, func(ctx context.Context) error {
		var err error
		t, err = topicByName(ctx, s.pool, name, false)
		return err
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, nil
}

// Topics implements metastore.Store. They are sorted here, not by the
// database, whose collation need not be byte order.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	var topics []metastore.Topic
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT `+topicColumns+` FROM topics`)
		var err error
		topics, err = pgx.CollectRows(rows, scanTopic)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	slices.SortFunc(topics, func(a, b metastore.Topic) int { return cmp.Compare(a.Name, b.Name) })
	return topics, nil
}

// announceTopic tells the other agents' listeners, when the transaction
// commits, that a topic changed (docs/postgres.md). Databases that cannot
// notify are polled instead (topicsFingerprint).
func (s *Store) announceTopic(ctx context.Context, tx pgx.Tx, name string) error {
	if !s.notify {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, topicsChannel, s.origin+"|"+name)
	return err
}

const topicColumns = `id, name, partitions, configs, created_at`

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// topicByName reads a topic, locking its row when forUpdate is set (every
// change to a topic reads it this way first).
func topicByName(ctx context.Context, q querier, name string, forUpdate bool) (metastore.Topic, error) {
	sql := `SELECT ` + topicColumns + ` FROM topics WHERE name = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	rows, _ := q.Query(ctx, sql, name)
	t, err := pgx.CollectExactlyOneRow(rows, scanTopic)
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.Topic{}, metastore.ErrUnknownTopicOrPartition
	}
	return t, err
}

func scanTopic(row pgx.CollectableRow) (metastore.Topic, error) {
	var (
		t       metastore.Topic
		id      []byte
		configs string
	)
	if err := row.Scan(&id, &t.Name, &t.Partitions, &configs, &t.CreatedAt); err != nil {
		return t, err
	}
	var err error
	if t.ID, err = topicID(id); err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(configs), &t.Configs); err != nil {
		return t, fmt.Errorf("topic %s configs: %w", t.Name, err)
	}
	t.Configs = nonNil(t.Configs)
	return t, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
