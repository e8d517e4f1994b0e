package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.TxnStore = (*Store)(nil)

// Row locks of transactions, in the order every transaction takes them
// (docs/postgres.md): partitions rows first, sorted by (topic_id, part),
// FOR UPDATE by commits, EndTxn, retention and DeleteTopic, FOR SHARE by
// offset commits; then transactions rows, sorted by transactional_id, FOR
// SHARE by commits with transactional batches and by CommitTxnOffsets,
// FOR UPDATE by EndTxn. SaveTxn and DeleteTxn lock one transactions row
// and nothing else. The rows of txn_open and txn_aborted are only written
// under their partition's lock, and txn_offsets rows under their
// transaction's.

const txnColumns = `transactional_id, producer_id, producer_epoch, last_producer_id, last_producer_epoch,
	state, timeout_ms, partitions, group_names, started_at, updated_at, version`

// scanTxn reads a transactions row, checking what it decodes.
func scanTxn(row pgx.CollectableRow) (metastore.Txn, error) {
	var (
		t             metastore.Txn
		id            []byte
		state         string
		parts, groups []byte
		started       *time.Time
	)
	if err := row.Scan(&id, &t.ProducerID, &t.ProducerEpoch, &t.LastProducerID, &t.LastProducerEpoch,
		&state, &t.TimeoutMs, &parts, &groups, &started, &t.UpdatedAt, &t.Version); err != nil {
		return t, err
	}
	t.TransactionalID = string(id)
	var err error
	if t.State, err = metastore.ParseTxnState(state); err != nil {
		return t, fmt.Errorf("transaction %q: %w", t.TransactionalID, err)
	}
	if t.Partitions, err = metastore.DecodeTxnPartitions(parts); err != nil {
		return t, fmt.Errorf("transaction %q: %w", t.TransactionalID, err)
	}
	if t.Groups, err = metastore.DecodeTxnGroups(groups); err != nil {
		return t, fmt.Errorf("transaction %q: %w", t.TransactionalID, err)
	}
	if started != nil {
		t.StartedAt = *started
	}
	return t, nil
}

// txnArgs are the values of a record's columns after transactional_id,
// in txnColumns' order, with updated_at NULL for the database clock.
func txnArgs(t *metastore.Txn) []any {
	return []any{t.ProducerID, t.ProducerEpoch, t.LastProducerID, t.LastProducerEpoch,
		string(t.State), t.TimeoutMs, metastore.EncodeTxnPartitions(t.Partitions), metastore.EncodeTxnGroups(t.Groups),
		nullTime(t.StartedAt), nullTime(t.UpdatedAt), t.Version}
}

