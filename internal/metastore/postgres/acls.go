package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.ACLStore = (*Store)(nil)

// CreateACLs implements metastore.ACLStore.
func (s *Store) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		added := int64(0)
		for _, a := range acls {
			tag, err := tx.Exec(ctx, `INSERT INTO acls (resource_type, resource_name, pattern_type, principal, host, operation, permission)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
				a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission)
			if err != nil {
				return err
			}
			added += tag.RowsAffected()
		}
		if added == 0 {
			return nil
		}
		_, err := nextCounter(ctx, tx, "acl_version")
		return err
	})
	if err != nil {
		return fmt.Errorf("create %d acls: %w", len(acls), err)
	}
	return nil
}

// DeleteACLs implements metastore.ACLStore.
func (s *Store) DeleteACLs(ctx context.Context, acls []metastore.ACL) ([]metastore.ACL, error) {
	var deleted []metastore.ACL
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		deleted = nil
		for _, a := range acls {
			tag, err := tx.Exec(ctx, `DELETE FROM acls WHERE resource_type = $1 AND resource_name = $2 AND pattern_type = $3
				AND principal = $4 AND host = $5 AND operation = $6 AND permission = $7`,
				a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
				deleted = append(deleted, a)
			}
		}
		if len(deleted) == 0 {
			return nil
		}
		_, err := nextCounter(ctx, tx, "acl_version")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete %d acls: %w", len(acls), err)
	}
	return metastore.SortACLs(deleted), nil
}

// ACLs implements metastore.ACLStore.
func (s *Store) ACLs(ctx context.Context) ([]metastore.ACL, int64, error) {
	var (
		acls    []metastore.ACL
		version int64
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		acls = nil
		// The version first: under READ COMMITTED the rows read next are
		// at least as new, so a cache never holds a version newer than
		// its rows.
		if err := tx.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'acl_version'`).Scan(&version); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT resource_type, resource_name, pattern_type, principal, host, operation, permission FROM acls`)
		var a metastore.ACL
		_, err := pgx.ForEachRow(rows, []any{&a.ResourceType, &a.ResourceName, &a.PatternType, &a.Principal, &a.Host, &a.Operation, &a.Permission}, func() error {
			acls = append(acls, a)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read acls: %w", err)
	}
	// Sorted here rather than by ORDER BY, whose text collation depends on
	// the database.
	return metastore.SortACLs(acls), version, nil
}

// ACLVersion implements metastore.ACLStore.
func (s *Store) ACLVersion(ctx context.Context) (int64, error) {
	var version int64
	err := s.run(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'acl_version'`).Scan(&version)
	})
	if err != nil {
		return 0, fmt.Errorf("read acl version: %w", err)
	}
	return version, nil
}
