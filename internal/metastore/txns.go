package metastore

import (
	"context"
	"errors"
	"time"
)

// Transactions (docs/transactions.md). A transactional id's state is one
// record in the store, changed by compare-and-swap of its Version as
// groups are, so that whichever agent coordinates the id can never
// overwrite what another wrote meanwhile. The store also keeps, per
// partition, the first offset of every transaction still open on it (the
// last stable offset is the smallest of them) and the aborted transaction
// index, and it ends a transaction in one atomic step (EndTxn): the
// control markers get their offsets, the open entries close, aborted
// ranges are indexed and the transaction's offset commits are published
// or dropped, all or nothing.

// TxnState is a transaction's state, by Kafka's names. PrepareCommit and
// PrepareAbort are never stored: EndTxn goes from Ongoing to
// CompleteCommit or CompleteAbort in one step.
type TxnState string

// Transaction states.
const (
	TxnEmpty          TxnState = "Empty"
	TxnOngoing        TxnState = "Ongoing"
	TxnCompleteCommit TxnState = "CompleteCommit"
	TxnCompleteAbort  TxnState = "CompleteAbort"
)

// Txn is the durable record of one transactional id.
type Txn struct {
	TransactionalID string
	// ProducerID and ProducerEpoch are the id's current producer; a
	// batch or request with another epoch is fenced.
	ProducerID    int64
	ProducerEpoch int16
	// LastProducerID and LastProducerEpoch are the producer before the
	// last epoch bump (-1 if none), so that a retried EndTxn or
	// InitProducerId of a producer whose epoch was bumped by its own
	// request is recognised (KIP-360, KIP-890 transaction version 2).
	LastProducerID    int64
	LastProducerEpoch int16
	State             TxnState
	// TimeoutMs is the producer's transaction.timeout.ms.
	TimeoutMs int32
	// Partitions are the partitions added to the ongoing transaction,
	// sorted by topic id and partition, without repeats.
	Partitions []TopicPartition
	// Groups are the consumer groups added by AddOffsetsToTxn, sorted.
	Groups []string
	// StartedAt is when the ongoing transaction added its first partition
	// or group; zero unless State is Ongoing.
	StartedAt time.Time
	UpdatedAt time.Time
	// Version increases with every write; SaveTxn and EndTxn compare it
	// (0 when no record exists yet).
	Version int64
}

// TxnEnd ends a transaction atomically (TxnStore.EndTxn).
type TxnEnd struct {
	// Next is the record to store: State CompleteCommit or CompleteAbort
	// (or Ongoing→… by an abort that fences, with a bumped epoch), with
	// Version the version it replaces.
	Next Txn
	// ProducerID is the producer whose transaction ends: its open
	// entries close, and its aborted ranges are indexed. It is the
	// stored record's ProducerID (Next may carry a new one).
	ProducerID int64
	// Commit publishes the transaction; false aborts it.
	Commit bool
	// Markers is the object holding one control batch per partition of
	// the transaction (OffsetCount 1 each), already uploaded. Batches of
	// partitions that no longer exist are skipped. An empty Object means
	// the transaction had no partitions.
	Markers SegmentCommit
	// Groups are the groups whose pending offsets (CommitTxnOffsets)
	// this end publishes or drops.
	Groups []string
}

// TxnEndResult is what EndTxn did.
type TxnEndResult struct {
	// MarkerOffsets holds the offset given to each marker batch, in
	// Markers.Batches order; -1 for a skipped batch.
	MarkerOffsets []int64
	// Version is the new version of the record.
	Version int64
}

// AbortedTxn is one entry of a partition's aborted transaction index: the
// producer's records in [FirstOffset, LastOffset] belong to an aborted
// transaction; LastOffset is the offset of its ABORT marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// ActiveProducer is what DescribeProducers shows of one producer on a
// partition.
type ActiveProducer struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32
	// LastTimestamp is the max timestamp of its last batch, or -1.
	LastTimestamp int64
	// CurrentTxnStartOffset is the first offset of its open transaction
	// on the partition, or -1.
	CurrentTxnStartOffset int64
}

