package metastore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rules of the TxnStore shared by the backends, so that they decide
// alike, and the encoding of a record's partition and group lists that
// both store as bytes; like package sequence, they do no I/O.

// CompareTopicPartitions orders partitions by topic id (bytewise), then
// partition: the order of Txn.Partitions and of partition locks.
func CompareTopicPartitions(a, b TopicPartition) int {
	return cmp.Or(bytes.Compare(a.TopicID[:], b.TopicID[:]), cmp.Compare(a.Partition, b.Partition))
}

// ValidateTxn rejects records no correct coordinator writes: an unknown
// state, a negative version, partitions or groups unsorted or repeated.
// SaveTxn and EndTxn fail with it before touching the store.
func ValidateTxn(t Txn) error {
	switch t.State {
	case TxnEmpty, TxnOngoing, TxnCompleteCommit, TxnCompleteAbort:
	default:
		return fmt.Errorf("transaction %q: unknown state %q", t.TransactionalID, t.State)
	}
	if t.Version < 0 {
		return fmt.Errorf("transaction %q: negative version %d", t.TransactionalID, t.Version)
	}
	for i, tp := range t.Partitions {
		if tp.Partition < 0 {
			return fmt.Errorf("transaction %q: negative partition %d", t.TransactionalID, tp.Partition)
		}
		if i > 0 && CompareTopicPartitions(t.Partitions[i-1], tp) >= 0 {
			return fmt.Errorf("transaction %q: partitions not sorted without repeats at %d", t.TransactionalID, i)
		}
	}
	for i := 1; i < len(t.Groups); i++ {
		if t.Groups[i-1] >= t.Groups[i] {
			return fmt.Errorf("transaction %q: groups not sorted without repeats at %d", t.TransactionalID, i)
		}
	}
	return nil
}

// ValidateTxnEnd rejects ends no correct coordinator sends: an invalid
// Next record, or markers that are not one batch of one offset per
// partition in a valid commit. An empty Markers.Object must come without
// batches.
func ValidateTxnEnd(e TxnEnd) error {
	if err := ValidateTxn(e.Next); err != nil {
		return err
	}
	if e.Markers.Object == "" {
		if len(e.Markers.Batches) > 0 {
			return fmt.Errorf("%d marker batches without an object", len(e.Markers.Batches))
		}
		return nil
	}
	if err := ValidateCommit(e.Markers); err != nil {
		return fmt.Errorf("markers: %w", err)
	}
	seen := make(map[TopicPartition]bool, len(e.Markers.Batches))
	for i, b := range e.Markers.Batches {
		tp := TopicPartition{TopicID: b.TopicID, Partition: b.Partition}
		switch {
		case b.OffsetCount != 1:
			return fmt.Errorf("marker %d: offset count %d, want 1", i, b.OffsetCount)
		case seen[tp]:
			return fmt.Errorf("marker %d: partition %d has two markers", i, b.Partition)
		}
		seen[tp] = true
	}
	return nil
}

// TxnBatchError decides the transaction check of a batch with
// BatchCommit.Transactional set, given the record whose current producer
// id is the batch's (found false if none): nil if the batch belongs to
// that Ongoing transaction and its partition was added to it,
// ErrInvalidProducerEpoch for another epoch of the producer id,
// ErrInvalidTxnState otherwise.
func TxnBatchError(t Txn, found bool, b BatchCommit) error {
	switch {
	case !found || b.ProducerID < 0 || t.ProducerID != b.ProducerID:
		return ErrInvalidTxnState
	case t.ProducerEpoch != b.ProducerEpoch:
		return ErrInvalidProducerEpoch
	case t.State != TxnOngoing || !TxnHasPartition(t, TopicPartition{TopicID: b.TopicID, Partition: b.Partition}):
		return ErrInvalidTxnState
	}
	return nil
}

// TxnHasPartition reports whether tp was added to t (t.Partitions is
// sorted).
func TxnHasPartition(t Txn, tp TopicPartition) bool {
	_, found := slices.BinarySearchFunc(t.Partitions, tp, CompareTopicPartitions)
	return found
}

// TxnOffsetsError decides the checks of CommitTxnOffsets against the
// stored record (found false if none), before its partitions are looked
// at: ErrUnknownTxn, then ErrInvalidProducerEpoch, then
// ErrInvalidTxnState.
func TxnOffsetsError(t Txn, found bool, producerID int64, epoch int16, group string) error {
	switch {
	case !found:
		return ErrUnknownTxn
	case t.ProducerID != producerID || t.ProducerEpoch != epoch:
		return fmt.Errorf("producer %d epoch %d, current %d epoch %d: %w", producerID, epoch, t.ProducerID, t.ProducerEpoch, ErrInvalidProducerEpoch)
	case t.State != TxnOngoing:
		return fmt.Errorf("transaction is %s: %w", t.State, ErrInvalidTxnState)
	}
	if _, ok := slices.BinarySearch(t.Groups, group); !ok {
		return fmt.Errorf("group %q not added to the transaction: %w", group, ErrInvalidTxnState)
	}
	return nil
}

// TxnEndError decides the checks of EndTxn against the stored record
// (found false if none), before anything is written.
func TxnEndError(stored Txn, found bool, e TxnEnd) error {
	switch {
	case !found:
		return ErrUnknownTxn
	case stored.Version != e.Next.Version:
		return fmt.Errorf("expected version %d, stored %d: %w", e.Next.Version, stored.Version, ErrTxnVersionConflict)
	case stored.ProducerID != e.ProducerID:
		return fmt.Errorf("ending producer %d, the record's is %d", e.ProducerID, stored.ProducerID)
	}
	return nil
}

