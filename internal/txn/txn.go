// Package txn is Kafka's transaction coordinator as a pure state
// machine: given the stored record of one transactional id
// (metastore.Txn), a request and the current time, it decides the answer
// and the record to store next (docs/transactions.md).
//
// It never does I/O, starts no goroutine and reads no clock: time is an
// input, and a decision that needs a fresh producer id says so instead of
// allocating one, so that the caller (the runtime, internal/txncoord)
// allocates it and decides again. The caller owns locking, the metadata
// store (whose compare-and-swap on Txn.Version makes a decision taken on
// a stale record fail), the control batches and the connections.
//
// Behaviour follows Apache Kafka's TransactionCoordinator: KIP-98
// (transactions), KIP-360 (InitProducerId with the current producer id
// and epoch, to recover), KIP-447 (offset commits fenced by the group
// generation; the group side is the group coordinator's), KIP-588
// (PRODUCER_FENCED), KIP-664 (Describe/ListTransactions) and KIP-890
// (verify-only AddPartitionsToTxn; transaction version 2, in which every
// EndTxn bumps the epoch). Error codes are Kafka's, per request version.
package txn

import (
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Config holds the broker-side settings of transactions.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms: a producer asking for a
	// longer transaction.timeout.ms gets INVALID_TRANSACTION_TIMEOUT.
	// Kafka's default is 15 minutes; zero means that default.
	MaxTimeout time.Duration
}

// DefaultMaxTimeout is Kafka's transaction.max.timeout.ms.
const DefaultMaxTimeout = 15 * time.Minute

// WithDefaults returns c with zero fields set to Kafka's defaults.
func (c Config) WithDefaults() Config {
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	return c
}

// InitProducerIDRequest is an InitProducerId with a transactional id
// (requests without one are the idempotent producer's, which the store's
// ProducerStore answers alone).
type InitProducerIDRequest struct {
	// Version is the request version: it decides PRODUCER_FENCED (v4+)
	// or INVALID_PRODUCER_EPOCH.
	Version         int16
	TransactionalID string
	// TimeoutMs is the producer's transaction.timeout.ms.
	TimeoutMs int32
	// ProducerID and ProducerEpoch are -1, or (v3+, KIP-360) the
	// producer's current id and epoch, sent to recover from an error by
	// bumping its epoch.
	ProducerID    int64
	ProducerEpoch int16
}

// InitProducerIDResponse answers an InitProducerId. ProducerID and
// ProducerEpoch are -1 when Err is set.
type InitProducerIDResponse struct {
	Err           int16
	ProducerID    int64
	ProducerEpoch int16
}

// AddPartitionsRequest adds partitions to a transaction: one
// AddPartitionsToTxn of v0-v3, or one transaction of a v4+ request (which
// batches transactions, and is sent by brokers).
type AddPartitionsRequest struct {
	// Version is the request version: PRODUCER_FENCED from v2; a
	// partition a verify-only request finds missing is
	// TRANSACTION_ABORTABLE from v5, INVALID_TXN_STATE at v4.
	Version         int16
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	// Partitions must be known partitions: the caller answers unknown or
	// unauthorized ones itself (and OPERATION_NOT_ATTEMPTED for the rest,
	// as Kafka does) without calling.
	Partitions []metastore.TopicPartition
	// VerifyOnly (v4+) checks that the partitions are already in the
	// ongoing transaction and changes nothing (KIP-890).
	VerifyOnly bool
}

// AddPartitionsResponse answers an AddPartitionsRequest.
type AddPartitionsResponse struct {
	// Err is set when the whole request failed; every entry of Errs is
	// then Err.
	Err int16
	// Errs holds one code per partition of the request, in its order.
	Errs []int16
}

// AddOffsetsRequest is an AddOffsetsToTxn: the group's offsets will be
// committed (TxnOffsetCommit) in the transaction.
type AddOffsetsRequest struct {
	Version         int16 // PRODUCER_FENCED from v2
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Group           string
}

// EndTxnRequest is an EndTxn: commit or abort the ongoing transaction.
type EndTxnRequest struct {
	// Version is the request version: PRODUCER_FENCED from v2;
	// transaction version 2 (KIP-890) from v5, where every end bumps the
	// producer epoch and the response carries the new id and epoch.
	Version         int16
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Commit          bool
}

// EndTxnResponse answers an EndTxn. ProducerID and ProducerEpoch are the
// producer to continue with (EndTxn v5+ sends them); -1 when Err is set.
type EndTxnResponse struct {
	Err           int16
	ProducerID    int64
	ProducerEpoch int16
}

// OffsetCommitRequest is the transactional side of a TxnOffsetCommit: the
// offsets become visible when the transaction commits. The group side
// (generation, member id, group instance id; KIP-447) is checked by the
// group coordinator before.
type OffsetCommitRequest struct {
	// Version is the request version: a group missing from the
	// transaction is TRANSACTION_ABORTABLE from v4, INVALID_TXN_STATE
	// before; v5 (transaction version 2) adds the group itself.
	Version         int16
	TransactionalID string
	Group           string
	ProducerID      int64
	ProducerEpoch   int16
	Offsets         []metastore.CommittedOffset
}

// Input is what a decision needs besides the record and the request.
type Input struct {
	// Now is the current time.
	Now time.Time
	// NewProducerID is a producer id allocated for this decision, or -1.
	// A decision that needs one and has none asks for it
	// (Effect.NeedProducerID).
	NewProducerID int64
}

// Effect is what the caller must do after a decision, before answering.
// At most one of Save and End is set.
type Effect struct {
	// NeedProducerID: allocate a producer id and decide again with
	// Input.NewProducerID set; nothing else is set and the response is
	// not an answer.
	NeedProducerID bool
	// Save is the record to write with TxnStore.SaveTxn; its Version is
	// the version it replaces (0: none stored).
	Save *metastore.Txn
	// End is a transaction to end with TxnStore.EndTxn.
	End *Ending
	// Again: the write (an abort of a transaction past its timeout) was
	// not the request's own: once it is stored, decide the request again
	// on the new record; the response is not an answer.
	Again bool
}

// Ending ends a transaction: the caller builds one control batch per
// partition (producer ProducerID, epoch MarkerEpoch, COMMIT if Commit,
// else ABORT), uploads them as one object and calls TxnStore.EndTxn with
// Next, ProducerID, Commit, the markers and Groups.
type Ending struct {
	// Next is the record to store, Version the version it replaces.
	Next       metastore.Txn
	ProducerID int64
	// MarkerEpoch is the epoch the markers carry: the ended producer's,
	// or the bumped one when the end bumps it (fencing, transaction
	// version 2), as Kafka writes them.
	MarkerEpoch int16
	Commit      bool
	Partitions  []metastore.TopicPartition
	Groups      []string
	// Reason says why the transaction ends, for logs and metrics:
	// "commit", "abort", "timeout" or "fence" (an InitProducerId of a
	// new producer).
	Reason string
}
