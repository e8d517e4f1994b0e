package txncoord

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
)

// Description is one transactional id in DescribeTransactions.
type Description struct {
	TransactionalID string
	// Err is 0, NOT_COORDINATOR (not owned here), INVALID_REQUEST (an
	// empty id), TRANSACTIONAL_ID_NOT_FOUND, or COORDINATOR_NOT_AVAILABLE.
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
// It reads the store without taking the ids' turns: a description is the
// last stored state.
func (c *Coordinator) Describe(ctx context.Context, ids []string) []Description {
	out := make([]Description, len(ids))
	for i, id := range ids {
		d := Description{TransactionalID: id, StartTimestamp: -1, ProducerID: -1, ProducerEpoch: -1}
		switch {
		case id == "":
			d.Err = kerr.InvalidRequest.Code
		case !c.Owns(id):
			d.Err = kerr.NotCoordinator.Code
		default:
			rec, found, err := c.store.LoadTxn(ctx, id)
			switch {
			case err != nil:
				d.Err = errCode(err)
			case !found:
				d.Err = kerr.TransactionalIDNotFound.Code
			default:
				d.State, d.TimeoutMs = string(rec.State), rec.TimeoutMs
				d.ProducerID, d.ProducerEpoch = rec.ProducerID, rec.ProducerEpoch
				d.Partitions, d.Groups = rec.Partitions, rec.Groups
				if rec.State == metastore.TxnOngoing {
					d.StartTimestamp = rec.StartedAt.UnixMilli()
				}
			}
		}
		out[i] = d
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

// kafkaStates are every state name Kafka knows; Floe stores four of them.
var kafkaStates = []string{
	"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
}

// List answers ListTransactions with the ids this agent owns, sorted by
// id, and the state filters Kafka does not know. err is a store failure
// (COORDINATOR_NOT_AVAILABLE).
func (c *Coordinator) List(ctx context.Context, f ListFilter) (txns []Listing, unknownStates []string, err error) {
	var states []string
	for _, s := range f.States {
		if slices.Contains(kafkaStates, s) {
			states = append(states, s)
		} else {
			unknownStates = append(unknownStates, s)
		}
	}
	if len(f.States) > 0 && len(states) == 0 {
		// Only unknown states: nothing can match (Kafka answers none).
		return nil, unknownStates, nil
	}
	recs, err := c.store.ListTxns(ctx)
	if err != nil {
		return nil, unknownStates, err
	}
	now := c.opts.Now()
	for _, rec := range recs {
		switch {
		case len(states) > 0 && !slices.Contains(states, string(rec.State)),
			len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, rec.ProducerID),
			f.MinDuration > 0 && (rec.State != metastore.TxnOngoing || now.Sub(rec.StartedAt) <= f.MinDuration),
			f.Pattern != nil && !f.Pattern.MatchString(rec.TransactionalID),
			!c.Owns(rec.TransactionalID):
			continue
		}
		txns = append(txns, Listing{TransactionalID: rec.TransactionalID, ProducerID: rec.ProducerID, State: string(rec.State)})
	}
	return txns, unknownStates, nil
}
