package protocol

// DescribeTransactions v0 (KIP-664).
//
// Describes transactional ids from their records in the metadata store:
// state (Kafka's names; Floe never stores PrepareCommit or PrepareAbort,
// docs/transactions.md), producer id and epoch, timeout, start time of
// the ongoing transaction (-1 when none) and its partitions. An id
// without a record is TRANSACTIONAL_ID_NOT_FOUND; one the client may not
// describe, TRANSACTIONAL_ID_AUTHORIZATION_FAILED. Any agent answers from
// the store; clients ask the id's coordinator, and each id has one.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(65, 0, 0, (*Handler).describeTransactions) }

func (h *Handler) describeTransactions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeTransactionsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		lookup := h.lookup(ctx)
		for _, id := range r.TransactionalIDs {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID = id
			s.ProducerID, s.ProducerEpoch, s.StartTimestamp = -1, -1, -1
			if !h.allowed(req, acl.Describe, acl.TransactionalID, id) {
				s.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				resp.TransactionStates = append(resp.TransactionStates, s)
				continue
			}
			t, found, err := h.store.LoadTxn(ctx, id)
			switch {
			case err != nil:
				h.log.Warn("describe transaction failed", "transactional_id", id, "err", err)
				s.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case !found:
				s.ErrorCode = kerr.TransactionalIDNotFound.Code
			default:
				s.State = string(t.State)
				s.TimeoutMillis = t.TimeoutMs
				s.ProducerID, s.ProducerEpoch = t.ProducerID, t.ProducerEpoch
				if t.State == metastore.TxnOngoing && !t.StartedAt.IsZero() {
					s.StartTimestamp = t.StartedAt.UnixMilli()
				}
				s.Topics = describeTxnTopics(lookup, t.Partitions)
			}
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
		return resp
	}, nil
}

// describeTxnTopics groups a transaction's partitions by topic name,
// skipping topics deleted since they were added.
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
