package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.FeatureStore = (*Store)(nil)

// FinalizedFeatures implements metastore.FeatureStore.
func (s *Store) FinalizedFeatures(ctx context.Context) (metastore.FinalizedFeatures, error) {
	var f metastore.FinalizedFeatures
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		f = metastore.FinalizedFeatures{Levels: map[string]int16{}}
		err := tx.QueryRow(ctx, `SELECT epoch FROM finalized_features_epoch WHERE id = 1`).Scan(&f.Epoch)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT name, level FROM finalized_features`)
		var name string
		var level int16
		_, err = pgx.ForEachRow(rows, []any{&name, &level}, func() error {
			f.Levels[name] = level
			return nil
		})
		return err
	})
	if err != nil {
		return metastore.FinalizedFeatures{}, fmt.Errorf("finalized features: %w", err)
	}
	return f, nil
}

// UpdateFeatures implements metastore.FeatureStore: the epoch row is the
// compare-and-set (inserted by the first update, moved by the next ones
// only from the epoch the caller read), and the levels are replaced in
// the same transaction.
func (s *Store) UpdateFeatures(ctx context.Context, epoch int64, levels map[string]int16) (metastore.FinalizedFeatures, error) {
	next := metastore.FinalizedFeatures{Levels: metastore.PositiveLevels(levels), Epoch: epoch + 1}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var tag interface{ RowsAffected() int64 }
		var err error
		if epoch == 0 {
			tag, err = tx.Exec(ctx, `INSERT INTO finalized_features_epoch (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO NOTHING`)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE finalized_features_epoch SET epoch = $1 WHERE id = 1 AND epoch = $2`, next.Epoch, epoch)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%w: not at epoch %d", metastore.ErrFeaturesChanged, epoch)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM finalized_features`); err != nil {
			return err
		}
		for name, level := range next.Levels {
			if _, err := tx.Exec(ctx, `INSERT INTO finalized_features (name, level) VALUES ($1, $2)`, name, level); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return metastore.FinalizedFeatures{}, fmt.Errorf("update features: %w", err)
	}
	return next, nil
}