// Errors of TxnStore, and the per-batch rejections CommitSegment gives
// transactional batches.
var (
	// ErrTxnVersionConflict: the stored version is not the expected one.
	ErrTxnVersionConflict = errors.New("transaction was changed by another coordinator")
	// ErrInvalidTxnState: a transactional batch for a partition not in
	// its producer's ongoing transaction, or a transactional offset
	// commit outside one.
	ErrInvalidTxnState = errors.New("invalid transaction state")
	// ErrUnknownTxn: no record for the transactional id (DeleteTxn,
	// EndTxn, CommitTxnOffsets).
	ErrUnknownTxn = errors.New("unknown transactional id")
)

// TxnStore keeps transactions. Besides these methods, the Sequencer
// checks every batch with BatchCommit.Transactional set: its producer must
// be the current producer (id and epoch) of an Ongoing transaction that
// has its partition (else ErrInvalidProducerEpoch for another epoch of
// that producer id, ErrInvalidTxnState otherwise, a batch without a
// producer id included), and the first such batch of a transaction on a
// partition opens the partition's entry for it at the batch's base
// offset. As in Kafka, a duplicate of a batch already committed is
// answered as a duplicate before this check, and the check's rejection
// comes before a sequence error. ExtentReader.Offsets,
// RetentionStore.AdvanceLogStart and PartitionUsage report the last
// stable offset; AdvanceLogStart also drops the aborted index entries
// whose LastOffset is below the new log start, and DeleteTopic removes
// the topic's open and aborted entries and every pending offset of it.
//
// SaveTxn and EndTxn refuse records that ValidateTxn rejects, and EndTxn
// ends that ValidateTxnEnd rejects, before touching the store; a zero
// UpdatedAt is set from the store's clock.
type TxnStore interface {
	// LoadTxn returns a transactional id's record; found is false if
	// there is none.
	LoadTxn(ctx context.Context, transactionalID string) (t Txn, found bool, err error)
	// SaveTxn writes t if the stored version equals t.Version (0: no
	// record) and returns the new version; else ErrTxnVersionConflict.
	SaveTxn(ctx context.Context, t Txn) (int64, error)
	// DeleteTxn removes a record at version (transactional.id
	// expiration), with any offsets pending in it; ErrTxnVersionConflict
	// if it moved, ErrUnknownTxn if there is none.
	DeleteTxn(ctx context.Context, transactionalID string, version int64) error
	// ListTxns returns every record, sorted by transactional id.
	ListTxns(ctx context.Context) ([]Txn, error)
	// EndTxn ends a transaction in one atomic step: it checks the stored
	// version (ErrTxnVersionConflict; ErrUnknownTxn without a record;
	// e.ProducerID must be the stored record's), commits the markers
	// object giving each marker the next offset of its partition,
	// closes the producer's open entries on those partitions (indexing
	// [first, marker] as aborted when aborting, where the producer had an
	// open entry), moves the pending offsets of e.Groups into the groups'
	// committed offsets (commit) or drops them (abort) — pending offsets
	// of other groups are dropped either way, the transaction being
	// over — stores e.Next at version e.Next.Version+1, and announces
	// the commit for the partitions that got markers. On any error
	// nothing is written.
	EndTxn(ctx context.Context, e TxnEnd) (TxnEndResult, error)
	// CommitTxnOffsets records offsets of a group pending in the ongoing
	// transaction of transactionalID, whose current producer must be
	// (producerID, epoch) (ErrInvalidProducerEpoch), whose State must be
	// Ongoing and whose Groups must hold group (ErrInvalidTxnState);
	// ErrUnknownTxn without a record. These are checked in that order,
	// before the partitions. A later commit of the same partition in the
	// transaction replaces the earlier one. An unknown partition fails
	// the whole call with ErrUnknownTopicOrPartition. A zero CommittedAt
	// is set from the store's clock, and published as it is.
	CommitTxnOffsets(ctx context.Context, transactionalID string, producerID int64, epoch int16, group string, offsets []CommittedOffset) error
	// AbortedTxns returns the aborted index entries of a partition
	// overlapping [from, to): LastOffset >= from and FirstOffset < to,
	// sorted by FirstOffset (then ProducerID).
	// ErrUnknownTopicOrPartition for an unknown partition.
	AbortedTxns(ctx context.Context, id TopicID, partition int32, from, to int64) ([]AbortedTxn, error)
	// ActiveProducers returns the producers with state on a partition
	// (idempotent sequence state or an open transaction), sorted by
	// producer id. ErrUnknownTopicOrPartition for an unknown partition.
	ActiveProducers(ctx context.Context, id TopicID, partition int32) ([]ActiveProducer, error)
}
