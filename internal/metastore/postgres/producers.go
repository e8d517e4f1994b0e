package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// InitProducerID implements metastore.Store. Only the producer's current
// epoch is stored here; per-partition sequence state is reset lazily by the
// first batch carrying the new epoch (see sequence.State.Check).
func (s *Store) InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error) {
	var (
		gotID    int64
		gotEpoch int16
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if producerID >= 0 {
			var current int16
			err := tx.QueryRow(ctx, `SELECT epoch FROM producers WHERE producer_id = $1 FOR UPDATE`, producerID).Scan(&current)
			if errors.Is(err, pgx.ErrNoRows) {
				return metastore.ErrUnknownProducerID
			}
			if err != nil {
				return err
			}
			next, fresh, err := metastore.NextProducerEpoch(epoch, current)
			if err != nil {
				return err
			}
			if !fresh {
				gotID, gotEpoch = producerID, next
				_, err := tx.Exec(ctx, `UPDATE producers SET epoch = $2 WHERE producer_id = $1`, gotID, gotEpoch)
				return err
			}
			// Epochs are exhausted: continue under a fresh id.
		}
		id, err := nextCounter(ctx, tx, "next_producer_id")
		if err != nil {
			return err
		}
		gotID, gotEpoch = id, 0
		_, err = tx.Exec(ctx, `INSERT INTO producers (producer_id, epoch) VALUES ($1, 0)`, gotID)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("init producer id %d epoch %d: %w", producerID, epoch, err)
	}
	return gotID, gotEpoch, nil
}

// nextCounter takes the next value of a counter. The row stays locked
// until the transaction ends, so no value is handed out twice.
func nextCounter(ctx context.Context, tx pgx.Tx, name string) (int64, error) {
	var next int64
	err := tx.QueryRow(ctx, `UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value`, name).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("counter %s: %w", name, err)
	}
	return next - 1, nil
}
