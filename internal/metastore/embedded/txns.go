package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

var _ metastore.TxnStore = (*Store)(nil)

// txnRecord is a transaction's record as stored; its id is the key. The
// lists are in the shared encoding (metastore.EncodeTxnPartitions,
// EncodeTxnGroups), so that names with any bytes survive JSON.
type txnRecord struct {
	ProducerID        int64     `json:"producer_id"`
	ProducerEpoch     int16     `json:"producer_epoch"`
	LastProducerID    int64     `json:"last_producer_id"`
	LastProducerEpoch int16     `json:"last_producer_epoch"`
	State             string    `json:"state"`
	TimeoutMs         int32     `json:"timeout_ms"`
	Partitions        []byte    `json:"partitions,omitempty"`
	Groups            []byte    `json:"groups,omitempty"`
	StartedAt         time.Time `json:"started_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at"`
	Version           int64     `json:"version"`
}

func encodeTxn(t *metastore.Txn) ([]byte, error) {
	return json.Marshal(txnRecord{
		ProducerID:        t.ProducerID,
		ProducerEpoch:     t.ProducerEpoch,
		LastProducerID:    t.LastProducerID,
		LastProducerEpoch: t.LastProducerEpoch,
		State:             string(t.State),
		TimeoutMs:         t.TimeoutMs,
		Partitions:        metastore.EncodeTxnPartitions(t.Partitions),
		Groups:            metastore.EncodeTxnGroups(t.Groups),
		StartedAt:         t.StartedAt.UTC().Round(0),
		UpdatedAt:         t.UpdatedAt.UTC().Round(0),
		Version:           t.Version,
	})
}

func decodeTxn(id string, v []byte) (metastore.Txn, error) {
	var r txnRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return metastore.Txn{}, fmt.Errorf("transaction %q: %w: %v", id, errCorrupt, err)
	}
	t := metastore.Txn{
		TransactionalID:   id,
		ProducerID:        r.ProducerID,
		ProducerEpoch:     r.ProducerEpoch,
		LastProducerID:    r.LastProducerID,
		LastProducerEpoch: r.LastProducerEpoch,
		TimeoutMs:         r.TimeoutMs,
		StartedAt:         r.StartedAt,
		UpdatedAt:         r.UpdatedAt,
		Version:           r.Version,
	}
	var err error
	if t.State, err = metastore.ParseTxnState(r.State); err != nil {
		return metastore.Txn{}, fmt.Errorf("transaction %q: %w: %v", id, errCorrupt, err)
	}
	if t.Partitions, err = metastore.DecodeTxnPartitions(r.Partitions); err != nil {
		return metastore.Txn{}, fmt.Errorf("transaction %q: %w: %v", id, errCorrupt, err)
	}
	if t.Groups, err = metastore.DecodeTxnGroups(r.Groups); err != nil {
		return metastore.Txn{}, fmt.Errorf("transaction %q: %w: %v", id, errCorrupt, err)
	}
	return t, nil
}

// txnKey is the key of a transactional id (see the layout). The result is
// freshly allocated.
func txnKey(id string) ([]byte, error) {
	if len(id) > math.MaxUint16 {
		return nil, fmt.Errorf("transactional id of %d bytes is longer than %d", len(id), math.MaxUint16)
	}
	k := make([]byte, 0, 2+len(id))
	k = binary.BigEndian.AppendUint16(k, uint16(len(id)))
	return append(k, id...), nil
}

// splitTxnKey splits a key that starts with a txnKey into the id and the
// rest.
func splitTxnKey(k []byte) (string, []byte, error) {
	if len(k) < 2 || len(k) < 2+int(binary.BigEndian.Uint16(k)) {
		return "", nil, fmt.Errorf("transaction key: %w: %d bytes", errCorrupt, len(k))
	}
	n := 2 + int(binary.BigEndian.Uint16(k))
	return string(k[2:n]), k[n:], nil
}

// getTxn reads a record by its key.
func getTxn(tx kv.Tx, key []byte) (metastore.Txn, bool, error) {
	v := tx.Bucket([]byte(bucketTxns)).Get(key)
	if v == nil {
		return metastore.Txn{}, false, nil
	}
	id, rest, err := splitTxnKey(key)
	if err != nil {
		return metastore.Txn{}, false, err
	}
	if len(rest) != 0 {
		return metastore.Txn{}, false, fmt.Errorf("transaction key: %w: %d bytes after the id", errCorrupt, len(rest))
	}
	t, err := decodeTxn(id, v)
	return t, err == nil, err
}

