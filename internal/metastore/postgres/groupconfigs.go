package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.GroupConfigStore = (*Store)(nil)

func groupConfigsIn(ctx context.Context, q querier, group string, lock bool) (map[string]string, error) {
	sql := `SELECT configs FROM group_configs WHERE group_name = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var raw string
	configs := map[string]string{}
	switch err := q.QueryRow(ctx, sql, []byte(group)).Scan(&raw); {
	case errors.Is(err, pgx.ErrNoRows):
		return configs, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal([]byte(raw), &configs); err != nil {
		return nil, fmt.Errorf("stored configs: %w", err)
	}
	return configs, nil
}

// GroupConfigs implements metastore.GroupConfigStore.
func (s *Store) GroupConfigs(ctx context.Context, group string) (map[string]string, error) {
	var configs map[string]string
	err := s.run(ctx, func(ctx context.Context) error {
		var err error
		configs, err = groupConfigsIn(ctx, s.pool, group, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("group configs %q: %w", group, err)
	}
	return configs, nil
}

// AlterGroupConfigs implements metastore.GroupConfigStore. The row is
// created first if missing (an insert that does nothing when it exists),
// so that two first changes of one group serialise on its lock.
func (s *Store) AlterGroupConfigs(ctx context.Context, group string, changes []metastore.ConfigChange) (map[string]string, error) {
	var configs map[string]string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO group_configs (group_name, configs) VALUES ($1, '{}') ON CONFLICT (group_name) DO NOTHING`, []byte(group)); err != nil {
			return err
		}
		old, err := groupConfigsIn(ctx, tx, group, true)
		if err != nil {
			return err
		}
		if configs, err = metastore.ApplyGroupConfigChanges(old, changes); err != nil {
			return err
		}
		if len(configs) == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM group_configs WHERE group_name = $1`, []byte(group))
			return err
		}
		raw, err := json.Marshal(configs)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE group_configs SET configs = $2 WHERE group_name = $1`, []byte(group), string(raw))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("alter group configs %q: %w", group, err)
	}
	return configs, nil
}

// GroupsWithConfigs implements metastore.GroupConfigStore. A row exists
// only while its group has a config (AlterGroupConfigs deletes it when
// the last goes), but an empty object is skipped all the same.
func (s *Store) GroupsWithConfigs(ctx context.Context, limit int) ([]string, error) {
	groups := []string{}
	if limit < 1 {
		return groups, nil
	}
	err := s.run(ctx, func(ctx context.Context) error {
		groups = groups[:0]
		rows, err := s.pool.Query(ctx, `SELECT group_name FROM group_configs WHERE configs <> '{}'
			ORDER BY octet_length(group_name), group_name LIMIT $1`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name []byte
			if err := rows.Scan(&name); err != nil {
				return err
			}
			groups = append(groups, string(name))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("groups with configs: %w", err)
	}
	return groups, nil
}
