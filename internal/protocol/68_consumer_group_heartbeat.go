package protocol

// ConsumerGroupHeartbeat v0-v1 (KIP-848: the "consumer" group protocol,
// group.protocol=consumer).
//
// The coordinator assigns partitions itself (server-side assignors
// "uniform" and "range") and every member converges to its target
// assignment through heartbeats, each carrying its member epoch:
// MemberEpoch 0 joins (or rejoins, keeping the member's partitions), -1
// leaves, -2 leaves a static member's place open for its session timeout
// (KIP-345 semantics). A partition goes to its new owner only after the
// previous owner acknowledged its revocation. Errors: INVALID_REQUEST
// (KIP-848's field rules: group id, member id from v1, first-heartbeat
// fields), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, FENCED_INSTANCE_ID,
// UNRELEASED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR, GROUP_MAX_SIZE_REACHED,
// GROUP_ID_NOT_FOUND (a classic group with members that cannot be
// upgraded: group.consumer.migration.policy, protocol type, size, or a
// subscription that is not the ConsumerProtocol's), NOT_COORDINATOR. A
// joining member upgrades a classic group with members otherwise
// (KIP-848's online migration; docs/consumer-groups.md).
// UNSUPPORTED_VERSION while group.version is finalized below 1 (Kafka).
// v1: members generate their own ids (v0: the coordinator does) and may
// subscribe with a regular expression (RE2 syntax, matched against whole
// topic names; INVALID_REGULAR_EXPRESSION). The heartbeat interval
// returned is group.consumer.heartbeat.interval.ms; rack ids are kept
// and described but not used by the assignors. See internal/groups/consumer.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(68, 0, 1, (*Handler).consumerGroupHeartbeat) }

func (h *Handler) consumerGroupHeartbeat(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ConsumerGroupHeartbeatRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.MemberEpoch = r.MemberEpoch
		co, code := h.groupsOrErr()
		if code == 0 && !h.consumerProtocolEnabled() {
			code = kerr.UnsupportedVersion.Code // group.version 0
		}
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		if code, msg := h.checkHeartbeat(req, r.Group, r.SubscribedTopicNames); code != 0 {
			resp.ErrorCode, resp.ErrorMessage = code, msg
			return resp
		}
		hr := consumer.HeartbeatRequest{
			Version: r.Version, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch,
			InstanceID: r.InstanceID, RackID: r.RackID,
			RebalanceTimeout:     time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond,
			SubscribedTopicNames: r.SubscribedTopicNames, SubscribedTopicRegex: r.SubscribedTopicRegex,
			ServerAssignor: r.ServerAssignor, ClientID: req.ClientID, ClientHost: req.ClientHost,
		}
		if r.RebalanceTimeoutMillis < 0 {
			hr.RebalanceTimeout = -1
		}
		if r.Topics != nil {
			hr.Owned = consumer.Assignment{}
			for _, t := range r.Topics {
				hr.Owned[t.TopicID] = append(hr.Owned[t.TopicID], t.Partitions...)
			}
			for id, ps := range hr.Owned {
				slices.Sort(ps)
				hr.Owned[id] = slices.Compact(ps)
			}
		}
		out := co.ConsumerHeartbeat(ctx, r.Group, hr)
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
			a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
			a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
			for _, id := range out.Assignment.TopicIDs() {
				t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				t.TopicID, t.Partitions = id, out.Assignment[id]
				a.Topics = append(a.Topics, t)
			}
			resp.Assignment = &a
		}
		return resp
	}, nil
}

// checkHeartbeat is what ConsumerGroupHeartbeat and ShareGroupHeartbeat
// check before their coordinator is asked: READ on the group, a group id,
// and DESCRIBE on every subscribed topic, as in Kafka 4.
func (h *Handler) checkHeartbeat(req *wire.Request, group string, topics []string) (int16, *string) {
	if !h.allowed(req, acl.Read, acl.Group, group) {
		return kerr.GroupAuthorizationFailed.Code, nil
	}
	if group == "" {
		return kerr.InvalidRequest.Code, strPtr("GroupId can't be empty.")
	}
	for _, t := range topics {
		if !h.allowed(req, acl.Describe, acl.Topic, t) {
			return kerr.TopicAuthorizationFailed.Code, strPtr("not authorized to describe topic " + t)
		}
	}
	return 0, nil
}
