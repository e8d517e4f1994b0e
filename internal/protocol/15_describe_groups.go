package protocol

// DescribeGroups v0-v6.
//
// State, protocol type, and members (client id, host, and — in the
// Stable state only, as in Kafka — the selected protocol, each member's
// metadata and assignment). A group that does not exist is state "Dead"
// with no error before v6, GROUP_ID_NOT_FOUND from v6 (KIP-1043). v3+
// reports authorized operations when asked (Floe has no ACLs: all group
// operations); v4+ members' group.instance.id.
//
// A KIP-848 consumer group is shown as classic tools expect a "consumer"
// group: protocol type "consumer", its KIP-848 state (Empty, Assigning,
// Reconciling, Stable), the server-side assignor as protocol, and each
// member's subscription and current assignment encoded as the classic
// consumer protocol's metadata and assignment (so kadm, kafka-consumer-groups
// and `floe groups` show members and their partitions).
// ConsumerGroupDescribe (69) has the full picture.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(15, 0, 6, (*Handler).describeGroups) }

// groupOperations are the ACL operations on a group (READ, DELETE,
// DESCRIBE), as a bit field of kmsg.ACLOperation values.
const groupOperations = 1<<3 | 1<<6 | 1<<8

func (h *Handler) describeGroups(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeGroupsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		co, code := h.groupsOrErr()
		for _, name := range r.Groups {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group = name
			g.AuthorizedOperations = -2147483648
			if r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = h.authorizedOperations(req, acl.Group, name, groupOperations)
			}
			if !h.allowed(req, acl.Describe, acl.Group, name) {
				g.ErrorCode = kerr.GroupAuthorizationFailed.Code
				g.AuthorizedOperations = -2147483648
				resp.Groups = append(resp.Groups, g)
				continue
			}
			if code != 0 {
				g.ErrorCode = code
				resp.Groups = append(resp.Groups, g)
				continue
			}
			d, dcode := co.Describe(ctx, name)
			switch {
			case dcode != 0:
				g.ErrorCode = dcode
			case !d.Exists:
				g.State = groups.Dead.String()
				if r.Version >= 6 {
					g.ErrorCode = kerr.GroupIDNotFound.Code
					g.ErrorMessage = strPtr("group " + name + " not found")
				}
			default:
				g.State = d.State
				g.ProtocolType = d.ProtocolType
				g.Protocol = d.Protocol
				if d.Consumer != nil {
					g.Members = h.describeConsumerMembers(ctx, d.Consumer)
				}
				for _, m := range d.Members {
					rm := kmsg.NewDescribeGroupsResponseGroupMember()
					rm.MemberID, rm.ClientID, rm.ClientHost = m.ID, m.ClientID, m.ClientHost
					if m.InstanceID != "" {
						rm.InstanceID = strPtr(m.InstanceID)
					}
					rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
					g.Members = append(g.Members, rm)
				}
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}

// describeConsumerMembers renders a consumer group's members in the
// classic consumer protocol's encoding.
func (h *Handler) describeConsumerMembers(ctx context.Context, d *consumer.Description) []kmsg.DescribeGroupsResponseGroupMember {
	lookup := h.lookup(ctx)
	var out []kmsg.DescribeGroupsResponseGroupMember
	for _, m := range d.Members {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID, rm.ClientID, rm.ClientHost = m.ID, m.ClientID, m.ClientHost
		if m.InstanceID != "" {
			rm.InstanceID = strPtr(m.InstanceID)
		}
		if len(m.ClassicProtocols) > 0 {
			// A classic member (KIP-848's migration): its own subscription.
			rm.ProtocolMetadata = m.ClassicProtocols[0].Metadata
		} else {
			meta := kmsg.NewConsumerMemberMetadata()
			meta.Topics = m.SubscribedTopics
			rm.ProtocolMetadata = meta.AppendTo(nil)
		}
		assignment := kmsg.NewConsumerMemberAssignment()
		for _, id := range m.Assignment.TopicIDs() {
			t, err := lookup.id(id)
			if err != nil {
				continue // deleted since
			}
			assignment.Topics = append(assignment.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t.Name, Partitions: m.Assignment[id]})
		}
		rm.MemberAssignment = assignment.AppendTo(nil)
		out = append(out, rm)
	}
	return out
}
