package protocol

// AddPartitionsToTxn v0-v5.
//
// v0-v3 add one producer's partitions to its ongoing transaction, before
// it produces to them. v4+ batch several transactional ids, each possibly
// verifyOnly (KIP-890: a broker checking that a partition is in a
// transaction before writing to it; Floe's agents check in the metadata
// store's commit instead, and answer the request from clients and tools
// all the same). Needs WRITE on the transactional id and on each topic: a
// partition that fails either check, or names an unknown topic or
// partition, gets its error and every other partition of the
// transaction OPERATION_NOT_ATTEMPTED, as Kafka answers.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/txncoord"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(24, 0, 5, (*Handler).addPartitionsToTxn) }

func (h *Handler) addPartitionsToTxn(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AddPartitionsToTxnRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		if r.Version < 4 {
			topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(r.Topics))
			for i, t := range r.Topics {
				topics[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
			}
			res := h.addTxnPartitions(ctx, req, r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, false, topics)
			for _, t := range res.Topics {
				rt := kmsg.NewAddPartitionsToTxnResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p.Partition, ErrorCode: p.ErrorCode})
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}
		if !h.allowedOnCluster(req, kmsg.ACLOperationClusterAction) {
			// v4+ is the brokers' verification request.
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp
		}
		for _, t := range r.Transactions {
			resp.Transactions = append(resp.Transactions,
				h.addTxnPartitions(ctx, req, r.Version, t.TransactionalID, t.ProducerID, t.ProducerEpoch, t.VerifyOnly, t.Topics))
		}
		return resp
	}, nil
}

// addTxnPartitions answers one transaction of an AddPartitionsToTxn.
func (h *Handler) addTxnPartitions(ctx context.Context, req *wire.Request, v int16, id string, producerID int64, epoch int16,
	verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) kmsg.AddPartitionsToTxnResponseTransaction {
	out := kmsg.NewAddPartitionsToTxnResponseTransaction()
	out.TransactionalID = id
	var answers []*kmsg.AddPartitionsToTxnResponseTransactionTopicPartition
	for _, t := range topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p})
		}
		out.Topics = append(out.Topics, rt)
	}
	for i := range out.Topics {
		for j := range out.Topics[i].Partitions {
			answers = append(answers, &out.Topics[i].Partitions[j])
		}
	}
	fill := func(code int16) kmsg.AddPartitionsToTxnResponseTransaction {
		for _, a := range answers {
			a.ErrorCode = code
		}
		return out
	}
	txns, code := h.txnCoordinator(id)
	if code == 0 && !h.allowed(req, acl.Write, acl.TransactionalID, id) {
		code = kerr.TransactionalIDAuthorizationFailed.Code
	}
	if code != 0 {
		return fill(code)
	}
	lookup := h.lookup(ctx)
	var parts []metastore.TopicPartition
	failed := false
	k := 0
	for _, t := range topics {
		topic, terr := lookup.name(t.Topic)
		writable := h.allowed(req, acl.Write, acl.Topic, t.Topic)
		for _, p := range t.Partitions {
			a := answers[k]
			k++
			switch {
			case !writable:
				a.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case partitionErr(topic, terr, p) != 0:
				a.ErrorCode = partitionErr(topic, terr, p)
			default:
				parts = append(parts, metastore.TopicPartition{TopicID: topic.ID, Partition: p})
				continue
			}
			failed = true
		}
	}
	if failed {
		for _, a := range answers {
			if a.ErrorCode == 0 {
				a.ErrorCode = kerr.OperationNotAttempted.Code
			}
		}
		return out
	}
	res := txns.AddPartitions(ctx, txn.AddPartitionsRequest{
		Version: v, TransactionalID: id, ProducerID: producerID, ProducerEpoch: epoch,
		Partitions: parts, VerifyOnly: verifyOnly,
	})
	if res.Err != 0 {
		return fill(res.Err)
	}
	for i, c := range res.Errs {
		if i < len(answers) {
			answers[i].ErrorCode = c
		}
	}
	return out
}

// txnsOrErr returns the transaction coordinator, or
// COORDINATOR_NOT_AVAILABLE when the agent has none.
func (h *Handler) txnsOrErr() (*txncoord.Coordinator, int16) {
	if h.cfg.Transactions == nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	return h.cfg.Transactions, 0
}

// txnCoordinator returns the transaction coordinator for id, or the code
// to answer: COORDINATOR_NOT_AVAILABLE when the agent has none,
// NOT_COORDINATOR when another agent owns id (the client looks the
// coordinator up again).
func (h *Handler) txnCoordinator(id string) (*txncoord.Coordinator, int16) {
	switch {
	case h.cfg.Transactions == nil:
		return nil, kerr.CoordinatorNotAvailable.Code
	case !h.cfg.Transactions.Owns(id):
		return nil, kerr.NotCoordinator.Code
	}
	return h.cfg.Transactions, 0
}