// putTxn stores t under key and moves the producer index from the
// record it replaces (old, if found) to t's producer.
func putTxn(tx kv.Tx, key []byte, t *metastore.Txn, old metastore.Txn, found bool) error {
	v, err := encodeTxn(t)
	if err != nil {
		return err
	}
	index := tx.Bucket([]byte(bucketTxnIndex))
	if found && old.ProducerID >= 0 && old.ProducerID != t.ProducerID {
		if err := unindexTxn(index, old.ProducerID, key); err != nil {
			return err
		}
	}
	if t.ProducerID >= 0 {
		if err := index.Put(producerKey(t.ProducerID), key); err != nil {
			return err
		}
	}
	return tx.Bucket([]byte(bucketTxns)).Put(key, v)
}

// unindexTxn drops the index entry of a producer id if it names key.
func unindexTxn(index kv.Bucket, producerID int64, key []byte) error {
	if bytes.Equal(index.Get(producerKey(producerID)), key) {
		return index.Delete(producerKey(producerID))
	}
	return nil
}

// txnOfProducer returns the record whose current producer is producerID.
func txnOfProducer(tx kv.Tx, producerID int64) (metastore.Txn, bool, error) {
	key := tx.Bucket([]byte(bucketTxnIndex)).Get(producerKey(producerID))
	if key == nil {
		return metastore.Txn{}, false, nil
	}
	t, found, err := getTxn(tx, bytes.Clone(key))
	if err != nil || !found || t.ProducerID != producerID {
		return metastore.Txn{}, false, err
	}
	return t, true, nil
}

// LoadTxn implements metastore.TxnStore.
func (s *Store) LoadTxn(ctx context.Context, id string) (metastore.Txn, bool, error) {
	key, err := txnKey(id)
	if err != nil {
		return metastore.Txn{}, false, fmt.Errorf("load transaction %q: %w", id, err)
	}
	var (
		t     metastore.Txn
		found bool
	)
	err = s.view(ctx, func(tx kv.Tx) error {
		var err error
		t, found, err = getTxn(tx, key)
		return err
	})
	if err != nil {
		return metastore.Txn{}, false, fmt.Errorf("load transaction %q: %w", id, err)
	}
	return t, found, nil
}

// SaveTxn implements metastore.TxnStore. The version check and the write
// are one write transaction. A zero UpdatedAt is set from the store's
// clock.
func (s *Store) SaveTxn(ctx context.Context, t metastore.Txn) (int64, error) {
	if err := metastore.ValidateTxn(t); err != nil {
		return 0, fmt.Errorf("save transaction %q: %w", t.TransactionalID, err)
	}
	key, err := txnKey(t.TransactionalID)
	if err != nil {
		return 0, fmt.Errorf("save transaction %q: %w", t.TransactionalID, err)
	}
	next := t
	next.Version = t.Version + 1
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = s.now()
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		old, found, err := getTxn(tx, key)
		if err != nil {
			return err
		}
		if stored := old.Version; stored != t.Version { // 0 when not found
			return fmt.Errorf("expected version %d, stored %d: %w", t.Version, stored, metastore.ErrTxnVersionConflict)
		}
		return putTxn(tx, key, &next, old, found)
	})
	if err != nil {
		return 0, fmt.Errorf("save transaction %q: %w", t.TransactionalID, err)
	}
	return next.Version, nil
}

// DeleteTxn implements metastore.TxnStore. Pending offsets of the id go
// with it.
func (s *Store) DeleteTxn(ctx context.Context, id string, version int64) error {
	key, err := txnKey(id)
	if err != nil {
		return fmt.Errorf("delete transaction %q: %w", id, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		old, found, err := getTxn(tx, key)
		switch {
		case err != nil:
			return err
		case !found:
			return metastore.ErrUnknownTxn
		case old.Version != version:
			return fmt.Errorf("expected version %d, stored %d: %w", version, old.Version, metastore.ErrTxnVersionConflict)
		}
		if old.ProducerID >= 0 {
			if err := unindexTxn(tx.Bucket([]byte(bucketTxnIndex)), old.ProducerID, key); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte(bucketTxns)).Delete(key); err != nil {
			return err
		}
		return deletePrefix(tx.Bucket([]byte(bucketTxnOffsets)), key)
	})
	if err != nil {
		return fmt.Errorf("delete transaction %q: %w", id, err)
	}
	return nil
}

