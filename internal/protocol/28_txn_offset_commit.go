package protocol

// TxnOffsetCommit v0-v4.
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
// was added to the ongoing transaction (INVALID_TXN_STATE). Needs WRITE
// on the transactional id, READ on the group and on each topic.
//
// v5 belongs to transaction version 2, which Floe does not advertise;
// v6 names topics by id.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(28, 0, 4, (*Handler).txnOffsetCommit) }

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
		generation, memberID := r.Generation, r.MemberID
		// The OffsetCommit rules these fields follow: v3 carries what
		// OffsetCommit v7 does; a KIP-848 member's generation is its
		// member epoch, which OffsetCommit takes from v9.
		version := int16(7)
		if r.Version < 3 {
			generation, memberID, version = -1, "", 2
		} else if generation >= 0 && memberID != "" {
			version = 9
		}
		write := func(ctx context.Context, offsets []metastore.CommittedOffset) int16 {
			err := h.store.CommitTxnOffsets(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, offsets)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, metastore.ErrInvalidProducerEpoch):
				return kerr.InvalidProducerEpoch.Code
			case errors.Is(err, metastore.ErrInvalidTxnState), errors.Is(err, metastore.ErrUnknownTxn):
				return kerr.InvalidTxnState.Code
			case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
				return kerr.UnknownTopicOrPartition.Code
			default:
				h.log.Warn("transactional offset commit failed", "group", r.Group, "transactional_id", r.TransactionalID, "err", err)
				return kerr.CoordinatorNotAvailable.Code
			}
		}
		code, codes := co.CommitTxnOffsets(ctx, r.Group, memberID, derefStr(r.InstanceID), generation, version, offsets, write)
		if code == kerr.GroupIDNotFound.Code {
			code = kerr.IllegalGeneration.Code
		}
		if code != 0 {
			return fillAll(code)
		}
		for i, c := range codes {
			answers[i].ErrorCode = c
		}
		return resp
	}, nil
}
