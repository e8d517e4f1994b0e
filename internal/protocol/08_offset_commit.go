package protocol

// OffsetCommit v2-v10.
//
// Offsets are acknowledged only once the metadata store has them. Member
// commits are checked against the group's generation
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS while the
// group awaits its leader's assignment, FENCED_INSTANCE_ID for v7+,
// KIP-345); a group without members accepts "simple" commits with
// generation -1. A member commit into a group that does not exist is
// GROUP_ID_NOT_FOUND from v9, ILLEGAL_GENERATION before. In a KIP-848
// consumer group the generation field carries the member epoch and
// members must use v9+ (UNSUPPORTED_VERSION before): an epoch ahead of
// the coordinator's is STALE_MEMBER_EPOCH for the whole request, and a
// partition the member does not hold since that epoch is
// STALE_MEMBER_EPOCH alone (KIP-1251's rule). v6+ commits the
// leader epoch (KIP-320), which OffsetFetch returns. v10 names topics by
// id (UNKNOWN_TOPIC_ID). The retention time of v2-v4 is accepted and
// ignored: offsets of groups without members expire after
// offsets.retention.minutes, as in Kafka 2.1+ (KIP-211). Metadata longer
// than offset.metadata.max.bytes (4096) is OFFSET_METADATA_TOO_LARGE.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(8, 2, 10, (*Handler).offsetCommit) }

func (h *Handler) offsetCommit(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.OffsetCommitRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		// One response partition per request partition, in order.
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		// A group-level error applies to every partition, as in Kafka.
		fillAll := func(code int16) kmsg.Response {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if code != 0 {
						resp.Topics[i].Partitions[j].ErrorCode = code
					}
				}
			}
			return resp
		}
		co, code := h.groupsOrErr()
		if code == 0 && !h.allowed(req, acl.Read, acl.Group, r.Group) {
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code == 0 && r.Group == "" {
			code = kerr.InvalidGroupID.Code
		}
		if code != 0 {
			return fillAll(code)
		}

		lookup := h.lookup(ctx)
		names := map[metastore.TopicID]string{}
		var offsets []metastore.CommittedOffset
		var answers []*kmsg.OffsetCommitResponseTopicPartition // one per offset
		for i, t := range r.Topics {
			var topic metastore.Topic
			var err error
			if r.Version >= 10 {
				topic, err = lookup.id(t.TopicID)
			} else {
				topic, err = lookup.name(t.Topic)
			}
			name := t.Topic
			if r.Version >= 10 {
				name = topic.Name
			}
			readable := (err != nil && r.Version >= 10) || h.allowed(req, acl.Read, acl.Topic, name)
			for j, p := range t.Partitions {
				rp := &resp.Topics[i].Partitions[j]
				switch {
				case !readable:
					rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case err != nil && !errors.Is(err, metastore.ErrUnknownTopicOrPartition):
					// The store failed, the topic may well exist: a
					// retriable group error, not "unknown topic".
					rp.ErrorCode = kerr.CoordinatorNotAvailable.Code
				case err != nil && r.Version >= 10:
					rp.ErrorCode = kerr.UnknownTopicID.Code
				case err != nil || p.Partition < 0 || p.Partition >= topic.Partitions:
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case p.Metadata != nil && len(*p.Metadata) > maxOffsetMetadata:
					rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				default:
					names[topic.ID] = topic.Name
					offsets = append(offsets, metastore.CommittedOffset{
						TopicID: topic.ID, Partition: p.Partition, Offset: p.Offset,
						LeaderEpoch: p.LeaderEpoch, Metadata: derefStr(p.Metadata),
					})
					answers = append(answers, rp)
				}
			}
		}
		if r.Version < 6 {
			for i := range offsets {
				offsets[i].LeaderEpoch = -1
			}
		}
		code, codes := co.CommitOffsets(ctx, r.Group, r.MemberID, derefStr(r.InstanceID), r.Generation, r.Version, offsets, names)
		if code == kerr.GroupIDNotFound.Code && r.Version < 9 {
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
