package txncoord

import (
	"context"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
)

// Description is one transactional id in DescribeTransactions.
type Description struct {
	TransactionalID string
	// Err is 0, NOT_COORDINATOR (not owned here),
	// TRANSACTIONAL_ID_NOT_FOUND, or COORDINATOR_NOT_AVAILABLE.
	Err int16
	// State is Kafka's name of the state ("Empty", "Ongoing",
	// "CompleteCommit", "CompleteAbort").
	State     string
	TimeoutMs int32
	// StartTimestamp is when the ongoing transaction started (Unix ms),
	// or -1.
	StartTimestamp int64
	ProducerID     int64
	ProducerEpoch  int16
	// Partitions and Groups are in the ongoing transaction. The caller
	// names the topics; Kafka lists a group as its __consumer_offsets
	// partition, which Floe does not have.
	Partitions []metastore.TopicPartition
	Groups     []string
}

// Describe answers DescribeTransactions, one Description per id in order.
func (c *Coordinator) Describe(ctx context.Context, ids []string) []Description {
	out := make([]Description, len(ids))
	for i, id := range ids {
		out[i] = Description{TransactionalID: id, Err: kerr.CoordinatorNotAvailable.Code, StartTimestamp: -1, ProducerID: -1, ProducerEpoch: -1}
	}
	return out
}

// ListFilter selects transactions in ListTransactions; empty fields
// select all.
type ListFilter struct {
	// States are Kafka state names. Names Kafka does not know are
	// returned as unknown and match nothing.
	States []string
	// ProducerIDs keep transactions of these producers.
	ProducerIDs []int64
	// MinDuration (v1, KIP-994) keeps ongoing transactions running for
	// longer than it; zero keeps all.
	MinDuration time.Duration
	// Pattern (v2, KIP-1152) keeps transactional ids it matches; nil
	// keeps all. The caller compiles it (INVALID_REGULAR_EXPRESSION).
	Pattern *regexp.Regexp
}

// Listing is one transaction in ListTransactions.
type Listing struct {
	TransactionalID string
	ProducerID      int64
	State           string
}

// List answers ListTransactions with the ids this agent owns, sorted by
// id, and the state filters Kafka does not know. err is a store failure
// (COORDINATOR_NOT_AVAILABLE).
func (c *Coordinator) List(ctx context.Context, f ListFilter) (txns []Listing, unknownStates []string, err error) {
	return nil, nil, nil
}
