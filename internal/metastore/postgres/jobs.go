package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.JobStore = (*Store)(nil)

// Lock order of the job transactions, the same as commits': partitions
// rows first (sorted by topic_id, part), then objects rows (sorted by
// key). A commit locks no existing objects row (its key is new), so no
// two transactions wait for each other in a cycle.

const leaseColumns = `holder, epoch, acquired, renewed, expires`

func scanLease(row pgx.Row, name string) (metastore.Lease, error) {
	l := metastore.Lease{Name: name}
	err := row.Scan(&l.Holder, &l.Epoch, &l.Acquired, &l.Renewed, &l.Expires)
	return l, err
}

// AcquireLease implements metastore.LeaseStore with one conditional
// upsert on the database clock: the row is written only if the lease is
// free or already the holder's.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	if err := metastore.CheckLeaseArgs(name, holder, ttl); err != nil {
		return metastore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	var (
		l        metastore.Lease
		acquired bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		var err error
		l, err = scanLease(s.pool.QueryRow(ctx, `
			INSERT INTO job_leases (name, holder, epoch, acquired, renewed, expires)
			VALUES ($1, $2, 1, now(), now(), now() + $3::BIGINT * INTERVAL '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET
				holder   = excluded.holder,
				epoch    = CASE WHEN job_leases.expires > now() THEN job_leases.epoch ELSE job_leases.epoch + 1 END,
				acquired = CASE WHEN job_leases.expires > now() THEN job_leases.acquired ELSE now() END,
				renewed  = now(),
				expires  = excluded.expires
			WHERE job_leases.expires <= now() OR job_leases.holder = excluded.holder
			RETURNING `+leaseColumns, name, holder, max(ttl.Microseconds(), 1)), name)
		if err == nil {
			acquired = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		acquired = false
		l, err = scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM job_leases WHERE name = $1`, name), name)
		if errors.Is(err, pgx.ErrNoRows) {
			return errRetry // released and gone meanwhile: try again
		}
		return err
	})
	if err != nil {
		return metastore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return l, acquired, nil
}

// RenewLease implements metastore.LeaseStore.
func (s *Store) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) (metastore.Lease, error) {
	if err := metastore.CheckLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return metastore.Lease{}, fmt.Errorf("renew lease %s: %w", l.Name, err)
	}
	var out metastore.Lease
	err := s.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = scanLease(s.pool.QueryRow(ctx, `
			UPDATE job_leases SET renewed = now(), expires = now() + $4::BIGINT * INTERVAL '1 microsecond'
			WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires > now()
			RETURNING `+leaseColumns, l.Name, l.Holder, l.Epoch, max(ttl.Microseconds(), 1)), l.Name)
		if errors.Is(err, pgx.ErrNoRows) {
			return metastore.ErrLeaseLost
		}
		return err
	})
	if err != nil {
		return metastore.Lease{}, fmt.Errorf("renew lease %s: %w", l.Name, err)
	}
	return out, nil
}

// ReleaseLease implements metastore.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	err := s.run(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `
			UPDATE job_leases SET expires = now()
			WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires > now()`, l.Name, l.Holder, l.Epoch)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.Name, err)
	}
	return nil
}

// Leases implements metastore.LeaseStore.
func (s *Store) Leases(ctx context.Context) ([]metastore.Lease, error) {
	var out []metastore.Lease
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT name, `+leaseColumns+` FROM job_leases`)
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.Lease, error) {
			var l metastore.Lease
			err := row.Scan(&l.Name, &l.Holder, &l.Epoch, &l.Acquired, &l.Renewed, &l.Expires)
			return l, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	slices.SortFunc(out, func(a, b metastore.Lease) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// AdvanceLogStart implements metastore.RetentionStore. It locks the
// partition row as a commit does, so it is ordered with the partition's
// commits.
func (s *Store) AdvanceLogStart(ctx context.Context, id metastore.TopicID, partition int32, offset int64) (metastore.PartitionOffsets, error) {
	var (
		o       metastore.PartitionOffsets
		changed bool
	)
	tp := metastore.TopicPartition{TopicID: id, Partition: partition}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		changed = false
		var logStart, hwm, oldest int64
		err := tx.QueryRow(ctx, `
			SELECT p.log_start_offset, p.high_watermark, `+oldestOpenSQL+` FROM partitions p
			WHERE p.topic_id = $1 AND p.part = $2 FOR UPDATE`, sqlID(id), partition).Scan(&logStart, &hwm, &oldest)
		if errors.Is(err, pgx.ErrNoRows) {
			return metastore.ErrUnknownTopicOrPartition
		}
		if err != nil {
			return err
		}
		o = metastore.NewPartitionOffsets(logStart, hwm, oldest)
		to, advance, err := metastore.NewLogStart(o, offset)
		if err != nil || !advance {
			return err
		}
		o, changed = metastore.NewPartitionOffsets(to, hwm, oldest), true
		// Aborted transactions whose markers lie below the new start go
		// with the extents.
		var batch pgx.Batch
		batch.Queue(`UPDATE partitions SET log_start_offset = $3 WHERE topic_id = $1 AND part = $2`, sqlID(id), partition, to)
		batch.Queue(`DELETE FROM txn_aborted WHERE topic_id = $1 AND part = $2 AND last_offset < $3`, sqlID(id), partition, to)
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		dropped, err := deleteReturning(ctx, tx, `
			DELETE FROM extents WHERE topic_id = $1 AND part = $2 AND base_offset < $3 AND end_offset <= $3
			RETURNING object, object_size`, sqlID(id), partition, to)
		if err != nil {
			return err
		}
		if err := applyRefs(ctx, tx, metastore.RefChanges(dropped, nil), false); err != nil {
			return err
		}
		return s.queueNotice(ctx, tx, metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}})
	})
	if err != nil {
		return metastore.PartitionOffsets{}, fmt.Errorf("advance log start %s to %d: %w", partitionName(id, partition), offset, err)
	}
	if changed {
		s.announce(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}})
	}
	return o, nil
}

