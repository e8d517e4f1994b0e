package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.UserStore = (*Store)(nil)

// ScramCredential implements metastore.UserStore.
func (s *Store) ScramCredential(ctx context.Context, user string, m metastore.ScramMechanism) (metastore.ScramCredential, error) {
	c := metastore.ScramCredential{Mechanism: m}
	err := s.run(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `
			SELECT iterations, salt, stored_key, server_key FROM scram_credentials
			WHERE username = $1 AND mechanism = $2`, user, int16(m)).Scan(&c.Iterations, &c.Salt, &c.StoredKey, &c.ServerKey)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = metastore.ErrNoCredential
	}
	if err != nil {
		return metastore.ScramCredential{}, fmt.Errorf("scram credential of %q: %w", user, err)
	}
	return c, nil
}

// ScramUsers implements metastore.UserStore.
func (s *Store) ScramUsers(ctx context.Context) ([]metastore.UserScram, error) {
	var out []metastore.UserScram
	err := s.run(ctx, func(ctx context.Context) error {
		out = nil
		rows, _ := s.pool.Query(ctx, `
			SELECT username, mechanism, iterations, salt, stored_key, server_key FROM scram_credentials
			ORDER BY username, mechanism`)
		var (
			user string
			mech int16
			c    metastore.ScramCredential
		)
		_, err := pgx.ForEachRow(rows, []any{&user, &mech, &c.Iterations, &c.Salt, &c.StoredKey, &c.ServerKey}, func() error {
			c.Mechanism = metastore.ScramMechanism(mech)
			if n := len(out); n > 0 && out[n-1].User == user {
				out[n-1].Credentials = append(out[n-1].Credentials, c)
			} else {
				out = append(out, metastore.UserScram{User: user, Credentials: []metastore.ScramCredential{c}})
			}
			c = metastore.ScramCredential{}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scram users: %w", err)
	}
	return out, nil
}

// SetScramCredential implements metastore.UserStore.
func (s *Store) SetScramCredential(ctx context.Context, user string, c metastore.ScramCredential) error {
	if err := metastore.CheckScramCredential(user, c); err != nil {
		return fmt.Errorf("set scram credential of %q: %w", user, err)
	}
	err := s.run(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO scram_credentials (username, mechanism, iterations, salt, stored_key, server_key)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (username, mechanism) DO UPDATE SET
				iterations = excluded.iterations, salt = excluded.salt,
				stored_key = excluded.stored_key, server_key = excluded.server_key`,
			user, int16(c.Mechanism), c.Iterations, c.Salt, c.StoredKey, c.ServerKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("set scram credential of %q: %w", user, err)
	}
	return nil
}

// DeleteScramCredential implements metastore.UserStore.
func (s *Store) DeleteScramCredential(ctx context.Context, user string, m metastore.ScramMechanism) error {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM scram_credentials WHERE username = $1 AND mechanism = $2`, user, int16(m))
		n = tag.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = metastore.ErrNoCredential
	}
	if err != nil {
		return fmt.Errorf("delete scram credential of %q: %w", user, err)
	}
	return nil
}