// LoadTxn implements metastore.TxnStore.
func (s *Store) LoadTxn(ctx context.Context, id string) (metastore.Txn, bool, error) {
	var (
		t     metastore.Txn
		found bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT `+txnColumns+` FROM transactions WHERE transactional_id = $1`, []byte(id))
		txns, err := pgx.CollectRows(rows, scanTxn)
		found = len(txns) == 1
		if found {
			t = txns[0]
		}
		return err
	})
	if err != nil {
		return metastore.Txn{}, false, fmt.Errorf("load transaction %q: %w", id, err)
	}
	return t, found, nil
}

// SaveTxn implements metastore.TxnStore with one conditional statement, as
// SaveGroup: an insert that yields to an existing row for version 0, or an
// update conditional on the stored version. A zero UpdatedAt is set from
// the database clock.
func (s *Store) SaveTxn(ctx context.Context, t metastore.Txn) (int64, error) {
	if err := metastore.ValidateTxn(t); err != nil {
		return 0, fmt.Errorf("save transaction %q: %w", t.TransactionalID, err)
	}
	next := t
	next.Version = t.Version + 1
	var written int64
	err := s.run(ctx, func(ctx context.Context) error {
		sql := `UPDATE transactions SET producer_id = $2, producer_epoch = $3, last_producer_id = $4,
				last_producer_epoch = $5, state = $6, timeout_ms = $7, partitions = $8, group_names = $9,
				started_at = $10, updated_at = COALESCE($11::TIMESTAMPTZ, now()), version = $12
			WHERE transactional_id = $1 AND version = $12 - 1`
		if t.Version == 0 {
			sql = `INSERT INTO transactions (` + txnColumns + `)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11::TIMESTAMPTZ, now()), $12)
				ON CONFLICT (transactional_id) DO NOTHING`
		}
		tag, err := s.pool.Exec(ctx, sql, append([]any{[]byte(t.TransactionalID)}, txnArgs(&next)...)...)
		written = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("save transaction %q: %w", t.TransactionalID, err)
	}
	if written == 0 {
		return 0, fmt.Errorf("save transaction %q: expected version %d: %w", t.TransactionalID, t.Version, metastore.ErrTxnVersionConflict)
	}
	return next.Version, nil
}

// DeleteTxn implements metastore.TxnStore. Pending offsets of the id go
// with it.
func (s *Store) DeleteTxn(ctx context.Context, id string, version int64) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM transactions WHERE transactional_id = $1 AND version = $2`, []byte(id), version)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM transactions WHERE transactional_id = $1)`, []byte(id)).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return metastore.ErrUnknownTxn
			}
			return fmt.Errorf("expected version %d: %w", version, metastore.ErrTxnVersionConflict)
		}
		_, err = tx.Exec(ctx, `DELETE FROM txn_offsets WHERE transactional_id = $1`, []byte(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete transaction %q: %w", id, err)
	}
	return nil
}

// ListTxns implements metastore.TxnStore, sorted here in byte order (the
// database's collation need not be).
func (s *Store) ListTxns(ctx context.Context) ([]metastore.Txn, error) {
	var out []metastore.Txn
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT `+txnColumns+` FROM transactions`)
		var err error
		out, err = pgx.CollectRows(rows, scanTxn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	slices.SortFunc(out, func(a, b metastore.Txn) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out, nil
}

// openEntry is a producer's open transaction on a partition.
type openEntry struct {
	pk         partitionKey
	producerID int64
	first      int64
}

// pendingOffset is an offset committed in a transaction, not yet
// published.
type pendingOffset struct {
	group string
	metastore.CommittedOffset
}

// EndTxn implements metastore.TxnStore in one transaction:
//
//  1. read the record's version (a conflict fails at once) and the
//     partitions of the transaction's pending offsets;
//  2. lock the partitions rows of the markers and of the pending offsets,
//     in commit order, then the transaction's row for update, and read,
//     under these locks, the version again, the open entries of the
//     marker partitions and the pending offsets, in one round trip;
//  3. decide the markers' offsets in memory as a commit does, and write
//     them, the closed and aborted entries, the published offsets and the
//     record, with the notification, in one round trip.
//
// The pending offsets' partitions are locked, as CommitOffsets share-locks
// them, so that a DeleteTopic cannot leave offsets of a deleted topic
// behind; if an offset of another partition became pending between steps
// 1 and 2, the transaction runs again.
func (s *Store) EndTxn(ctx context.Context, e metastore.TxnEnd) (metastore.TxnEndResult, error) {
	id := e.Next.TransactionalID
	if err := metastore.ValidateTxnEnd(e); err != nil {
		return metastore.TxnEndResult{}, fmt.Errorf("end transaction %q: %w", id, err)
	}
	var (
		res    metastore.TxnEndResult
		p      *plan
		notice metastore.CommitNotice
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// 1.
		var (
			batch   pgx.Batch
			stored  metastore.Txn
			found   bool
			pending []partitionKey
		)
		batch.Queue(`SELECT version, producer_id FROM transactions WHERE transactional_id = $1`, []byte(id)).Query(func(rows pgx.Rows) error {
			_, err := pgx.ForEachRow(rows, []any{&stored.Version, &stored.ProducerID}, func() error {
				found = true
				return nil
			})
			return err
		})
		batch.Queue(`SELECT DISTINCT topic_id, part FROM txn_offsets WHERE transactional_id = $1`, []byte(id)).Query(func(rows pgx.Rows) error {
			var err error
			pending, err = pgx.CollectRows(rows, scanPartitionKey)
			return err
		})
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if err := metastore.TxnEndError(stored, found, e); err != nil {
			return err
		}

		// 2.
		p = newPlan(e.Markers)
		var markerKeys []partitionKey
		for _, b := range e.Markers.Batches {
			markerKeys = append(markerKeys, partitionKey{b.TopicID, b.Partition})
		}
		batch = pgx.Batch{}
		queueLockPartitions(&batch, slices.Concat(markerKeys, pending), p.partitions)
		batch.Queue(`SELECT `+txnColumns+` FROM transactions WHERE transactional_id = $1 FOR UPDATE`, []byte(id)).Query(func(rows pgx.Rows) error {
			txns, err := pgx.CollectRows(rows, scanTxn)
			stored, found = metastore.Txn{}, len(txns) == 1
			if found {
				stored = txns[0]
			}
			return err
		})
		var open []openEntry
		ids, parts := partitionArgs(sortedPartitions(markerKeys))
		// By primary-key prefix per partition, as partitionsByKey reads
		// partitions.
		batch.Queue(`
			SELECT o.* FROM unnest($1::BYTEA[], $2::INTEGER[]) AS k(topic_id, part)
			CROSS JOIN LATERAL (SELECT topic_id, part, producer_id, first_offset FROM txn_open
				WHERE topic_id = k.topic_id AND part = k.part OFFSET 0) AS o`, ids, parts).Query(func(rows pgx.Rows) error {
			var err error
			open, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (openEntry, error) {
				var (
					o  openEntry
					id []byte
				)
				if err := row.Scan(&id, &o.pk.partition, &o.producerID, &o.first); err != nil {
					return o, err
				}
				o.pk.id, err = topicID(id)
				return o, err
			})
			return err
		})
		var offsets []pendingOffset
		batch.Queue(`
			SELECT group_name, topic_id, part, committed_offset, leader_epoch, metadata, committed_at
			FROM txn_offsets WHERE transactional_id = $1`, []byte(id)).Query(func(rows pgx.Rows) error {
			var err error
			offsets, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (pendingOffset, error) {
				var (
					o              pendingOffset
					group, tid, md []byte
				)
				if err := row.Scan(&group, &tid, &o.Partition, &o.Offset, &o.LeaderEpoch, &md, &o.CommittedAt); err != nil {
					return o, err
				}
				o.group, o.Metadata = string(group), string(md)
				o.TopicID, err = topicID(tid)
				return o, err
			})
			return err
		})
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if err := metastore.TxnEndError(stored, found, e); err != nil {
			return err
		}
		for _, o := range offsets {
			if !slices.Contains(pending, partitionKey{o.TopicID, o.Partition}) {
				return errRetry // pending meanwhile, and not locked
			}
		}

		// 3.
		res = metastore.TxnEndResult{MarkerOffsets: make([]int64, len(e.Markers.Batches)), Version: e.Next.Version + 1}
		p.results = make([]metastore.BatchResult, len(e.Markers.Batches))
		for i, b := range e.Markers.Batches {
			p.results[i] = p.addMarker(b)
			res.MarkerOffsets[i] = p.results[i].BaseOffset
		}
		notice = metastore.NoticeFor(e.Markers, p.results)
		batch = pgx.Batch{}
		if err := p.queue(&batch, s.notify, s.origin); err != nil {
			return err
		}
		queueCloseTxns(&batch, e, res.MarkerOffsets, open)
		for _, o := range offsets {
			if !e.Commit || !slices.Contains(e.Groups, o.group) {
				continue
			}
			batch.Queue(`
				INSERT INTO group_offsets (group_name, topic_id, part, committed_offset, leader_epoch, metadata, committed_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (group_name, topic_id, part) DO UPDATE SET
					committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
					metadata = excluded.metadata, committed_at = excluded.committed_at`,
				[]byte(o.group), sqlID(o.TopicID), o.Partition, o.Offset, o.LeaderEpoch, []byte(o.Metadata), o.CommittedAt)
		}
		if len(offsets) > 0 {
			batch.Queue(`DELETE FROM txn_offsets WHERE transactional_id = $1`, []byte(id))
		}
		next := e.Next
		next.Version = res.Version
		batch.Queue(`UPDATE transactions SET producer_id = $2, producer_epoch = $3, last_producer_id = $4,
				last_producer_epoch = $5, state = $6, timeout_ms = $7, partitions = $8, group_names = $9,
				started_at = $10, updated_at = COALESCE($11::TIMESTAMPTZ, now()), version = $12
			WHERE transactional_id = $1`, append([]any{[]byte(id)}, txnArgs(&next)...)...)
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return metastore.TxnEndResult{}, fmt.Errorf("end transaction %q: %w", id, err)
	}
	s.log.Debug("transaction ended", "transactional_id", id, "commit", e.Commit, "markers", len(notice.Partitions))
	if len(p.extents.Extents) > 0 {
		s.announce(notice)
	}
	return res, nil
}

