package protocol

// DescribeTransactions v0 (KIP-664).
//
// Describes the transactional ids this agent coordinates from their
// records in the metadata store: state (Kafka's names; Floe never stores
// PrepareCommit or PrepareAbort, docs/transactions.md), producer id and
// epoch, timeout, start time of the ongoing transaction (-1 when none)
// and its partitions. NOT_COORDINATOR for an id another agent owns,
// TRANSACTIONAL_ID_NOT_FOUND for one without a record,
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED without DESCRIBE on it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txncoord"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(65, 0, 0, (*Handler).describeTransactions) }

func (h *Handler) describeTransactions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeTransactionsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		txns, code := h.txnsOrErr()
		var allowed []string
		for _, id := range r.TransactionalIDs {
			if code == 0 && h.allowed(req, acl.Describe, acl.TransactionalID, id) {
				allowed = append(allowed, id)
			}
		}
		var descs []txncoord.Description
		if code == 0 {
			descs = txns.Describe(ctx, allowed)
		}
		lookup := h.lookup(ctx)
		for _, id := range r.TransactionalIDs {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID = id
			s.ProducerID, s.ProducerEpoch, s.StartTimestamp = -1, -1, -1
			switch {
			case code != 0:
				s.ErrorCode = code
			case len(descs) == 0 || descs[0].TransactionalID != id:
				s.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			default:
				d := descs[0]
				descs = descs[1:]
				s.ErrorCode, s.State, s.TimeoutMillis = d.Err, d.State, d.TimeoutMs
				if d.Err == 0 {
					s.StartTimestamp, s.ProducerID, s.ProducerEpoch = d.StartTimestamp, d.ProducerID, d.ProducerEpoch
					s.Topics = describeTxnTopics(lookup, d.Partitions)
				}
			}
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
		return resp
	}, nil
}

// describeTxnTopics groups a transaction's partitions (sorted by topic id)
// by topic name, skipping topics deleted since they were added.
func describeTxnTopics(lookup *topicLookup, parts []metastore.TopicPartition) []kmsg.DescribeTransactionsResponseTransactionStateTopic {
	var out []kmsg.DescribeTransactionsResponseTransactionStateTopic
	for _, p := range parts {
		t, err := lookup.id(p.TopicID)
		if err != nil {
			continue
		}
		if n := len(out); n == 0 || out[n-1].Topic != t.Name {
			rt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			rt.Topic = t.Name
			out = append(out, rt)
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, p.Partition)
	}
	return out
}
