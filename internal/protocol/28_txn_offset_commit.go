package protocol

// TxnOffsetCommit v0-v5.
//
// Sent to the group's coordinator by a transactional producer after
// AddOffsetsToTxn: the offsets are checked as OffsetCommit's are (from v3
// the member id, generation and instance id, so that a zombie member of
// an older generation is fenced, KIP-447; before v3, or with generation
// -1, no member check), then recorded in the metadata store as pending in
// the producer's transaction. They become the group's committed offsets
// in the same atomic step that commits the transaction, or are dropped if
// it aborts. The store checks that the producer id and epoch are the
// transaction's current ones (INVALID_PRODUCER_EPOCH) and that the group
// was added to the ongoing transaction (INVALID_TXN_STATE, or from v4
// TRANSACTION_ABORTABLE). Needs WRITE on the transactional id, READ on
// the group and on each topic. Any agent can answer for any transactional
// id. v5 is transaction version 2 (KIP-890 part 2): the group joins the
// transaction here, without AddOffsetsToTxn, starting the transaction if
// none is open. v6 names topics by id and is not advertised.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(28, 0, 5, (*Handler).txnOffsetCommit) }

func (h *Handler) txnOffsetCommit(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.TxnOffsetCommitRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		fillAll := func(code int16) kmsg.Response {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
			return resp
		}
		co, code := h.groupsOrErr()
		switch {
		case code != 0:
		case !h.allowed(req, acl.Write, acl.TransactionalID, r.TransactionalID):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case !h.allowed(req, acl.Read, acl.Group, r.Group):
			code = kerr.GroupAuthorizationFailed.Code
		case r.Group == "":
			code = kerr.InvalidGroupID.Code
		}
		if code != 0 {
			return fillAll(code)
		}

		lookup := h.lookup(ctx)
		var offsets []metastore.CommittedOffset
		var answers []*kmsg.TxnOffsetCommitResponseTopicPartition // one per offset
		for i, t := range r.Topics {
			topic, err := lookup.name(t.Topic)
			readable := h.allowed(req, acl.Read, acl.Topic, t.Topic)
			for j, p := range t.Partitions {
				rp := &resp.Topics[i].Partitions[j]
				switch {
				case !readable:
					rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case err != nil || p.Partition < 0 || p.Partition >= topic.Partitions:
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case p.Metadata != nil && len(*p.Metadata) > maxOffsetMetadata:
					rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				default:
					epoch := p.LeaderEpoch
					if r.Version < 2 {
						epoch = -1
					}
					offsets = append(offsets, metastore.CommittedOffset{
						TopicID: topic.ID, Partition: p.Partition, Offset: p.Offset,
						LeaderEpoch: epoch, Metadata: derefStr(p.Metadata),
					})
					answers = append(answers, rp)
				}
			}
		}
		txns, code := h.txnsOrErr()
		if code == 0 {
			code = co.ValidateTxnCommit(ctx, r.Group, r.MemberID, derefStr(r.InstanceID), r.Generation, r.Version)
		}
		if code == 0 && len(offsets) > 0 {
			code = txns.CommitOffsets(ctx, txn.OffsetCommitRequest{
				Version: r.Version, TransactionalID: r.TransactionalID, Group: r.Group,
				ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch, Offsets: offsets,
			})
		}
		for _, a := range answers {
			a.ErrorCode = code
		}
		return resp
	}, nil
}