// NewPartitionOffsets completes a partition's offsets with its last
// stable offset: oldestOpen is the first offset of the oldest transaction
// open on it, or -1 if none is. The last stable offset never lies below
// the log start, as in Kafka (DeleteRecords may move the log start past
// an open transaction's first offset).
func NewPartitionOffsets(logStart, highWatermark, oldestOpen int64) PartitionOffsets {
	o := PartitionOffsets{LogStartOffset: logStart, HighWatermark: highWatermark, LastStableOffset: highWatermark}
	if oldestOpen >= 0 {
		o.LastStableOffset = min(max(oldestOpen, logStart), highWatermark)
	}
	return o
}

// SortAbortedTxns puts entries in AbortedTxns' order: by first offset,
// then producer id.
func SortAbortedTxns(ts []AbortedTxn) {
	slices.SortFunc(ts, func(a, b AbortedTxn) int {
		return cmp.Or(cmp.Compare(a.FirstOffset, b.FirstOffset), cmp.Compare(a.ProducerID, b.ProducerID))
	})
}

// The aborted index is scanned in marker (LastOffset) order. Each entry
// also keeps its partition's stable offset right after its marker: the
// smallest first offset of the transactions still open then, else the
// high watermark. An entry written later was either open then (its first
// offset is at least that stable offset) or opened later (its first offset
// is at least the high watermark then), so once an entry with stable
// offset >= to is read, no later entry starts below to and AbortedTxns
// may stop: a consumer far behind reads a few entries, not the whole
// index. Kafka's transaction index stops the same way.

// AbortedScanDone reports whether an AbortedTxns scan up to to may stop
// after an entry whose stable offset is stable.
func AbortedScanDone(stable, to int64) bool { return stable >= to }

// AbortedStableOffset is the stable offset an abort marker at marker
// records: oldestOpen is the smallest first offset of the transactions
// still open on the partition once the aborting producer's entry is
// closed, or -1.
func AbortedStableOffset(marker, oldestOpen int64) int64 {
	if oldestOpen >= 0 {
		return min(oldestOpen, marker+1)
	}
	return marker + 1
}

// Encoding of Txn.Partitions and Txn.Groups as stored by the backends.
// Partitions are 20 bytes each: topic id (16), partition (4, big-endian).
// Groups are each a uvarint length and the name's bytes, so that names
// with any bytes (Kafka does not restrict them) survive.

const txnPartitionBytes = 16 + 4

// errCorruptTxn marks stored transaction fields that cannot be decoded.
var errCorruptTxn = errors.New("corrupt transaction record")

// EncodeTxnPartitions encodes a record's partitions (never nil, so that
// a database stores no partitions as empty bytes, not NULL).
func EncodeTxnPartitions(ps []TopicPartition) []byte {
	b := make([]byte, 0, len(ps)*txnPartitionBytes)
	for _, tp := range ps {
		b = append(b, tp.TopicID[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
	}
	return b
}

// DecodeTxnPartitions decodes what EncodeTxnPartitions wrote, checking
// that the partitions are sorted without repeats as ValidateTxn requires;
// nil for none. It allocates no more than the input's size.
func DecodeTxnPartitions(b []byte) ([]TopicPartition, error) {
	if len(b)%txnPartitionBytes != 0 {
		return nil, fmt.Errorf("%w: partitions of %d bytes", errCorruptTxn, len(b))
	}
	if len(b) == 0 {
		return nil, nil
	}
	ps := make([]TopicPartition, len(b)/txnPartitionBytes)
	for i := range ps {
		v := b[i*txnPartitionBytes:]
		copy(ps[i].TopicID[:], v)
		ps[i].Partition = int32(binary.BigEndian.Uint32(v[16:]))
		if ps[i].Partition < 0 || i > 0 && CompareTopicPartitions(ps[i-1], ps[i]) >= 0 {
			return nil, fmt.Errorf("%w: partitions not sorted at %d", errCorruptTxn, i)
		}
	}
	return ps, nil
}

// EncodeTxnGroups encodes a record's groups (never nil, as
// EncodeTxnPartitions).
func EncodeTxnGroups(groups []string) []byte {
	b := []byte{}
	for _, g := range groups {
		b = binary.AppendUvarint(b, uint64(len(g)))
		b = append(b, g...)
	}
	return b
}

// DecodeTxnGroups decodes what EncodeTxnGroups wrote; nil for none. Every
// length is checked against the bytes left before anything is allocated.
func DecodeTxnGroups(b []byte) ([]string, error) {
	var groups []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: group %d: bad length", errCorruptTxn, len(groups))
		}
		g := string(b[k : k+int(n)])
		if len(groups) > 0 && strings.Compare(groups[len(groups)-1], g) >= 0 {
			return nil, fmt.Errorf("%w: groups not sorted at %d", errCorruptTxn, len(groups))
		}
		groups = append(groups, g)
		b = b[k+int(n):]
	}
	return groups, nil
}

// ParseTxnState checks a stored state name.
func ParseTxnState(s string) (TxnState, error) {
	switch st := TxnState(s); st {
	case TxnEmpty, TxnOngoing, TxnCompleteCommit, TxnCompleteAbort:
		return st, nil
	}
	return "", fmt.Errorf("%w: state %q", errCorruptTxn, s)
}