// ListTxns implements metastore.TxnStore. Keys iterate by id length
// first, so the records are sorted here.
func (s *Store) ListTxns(ctx context.Context) ([]metastore.Txn, error) {
	var out []metastore.Txn
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketTxns)).ForEach(func(k, v []byte) error {
			id, rest, err := splitTxnKey(k)
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return fmt.Errorf("transaction key: %w: %d bytes after the id", errCorrupt, len(rest))
			}
			t, err := decodeTxn(id, v)
			if err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	slices.SortFunc(out, func(a, b metastore.Txn) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out, nil
}

// EndTxn implements metastore.TxnStore in one write transaction: bbolt's
// single writer orders it with every commit, so a transactional batch is
// committed either before the marker or, refused, after it.
func (s *Store) EndTxn(ctx context.Context, e metastore.TxnEnd) (metastore.TxnEndResult, error) {
	id := e.Next.TransactionalID
	if err := metastore.ValidateTxnEnd(e); err != nil {
		return metastore.TxnEndResult{}, fmt.Errorf("end transaction %q: %w", id, err)
	}
	key, err := txnKey(id)
	if err != nil {
		return metastore.TxnEndResult{}, fmt.Errorf("end transaction %q: %w", id, err)
	}
	next := e.Next
	next.Version = e.Next.Version + 1
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = s.now()
	}
	res := metastore.TxnEndResult{MarkerOffsets: make([]int64, len(e.Markers.Batches)), Version: next.Version}
	notice := metastore.CommitNotice{Partitions: []metastore.TopicPartition{}}
	err = s.update(ctx, func(tx kv.Tx) error {
		stored, found, err := getTxn(tx, key)
		if err != nil {
			return err
		}
		if err := metastore.TxnEndError(stored, found, e); err != nil {
			return err
		}
		held := s.newHeldStates()
		cm := newCommitter(tx, e.Markers, s.now(), held)
		for i, b := range e.Markers.Batches {
			if res.MarkerOffsets[i], err = cm.addMarker(b); err != nil {
				return fmt.Errorf("marker %d: %w", i, err)
			}
		}
		if err := cm.write(); err != nil {
			return err
		}
		if err := held.write(tx); err != nil { // closeTxn reads them
			return err
		}
		for i, b := range e.Markers.Batches {
			if res.MarkerOffsets[i] < 0 {
				continue
			}
			pk := partitionKey{id: b.TopicID, partition: b.Partition}
			if err := closeTxn(tx, pk, e.ProducerID, res.MarkerOffsets[i], e.Commit); err != nil {
				return fmt.Errorf("marker %d: %w", i, err)
			}
			notice.Partitions = append(notice.Partitions, metastore.TopicPartition{TopicID: b.TopicID, Partition: b.Partition})
		}
		if err := endTxnOffsets(tx, key, e.Commit, e.Groups); err != nil {
			return err
		}
		return putTxn(tx, key, &next, stored, true)
	})
	if err != nil {
		return metastore.TxnEndResult{}, fmt.Errorf("end transaction %q: %w", id, err)
	}
	s.log.Debug("transaction ended", "transactional_id", id, "commit", e.Commit, "markers", len(notice.Partitions))
	if len(notice.Partitions) > 0 {
		s.Notify(notice)
	}
	return res, nil
}

// closeTxn closes a producer's open transaction on a partition whose
// marker got offset marker; an abort indexes [first, marker].
func closeTxn(tx kv.Tx, pk partitionKey, producerID, marker int64, commit bool) error {
	open := tx.Bucket([]byte(bucketTxnOpen))
	k := sequenceKey{partitionKey: pk, producerID: producerID}.key()
	v := open.Get(k)
	if v == nil {
		return nil // the producer wrote nothing there
	}
	first, err := decodeInt64(v, "open transaction")
	if err != nil {
		return err
	}
	if err := open.Delete(k); err != nil {
		return err
	}
	if commit {
		return nil
	}
	oldest, err := oldestOpen(tx, pk)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketTxnAborted)).Put(abortedKey(pk, marker),
		encodeAborted(producerID, first, metastore.AbortedStableOffset(marker, oldest)))
}

func abortedKey(pk partitionKey, lastOffset int64) []byte {
	return binary.BigEndian.AppendUint64(pk.bytes(), uint64(lastOffset))
}

func encodeAborted(producerID, first, stable int64) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(producerID))
	v = binary.BigEndian.AppendUint64(v, uint64(first))
	return binary.BigEndian.AppendUint64(v, uint64(stable))
}

