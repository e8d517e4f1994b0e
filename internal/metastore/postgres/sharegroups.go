package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// LoadShareGroup implements metastore.ShareStore.
func (s *Store) LoadShareGroup(ctx context.Context, group string) (metastore.ShareGroupRecord, bool, error) {
	var (
		rec   metastore.ShareGroupRecord
		found bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		rec, found = metastore.ShareGroupRecord{}, false
		err := s.pool.QueryRow(ctx, `SELECT data, version, updated_at FROM share_groups WHERE group_name = $1`, []byte(group)).
			Scan(&rec.Data, &rec.Version, &rec.UpdatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return metastore.ShareGroupRecord{}, false, fmt.Errorf("load share group %q: %w", group, err)
	}
	return rec, found, nil
}

// SaveShareGroup implements metastore.ShareStore: one statement
// conditional on the version (an insert that yields to an existing row
// for version 0).
func (s *Store) SaveShareGroup(ctx context.Context, group string, rec metastore.ShareGroupRecord) (int64, error) {
	if err := metastore.CheckShareGroupRecord(rec); err != nil {
		return 0, fmt.Errorf("save share group %q: %w", group, err)
	}
	var version int64
	err := s.run(ctx, func(ctx context.Context) error {
		var (
			sql  string
			args = []any{[]byte(group), rec.Version}
		)
		switch {
		case len(rec.Data) == 0 && rec.Version == 0:
			// Nothing to delete unless a record exists, which is a
			// conflict.
			var exists bool
			if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM share_groups WHERE group_name = $1)`, []byte(group)).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return fmt.Errorf("expected no record: %w", metastore.ErrShareVersionConflict)
			}
			return nil
		case len(rec.Data) == 0:
			sql = `DELETE FROM share_groups WHERE group_name = $1 AND version = $2`
		case rec.Version == 0:
			sql = `INSERT INTO share_groups (group_name, version, data, updated_at) VALUES ($1, $2 + 1, $3, COALESCE($4::TIMESTAMPTZ, now()))
				ON CONFLICT (group_name) DO NOTHING`
			args = append(args, rec.Data, nullTime(rec.UpdatedAt))
		default:
			sql = `UPDATE share_groups SET data = $3, version = version + 1, updated_at = COALESCE($4::TIMESTAMPTZ, now())
				WHERE group_name = $1 AND version = $2`
			args = append(args, rec.Data, nullTime(rec.UpdatedAt))
		}
		tag, err := s.pool.Exec(ctx, sql, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("expected version %d: %w", rec.Version, metastore.ErrShareVersionConflict)
		}
		version = rec.Version + 1
		if len(rec.Data) == 0 {
			version = 0
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("save share group %q: %w", group, err)
	}
	return version, nil
}