// queueCloseTxns queues the deletion of the ending producer's open
// entries on the partitions that got markers, and for an abort the
// aborted index entries [first, marker] with their stable offsets. open
// holds every entry open on those partitions.
func queueCloseTxns(batch *pgx.Batch, e metastore.TxnEnd, markerOffsets []int64, open []openEntry) {
	for i, b := range e.Markers.Batches {
		marker := markerOffsets[i]
		if marker < 0 {
			continue
		}
		pk := partitionKey{b.TopicID, b.Partition}
		first, oldest := int64(-1), int64(-1)
		for _, o := range open {
			switch {
			case o.pk != pk:
			case o.producerID == e.ProducerID:
				first = o.first
			case oldest < 0 || o.first < oldest:
				oldest = o.first
			}
		}
		if first < 0 {
			continue // the producer wrote nothing there
		}
		batch.Queue(`DELETE FROM txn_open WHERE topic_id = $1 AND part = $2 AND producer_id = $3`,
			sqlID(pk.id), pk.partition, e.ProducerID)
		if !e.Commit {
			batch.Queue(`
				INSERT INTO txn_aborted (topic_id, part, last_offset, producer_id, first_offset, stable_offset)
				VALUES ($1, $2, $3, $4, $5, $6)`,
				sqlID(pk.id), pk.partition, marker, e.ProducerID, first, metastore.AbortedStableOffset(marker, oldest))
		}
	}
}