// decodeAborted reads an aborted entry and its stable offset.
func decodeAborted(k, v []byte) (metastore.AbortedTxn, int64, error) {
	if len(k) != 28 || len(v) != 24 {
		return metastore.AbortedTxn{}, 0, fmt.Errorf("aborted transaction: %w: key %d bytes, value %d bytes", errCorrupt, len(k), len(v))
	}
	a := metastore.AbortedTxn{
		ProducerID:  int64(binary.BigEndian.Uint64(v)),
		FirstOffset: int64(binary.BigEndian.Uint64(v[8:])),
		LastOffset:  int64(binary.BigEndian.Uint64(k[20:])),
	}
	return a, int64(binary.BigEndian.Uint64(v[16:])), nil
}

// oldestOpen returns the first offset of the oldest transaction open on a
// partition, or -1.
func oldestOpen(tx kv.Tx, pk partitionKey) (int64, error) {
	oldest := int64(-1)
	prefix := pk.bytes()
	c := tx.Bucket([]byte(bucketTxnOpen)).Cursor()
	for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
		first, err := decodeInt64(v, "open transaction")
		if err != nil {
			return 0, err
		}
		if len(k) != 28 {
			return 0, fmt.Errorf("open transaction: %w: key %d bytes", errCorrupt, len(k))
		}
		if oldest < 0 || first < oldest {
			oldest = first
		}
	}
	return oldest, nil
}

// partitionOffsets reads a partition's offsets with its last stable
// offset.
func partitionOffsets(tx kv.Tx, pk partitionKey) (metastore.PartitionOffsets, error) {
	ps, err := readPartition(tx, pk)
	if err != nil {
		return metastore.PartitionOffsets{}, err
	}
	oldest, err := oldestOpen(tx, pk)
	if err != nil {
		return metastore.PartitionOffsets{}, err
	}
	return metastore.NewPartitionOffsets(ps.logStartOffset, ps.highWatermark, oldest), nil
}

// endTxnOffsets publishes the pending offsets of groups (commit) and drops
// every pending offset of the transaction.
func endTxnOffsets(tx kv.Tx, key []byte, commit bool, groups []string) error {
	pending := tx.Bucket([]byte(bucketTxnOffsets))
	offsets := tx.Bucket([]byte(bucketOffsets))
	var done [][]byte
	c := pending.Cursor()
	for k, v := c.Seek(key); bytes.HasPrefix(k, key); k, v = c.Next() {
		done = append(done, bytes.Clone(k))
		group, pkBytes, err := decodeGroupKey(k[len(key):])
		if err != nil {
			return err
		}
		o, err := decodeOffset(pkBytes, v)
		if err != nil {
			return err
		}
		if !commit || !slices.Contains(groups, group) {
			continue
		}
		gk, err := groupKey(group)
		if err != nil {
			return err
		}
		if err := offsets.Put(offsetKey(gk, partitionKey{id: o.TopicID, partition: o.Partition}), encodeOffset(&o)); err != nil {
			return err
		}
	}
	return deleteKeys(pending, done)
}

// CommitTxnOffsets implements metastore.TxnStore. A zero CommittedAt is
// set from the store's clock.
func (s *Store) CommitTxnOffsets(ctx context.Context, id string, producerID int64, epoch int16, group string, offsets []metastore.CommittedOffset) error {
	key, err := txnKey(id)
	if err != nil {
		return fmt.Errorf("commit transactional offsets %q: %w", id, err)
	}
	gk, err := groupKey(group)
	if err != nil {
		return fmt.Errorf("commit transactional offsets %q: %w", id, err)
	}
	now := s.now()
	err = s.update(ctx, func(tx kv.Tx) error {
		t, found, err := getTxn(tx, key)
		if err != nil {
			return err
		}
		if err := metastore.TxnOffsetsError(t, found, producerID, epoch, group); err != nil {
			return err
		}
		return putOffsets(tx, tx.Bucket([]byte(bucketTxnOffsets)), slices.Concat(key, gk), offsets, now)
	})
	if err != nil {
		return fmt.Errorf("commit transactional offsets %q of group %q: %w", id, group, err)
	}
	return nil
}

// PendingTxnOffsets implements metastore.TxnStore. Pending offsets are
// keyed by transaction first, so this reads the whole bucket, as
// deleteTopicTxns does: it holds only the offsets of transactions not yet
// ended, and only OffsetFetch with RequireStable asks.
func (s *Store) PendingTxnOffsets(ctx context.Context, group string) ([]metastore.TopicPartition, error) {
	var out []metastore.TopicPartition
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketTxnOffsets)).ForEach(func(k, v []byte) error {
			_, rest, err := splitTxnKey(k)
			if err != nil {
				return err
			}
			g, pk, err := decodeGroupKey(rest)
			if err != nil {
				return err
			}
			if g != group {
				return nil
			}
			o, err := decodeOffset(pk, v)
			if err != nil {
				return err
			}
			out = append(out, metastore.TopicPartition{TopicID: o.TopicID, Partition: o.Partition})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("pending transactional offsets of group %q: %w", group, err)
	}
	slices.SortFunc(out, metastore.CompareTopicPartitions)
	return slices.Compact(out), nil
}