// queueNotice announces n to other agents when the transaction commits.
func (s *Store) queueNotice(ctx context.Context, tx pgx.Tx, n metastore.CommitNotice) error {
	if !s.notify {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, encodeNotice(s.origin, n))
	return err
}

// deleteReturning runs a DELETE … RETURNING object, object_size and
// returns the deleted rows as extents (object fields only).
func deleteReturning(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]metastore.Extent, error) {
	rows, _ := tx.Query(ctx, sql, args...)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.Extent, error) {
		var e metastore.Extent
		err := row.Scan(&e.Object, &e.ObjectSize)
		return e, err
	})
}

// applyRefs changes objects' reference counts, locking their rows in key
// order (changes are sorted). Objects new to the ledger are registered;
// those reaching zero become unreferenced since now(). An unreferenced
// object gaining references fails with ErrInvalidReplacement unless
// revive is set.
func applyRefs(ctx context.Context, tx pgx.Tx, changes []metastore.ObjectRef, revive bool) error {
	if len(changes) == 0 {
		return nil
	}
	keys := make([]string, len(changes))
	for i, c := range changes {
		keys[i] = c.Key
	}
	rows, _ := tx.Query(ctx, `SELECT object, refs FROM objects WHERE object = ANY($1) ORDER BY object FOR UPDATE`, keys)
	current := map[string]int64{}
	var (
		key  string
		refs int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &refs}, func() error {
		current[key] = refs
		return nil
	}); err != nil {
		return err
	}
	var batch pgx.Batch
	for _, c := range changes {
		was, known := current[c.Key]
		now := was + c.Delta
		switch {
		case now < 0:
			return fmt.Errorf("object %s: %d references", c.Key, now)
		case !known:
			batch.Queue(`INSERT INTO objects (object, size, refs) VALUES ($1, $2, $3)`, c.Key, c.Size, now)
		default:
			batch.Queue(`UPDATE objects SET refs = $2 WHERE object = $1`, c.Key, now)
		}
		switch {
		case now == 0:
			batch.Queue(`
				INSERT INTO unreferenced_objects (object, size, since)
				SELECT object, size, now() FROM objects WHERE object = $1
				ON CONFLICT (object) DO NOTHING`, c.Key)
		case known && was == 0:
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM unreferenced_objects WHERE object = $1`, c.Key).Scan(&n); err != nil {
				return err
			}
			if n > 0 && !revive {
				return fmt.Errorf("%w: object %s is unreferenced and may be being deleted", metastore.ErrInvalidReplacement, c.Key)
			}
			batch.Queue(`DELETE FROM unreferenced_objects WHERE object = $1`, c.Key)
		}
	}
	return tx.SendBatch(ctx, &batch).Close()
}

// PartitionUsage implements metastore.RetentionStore: offsets, then the
// extents' count and bytes per partition with each partition's first
// extent, in one round trip.
func (s *Store) PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error) {
	var out []metastore.PartitionUsage
	err := s.run(ctx, func(ctx context.Context) error {
		out = nil
		var batch pgx.Batch
		batch.Queue(`SELECT p.part, p.log_start_offset, p.high_watermark, `+oldestOpenSQL+`
			FROM partitions p WHERE p.topic_id = $1 ORDER BY p.part`,
			sqlID(id)).Query(func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.PartitionUsage, error) {
				var (
					u                     metastore.PartitionUsage
					logStart, hwm, oldest int64
				)
				err := row.Scan(&u.Partition, &logStart, &hwm, &oldest)
				u.PartitionOffsets = metastore.NewPartitionOffsets(logStart, hwm, oldest)
				return u, err
			})
			return err
		})
		type first struct {
			e            metastore.Extent
			count, bytes int64
		}
		var firsts []first
		batch.Queue(`
			SELECT e.part, f.n, f.bytes, `+prefixed("e.", extentColumns)+`
			FROM extents e JOIN (
				SELECT part, MIN(base_offset) AS first, count(*) AS n, SUM(byte_length) AS bytes
				FROM extents WHERE topic_id = $1 GROUP BY part
			) f ON e.part = f.part AND e.base_offset = f.first
			WHERE e.topic_id = $1`, sqlID(id)).Query(func(rows pgx.Rows) error {
			var err error
			firsts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (first, error) {
				f := first{e: metastore.Extent{TopicID: id}}
				err := row.Scan(&f.e.Partition, &f.count, &f.bytes, &f.e.BaseOffset, &f.e.EndOffset, &f.e.Object, &f.e.ObjectSize,
					&f.e.ByteOffset, &f.e.ByteLength, &f.e.MaxTimestamp, &f.e.CommittedAt)
				return f, err
			})
			return err
		})
		if err := s.pool.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if len(out) == 0 {
			return metastore.ErrUnknownTopicOrPartition
		}
		for _, f := range firsts {
			i, ok := slices.BinarySearchFunc(out, f.e.Partition, func(u metastore.PartitionUsage, p int32) int { return cmp.Compare(u.Partition, p) })
			if ok {
				out[i].Extents, out[i].Bytes, out[i].First = f.count, f.bytes, f.e
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partition usage %s: %w", partitionName(id, -1), err)
	}
	return out, nil
}

// prefixed qualifies every column of a comma-separated list.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}