// CommitTxnOffsets implements metastore.TxnStore. The partitions are
// share-locked first, as CommitOffsets does, then the transaction's row,
// so an EndTxn either publishes these offsets or runs before and makes
// the transaction refuse them. A zero CommittedAt is set from the
// database clock.
func (s *Store) CommitTxnOffsets(ctx context.Context, id string, producerID int64, epoch int16, group string, offsets []metastore.CommittedOffset) error {
	var keys []partitionKey
	for _, o := range offsets {
		keys = append(keys, partitionKey{o.TopicID, o.Partition})
	}
	slices.SortFunc(keys, comparePartitions)
	keys = slices.Compact(keys)
	ids, parts := partitionArgs(keys)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			batch pgx.Batch
			found []partitionKey
			t     metastore.Txn
			known bool
		)
		if len(keys) > 0 {
			batch.Queue(partitionsByKey("topic_id, part", "FOR SHARE"), ids, parts).Query(func(rows pgx.Rows) error {
				var err error
				found, err = pgx.CollectRows(rows, scanPartitionKey)
				return err
			})
		}
		batch.Queue(`SELECT `+txnColumns+` FROM transactions WHERE transactional_id = $1 FOR SHARE`, []byte(id)).Query(func(rows pgx.Rows) error {
			txns, err := pgx.CollectRows(rows, scanTxn)
			if known = len(txns) == 1; known {
				t = txns[0]
			}
			return err
		})
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if err := metastore.TxnOffsetsError(t, known, producerID, epoch, group); err != nil {
			return err
		}
		for _, k := range keys {
			if !slices.Contains(found, k) {
				return fmt.Errorf("%s: %w", partitionName(k.id, k.partition), metastore.ErrUnknownTopicOrPartition)
			}
		}
		batch = pgx.Batch{}
		for _, o := range offsets {
			batch.Queue(`
				INSERT INTO txn_offsets (transactional_id, group_name, topic_id, part, committed_offset, leader_epoch, metadata, committed_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::TIMESTAMPTZ, now()))
				ON CONFLICT (transactional_id, group_name, topic_id, part) DO UPDATE SET
					committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
					metadata = excluded.metadata, committed_at = excluded.committed_at`,
				[]byte(id), []byte(group), sqlID(o.TopicID), o.Partition, o.Offset, o.LeaderEpoch, []byte(o.Metadata), nullTime(o.CommittedAt))
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("commit transactional offsets %q of group %q: %w", id, group, err)
	}
	return nil
}

