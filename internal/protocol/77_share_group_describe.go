package protocol

// ShareGroupDescribe v1 (KIP-932): a share group's state (Empty or
// Stable), group and assignment epochs, assignor ("simple") and members
// with their subscriptions and assignments. GROUP_ID_NOT_FOUND for a
// group the coordinator has no share group by that name, NOT_COORDINATOR
// on another agent, INVALID_GROUP_ID for "", GROUP_AUTHORIZATION_FAILED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(77, 1, 1, (*Handler).shareGroupDescribe) }

func (h *Handler) shareGroupDescribe(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ShareGroupDescribeRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
		co, code := h.sharesOrErr()
		lookup := h.lookup(ctx)
		img, err := h.topicImage(ctx)
		if code == 0 && err != nil {
			code = errorCode(err)
		}
		for _, name := range r.GroupIDs {
			g := kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID = name
			g.AuthorizedOperations = -2147483648
			if r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = h.authorizedOperations(req, acl.Group, name, groupOperations)
			}
			switch {
			case !h.allowed(req, acl.Describe, acl.Group, name):
				g.ErrorCode, g.AuthorizedOperations = kerr.GroupAuthorizationFailed.Code, -2147483648
			case code != 0:
				g.ErrorCode = code
			case name == "":
				g.ErrorCode = kerr.InvalidGroupID.Code
			}
			if g.ErrorCode != 0 {
				resp.Groups = append(resp.Groups, g)
				continue
			}
			d, ec := co.Describe(name, img)
			if ec != 0 {
				g.ErrorCode = ec
				if ec == kerr.GroupIDNotFound.Code {
					g.ErrorMessage = strPtr("group " + name + " is not a share group")
				}
				resp.Groups = append(resp.Groups, g)
				continue
			}
			g.GroupState, g.GroupEpoch, g.AssignmentEpoch, g.Assignor = d.State, d.GroupEpoch, d.AssignmentEpoch, "simple"
			for _, m := range d.Members {
				rm := kmsg.NewShareGroupDescribeResponseGroupMember()
				rm.MemberID, rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.MemberID, m.MemberEpoch, m.ClientID, m.ClientHost
				if m.RackID != "" {
					rm.RackID = strPtr(m.RackID)
				}
				rm.SubscribedTopicNames = m.SubscribedTopicNames
				for _, id := range m.Assignment.TopicIDs() {
					tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
					tp.TopicID, tp.Partitions = id, m.Assignment[id]
					if t, err := lookup.id(id); err == nil {
						tp.Topic = t.Name
					}
					rm.Assignment.TopicPartitions = append(rm.Assignment.TopicPartitions, tp)
				}
				g.Members = append(g.Members, rm)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}