// AbortedTxns implements metastore.TxnStore. The index is in marker order
// from from, and the scan stops at the first entry after which no entry
// can start before to (metastore.AbortedScanDone).
func (s *Store) AbortedTxns(ctx context.Context, id metastore.TopicID, partition int32, from, to int64) ([]metastore.AbortedTxn, error) {
	pk := partitionKey{id: id, partition: partition}
	var out []metastore.AbortedTxn
	err := s.view(ctx, func(tx kv.Tx) error {
		if err := checkPartition(tx, pk); err != nil {
			return err
		}
		prefix := pk.bytes()
		c := tx.Bucket([]byte(bucketTxnAborted)).Cursor()
		for k, v := c.Seek(abortedKey(pk, max(from, 0))); bytes.HasPrefix(k, prefix); k, v = c.Next() {
			a, stable, err := decodeAborted(k, v)
			if err != nil {
				return err
			}
			if a.FirstOffset < to {
				out = append(out, a)
			}
			if metastore.AbortedScanDone(stable, to) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aborted transactions %s [%d, %d): %w", pk, from, to, err)
	}
	metastore.SortAbortedTxns(out)
	return out, nil
}

// ActiveProducers implements metastore.TxnStore: the producers with
// sequence state on the partition (each producer's value of the topic,
// seqstate.go), and those with an open transaction there.
func (s *Store) ActiveProducers(ctx context.Context, id metastore.TopicID, partition int32) ([]metastore.ActiveProducer, error) {
	pk := partitionKey{id: id, partition: partition}
	byID := map[int64]*metastore.ActiveProducer{}
	get := func(k []byte) (*metastore.ActiveProducer, error) {
		if len(k) != 28 {
			return nil, fmt.Errorf("producer key: %w: %d bytes", errCorrupt, len(k))
		}
		pid := int64(binary.BigEndian.Uint64(k[20:]))
		p, ok := byID[pid]
		if !ok {
			p = &metastore.ActiveProducer{ProducerID: pid, ProducerEpoch: -1, LastSequence: -1, LastTimestamp: -1, CurrentTxnStartOffset: -1}
			byID[pid] = p
		}
		return p, nil
	}
	err := s.view(ctx, func(tx kv.Tx) error {
		if err := checkPartition(tx, pk); err != nil {
			return err
		}
		err := producersOnPartition(tx, pk, func(pid int64, st *sequence.State, ts int64) error {
			p, err := get(sequenceKey{partitionKey: pk, producerID: pid}.key())
			if err != nil {
				return err
			}
			p.ProducerEpoch, p.LastSequence, p.LastTimestamp = st.Epoch, st.LastSeq, ts
			return nil
		})
		if err != nil {
			return err
		}
		prefix := pk.bytes()
		c := tx.Bucket([]byte(bucketTxnOpen)).Cursor()
		for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
			first, err := decodeInt64(v, "open transaction")
			if err != nil {
				return err
			}
			p, err := get(k)
			if err != nil {
				return err
			}
			p.CurrentTxnStartOffset = first
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("active producers %s: %w", pk, err)
	}
	out := make([]metastore.ActiveProducer, 0, len(byID))
	for _, p := range byID {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b metastore.ActiveProducer) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out, nil
}

// deleteTopicTxns removes a topic's open and aborted transaction entries
// and every transaction's pending offsets of it, inside DeleteTopic's
// transaction. Pending offsets are keyed by transaction first, so this
// reads that whole bucket, as deleteTopicOffsets does.
func deleteTopicTxns(tx kv.Tx, id metastore.TopicID) error {
	for _, b := range []string{bucketTxnOpen, bucketTxnAborted} {
		if err := deletePrefix(tx.Bucket([]byte(b)), id[:]); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	b := tx.Bucket([]byte(bucketTxnOffsets))
	var keys [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		_, rest, err := splitTxnKey(k)
		if err != nil {
			return err
		}
		_, pk, err := decodeGroupKey(rest)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(pk, id[:]) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", bucketTxnOffsets, err)
	}
	return deleteKeys(b, keys)
}