// PendingTxnOffsets implements metastore.TxnStore. txn_offsets holds only
// the offsets of transactions not yet ended and is read by group only
// here (OffsetFetch with RequireStable), so it has no index by group.
func (s *Store) PendingTxnOffsets(ctx context.Context, group string) ([]metastore.TopicPartition, error) {
	var keys []partitionKey
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT DISTINCT topic_id, part FROM txn_offsets WHERE group_name = $1`, []byte(group))
		var err error
		keys, err = pgx.CollectRows(rows, scanPartitionKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pending transactional offsets of group %q: %w", group, err)
	}
	out := make([]metastore.TopicPartition, len(keys))
	for i, k := range keys {
		out[i] = metastore.TopicPartition{TopicID: k.id, Partition: k.partition}
	}
	slices.SortFunc(out, metastore.CompareTopicPartitions)
	return out, nil
}

// AbortedTxns implements metastore.TxnStore. The scan of the partition's
// index in marker order stops at the first entry after which no entry can
// start before to (metastore.AbortedScanDone): both bounds are seeks on
// the primary key.
func (s *Store) AbortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error) {
	var out []metastore.AbortedTxn
	err := s.queryPartition(ctx, id, partition, func(batch *pgx.Batch) {
		batch.Queue(`
			SELECT producer_id, first_offset, last_offset FROM txn_aborted
			WHERE topic_id = $1 AND part = $2 AND last_offset >= $3 AND first_offset < $4
			  AND last_offset <= COALESCE((
				SELECT last_offset FROM txn_aborted
				WHERE topic_id = $1 AND part = $2 AND last_offset >= $3 AND stable_offset >= $4
				ORDER BY last_offset LIMIT 1), $5)`,
			sqlID(id), partition, from, to, int64(math.MaxInt64)).Query(func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.AbortedTxn, error) {
				var a metastore.AbortedTxn
				err := row.Scan(&a.ProducerID, &a.FirstOffset, &a.LastOffset)
				return a, err
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("aborted transactions %s [%d, %d): %w", partitionName(id, partition), from, to, err)
	}
	metastore.SortAbortedTxns(out)
	return out, nil
}

// ActiveProducers implements metastore.TxnStore: the producers with state
// on the partition and those with an open transaction there, in one
// round trip.
func (s *Store) ActiveProducers(ctx context.Context, id metastore.TopicID, partition int32) ([]metastore.ActiveProducer, error) {
	var out []metastore.ActiveProducer
	err := s.queryPartition(ctx, id, partition, func(batch *pgx.Batch) {
		out = nil
		batch.Queue(`SELECT producer_id, epoch, last_seq, last_timestamp FROM producer_state WHERE topic_id = $1 AND part = $2`,
			sqlID(id), partition).Query(func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.ActiveProducer, error) {
				p := metastore.ActiveProducer{CurrentTxnStartOffset: -1}
				err := row.Scan(&p.ProducerID, &p.ProducerEpoch, &p.LastSequence, &p.LastTimestamp)
				return p, err
			})
			return err
		})
		batch.Queue(`SELECT producer_id, first_offset FROM txn_open WHERE topic_id = $1 AND part = $2`,
			sqlID(id), partition).Query(func(rows pgx.Rows) error {
			var pid, first int64
			_, err := pgx.ForEachRow(rows, []any{&pid, &first}, func() error {
				i := slices.IndexFunc(out, func(p metastore.ActiveProducer) bool { return p.ProducerID == pid })
				if i < 0 {
					out = append(out, metastore.ActiveProducer{ProducerID: pid, ProducerEpoch: -1, LastSequence: -1, LastTimestamp: -1})
					i = len(out) - 1
				}
				out[i].CurrentTxnStartOffset = first
				return nil
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("active producers %s: %w", partitionName(id, partition), err)
	}
	slices.SortFunc(out, func(a, b metastore.ActiveProducer) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out, nil
}

// queryPartition runs the queries queue adds, after a check that the
// partition exists (ErrUnknownTopicOrPartition), in one round trip.
func (s *Store) queryPartition(ctx context.Context, id metastore.TopicID, partition int32, queue func(*pgx.Batch)) error {
	return s.run(ctx, func(ctx context.Context) error {
		var (
			batch  pgx.Batch
			exists bool
		)
		batch.Queue(`SELECT EXISTS (SELECT 1 FROM partitions WHERE topic_id = $1 AND part = $2)`,
			sqlID(id), partition).QueryRow(func(row pgx.Row) error { return row.Scan(&exists) })
		queue(&batch)
		if err := s.pool.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		if !exists {
			return metastore.ErrUnknownTopicOrPartition
		}
		return nil
	})
}

// partitionArgs are partition keys as unnest arguments.
func partitionArgs(keys []partitionKey) ([][]byte, []int32) {
	ids, parts := make([][]byte, len(keys)), make([]int32, len(keys))
	for i, k := range keys {
		ids[i], parts[i] = sqlID(k.id), k.partition
	}
	return ids, parts
}

func scanPartitionKey(row pgx.CollectableRow) (partitionKey, error) {
	var (
		k  partitionKey
		id []byte
	)
	if err := row.Scan(&id, &k.partition); err != nil {
		return k, err
	}
	var err error
	k.id, err = topicID(id)
	return k, err
}

// oldestOpenSQL is the first offset of the oldest transaction open on the
// partition of the row p of partitions, or -1: one index seek.
const oldestOpenSQL = `COALESCE((SELECT MIN(o.first_offset) FROM txn_open o WHERE o.topic_id = p.topic_id AND o.part = p.part), -1)`
