package protocol

// ShareGroupHeartbeat v1 (KIP-932: share groups; v0 was Kafka 4.0's
// early access and is gone).
//
// Members choose their own ids, join at MemberEpoch 0 with the topics
// they subscribe to, heartbeat at their epoch and leave at -1. The
// coordinator assigns partitions itself (the simple assignor: round robin
// per topic, a partition shared by several members when they outnumber
// its topic's partitions); there is nothing to revoke, so a member's
// assignment is the new one as soon as it hears of it. Errors:
// INVALID_REQUEST (empty group or member id, no subscription when
// joining), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH,
// GROUP_MAX_SIZE_REACHED (group.share.max.size), NOT_COORDINATOR,
// GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED. The heartbeat
// interval is group.share.heartbeat.interval.ms. See internal/sharegroup.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/sharegroup"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(76, 1, 1, (*Handler).shareGroupHeartbeat) }

func (h *Handler) shareGroupHeartbeat(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ShareGroupHeartbeatRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.MemberEpoch = r.MemberEpoch
		co, code := h.sharesOrErr()
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		if code, msg := h.checkHeartbeat(req, r.GroupID, r.SubscribedTopicNames); code != 0 {
			resp.ErrorCode, resp.ErrorMessage = code, msg
			return resp
		}
		img, err := h.topicImage(ctx)
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp
		}
		out := co.Heartbeat(r.GroupID, img, sharegroup.HeartbeatRequest{
			MemberID: r.MemberID, MemberEpoch: r.MemberEpoch, RackID: r.RackID,
			SubscribedTopicNames: r.SubscribedTopicNames, ClientID: req.ClientID, ClientHost: req.ClientHost,
		})
		resp.ErrorCode = out.Err
		if out.ErrMessage != "" {
			resp.ErrorMessage = strPtr(out.ErrMessage)
		}
		if out.Err != 0 {
			return resp
		}
		resp.MemberID = strPtr(out.MemberID)
		resp.MemberEpoch = out.MemberEpoch
		resp.HeartbeatIntervalMillis = int32(out.HeartbeatInterval.Milliseconds())
		if out.Assignment != nil {
			a := kmsg.NewShareGroupHeartbeatResponseAssignment()
			a.TopicPartitions = []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
			for _, id := range out.Assignment.TopicIDs() {
				tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
				tp.TopicID, tp.Partitions = id, out.Assignment[id]
				a.TopicPartitions = append(a.TopicPartitions, tp)
			}
			resp.Assignment = &a
		}
		return resp
	}, nil
}
