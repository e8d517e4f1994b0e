package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.QuotaStore = (*Store)(nil)

// ClientQuotas implements metastore.QuotaStore.
func (s *Store) ClientQuotas(ctx context.Context) ([]metastore.ClientQuota, error) {
	var out []metastore.ClientQuota
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT entity, quota_values FROM client_quotas`)
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.ClientQuota, error) {
			var entity, values string
			var q metastore.ClientQuota
			if err := row.Scan(&entity, &values); err != nil {
				return q, err
			}
			if err := json.Unmarshal([]byte(entity), &q.Entity); err != nil {
				return q, fmt.Errorf("quota entity %s: %w", entity, err)
			}
			if err := json.Unmarshal([]byte(values), &q.Values); err != nil {
				return q, fmt.Errorf("quota values of %s: %w", entity, err)
			}
			return q, nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client quotas: %w", err)
	}
	// Sorted here rather than by the database, whose collation may not be
	// byte order.
	slices.SortFunc(out, func(a, b metastore.ClientQuota) int { return strings.Compare(a.Entity.Key(), b.Entity.Key()) })
	return out, nil
}

// AlterClientQuotas implements metastore.QuotaStore: each entity's row is
// read with FOR UPDATE, changed and written back in one transaction.
func (s *Store) AlterClientQuotas(ctx context.Context, changes []metastore.QuotaChange) error {
	for _, c := range changes {
		if err := metastore.ValidateQuotaChange(c); err != nil {
			return fmt.Errorf("alter client quotas: %w", err)
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for _, c := range changes {
			key := c.Entity.Key()
			var raw string
			var old map[string]float64
			err := tx.QueryRow(ctx, `SELECT quota_values FROM client_quotas WHERE entity_key = $1 FOR UPDATE`, key).Scan(&raw)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			default:
				if err := json.Unmarshal([]byte(raw), &old); err != nil {
					return fmt.Errorf("quota values of %s: %w", key, err)
				}
			}
			values := metastore.ApplyQuotaChange(old, c)
			if len(values) == 0 {
				if _, err := tx.Exec(ctx, `DELETE FROM client_quotas WHERE entity_key = $1`, key); err != nil {
					return err
				}
				continue
			}
			entity, err := json.Marshal(c.Entity)
			if err != nil {
				return err
			}
			v, err := json.Marshal(values)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `
				INSERT INTO client_quotas (entity_key, entity, quota_values) VALUES ($1, $2, $3)
				ON CONFLICT (entity_key) DO UPDATE SET entity = EXCLUDED.entity, quota_values = EXCLUDED.quota_values`,
				key, string(entity), string(v))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("alter client quotas: %w", err)
	}
	return nil
}
