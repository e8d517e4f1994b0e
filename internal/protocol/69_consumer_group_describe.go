package protocol

// ConsumerGroupDescribe v0-v1 (KIP-848).
//
// Describes consumer-protocol groups: state (Empty, Assigning,
// Reconciling, Stable), group epoch, assignment epoch, the server-side
// assignor, and per member its epoch, client, rack, subscription (topic
// names and regular expression), current assignment and target
// assignment (partitions by topic id and name). A classic group, or one
// that does not exist, is GROUP_ID_NOT_FOUND; an empty group id is
// INVALID_GROUP_ID. Authorized operations, when asked for, are every
// group operation (Floe has no ACLs). v1 adds each member's type (1:
// consumer protocol; Floe has no classic members in consumer groups).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(69, 0, 1, (*Handler).consumerGroupDescribe) }

func (h *Handler) consumerGroupDescribe(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ConsumerGroupDescribeRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
		co, code := h.groupsOrErr()
		if code == 0 && !h.consumerProtocolEnabled() {
			code = kerr.UnsupportedVersion.Code // group.version 0, as Kafka
		}
		lookup := h.lookup(ctx)
		assignment := func(a consumer.Assignment) kmsg.Assignment {
			var out kmsg.Assignment
			for _, id := range a.TopicIDs() {
				tp := kmsg.NewAssignmentTopicPartition()
				tp.TopicID, tp.Partitions = id, a[id]
				if t, err := lookup.id(id); err == nil {
					tp.Topic = t.Name
				}
				out.TopicPartitions = append(out.TopicPartitions, tp)
			}
			return out
		}
		for _, name := range r.Groups {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group = name
			if r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = h.authorizedOperations(req, acl.Group, name, groupOperations)
			}
			var d consumer.Description
			switch {
			case !h.allowed(req, acl.Describe, acl.Group, name):
				g.ErrorCode, g.AuthorizedOperations = kerr.GroupAuthorizationFailed.Code, -2147483648
			case code != 0:
				g.ErrorCode = code
			case name == "":
				g.ErrorCode = kerr.InvalidGroupID.Code
			default:
				d, g.ErrorCode = co.DescribeConsumer(ctx, name)
			}
			if g.ErrorCode != 0 {
				if g.ErrorCode == kerr.GroupIDNotFound.Code {
					g.ErrorMessage = strPtr("group " + name + " is not a consumer group")
				}
				resp.Groups = append(resp.Groups, g)
				continue
			}
			g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = d.State.String(), d.Epoch, d.AssignmentEpoch, d.Assignor
			for _, m := range d.Members {
				rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				rm.MemberID, rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.ID, m.Epoch, m.ClientID, m.ClientHost
				if m.InstanceID != "" {
					rm.InstanceID = strPtr(m.InstanceID)
				}
				if m.RackID != "" {
					rm.RackID = strPtr(m.RackID)
				}
				rm.SubscribedTopics = m.SubscribedTopicNames
				if rm.SubscribedTopics == nil {
					rm.SubscribedTopics = []string{}
				}
				if m.SubscribedTopicRegex != "" {
					rm.SubscribedTopicRegex = strPtr(m.SubscribedTopicRegex)
				}
				rm.Assignment, rm.TargetAssignment = assignment(m.Assignment), assignment(m.Target)
				rm.MemberType = 1 // the consumer protocol
				if m.Classic {
					rm.MemberType = 0 // a classic member (KIP-848's migration)
				}
				g.Members = append(g.Members, rm)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}
