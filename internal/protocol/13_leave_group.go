package protocol

// LeaveGroup v0-v5.
//
// v0-v2 name one member; v3+ (KIP-345) name several, static ones possibly
// by group.instance.id alone, each with its own error code. v5 carries a
// reason per member (logged).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(13, 0, 5, (*Handler).leaveGroup) }

func (h *Handler) leaveGroup(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.LeaveGroupRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		co, code := h.groupsOrErr()
		if code == 0 && !h.allowed(req, acl.Read, acl.Group, r.Group) {
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code == 0 && r.Group == "" {
			code = kerr.InvalidGroupID.Code
		}
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		var leaving []groups.LeaveMember
		if r.Version < 3 {
			leaving = []groups.LeaveMember{{MemberID: r.MemberID}}
		}
		for _, m := range r.Members {
			leaving = append(leaving, groups.LeaveMember{MemberID: m.MemberID, InstanceID: derefStr(m.InstanceID)})
			if m.Reason != nil {
				h.log.Debug("leave group", "group", r.Group, "member", m.MemberID, "reason", *m.Reason)
			}
		}
		res, code := co.Leave(ctx, r.Group, leaving)
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		if r.Version < 3 {
			resp.ErrorCode = res[0].Err
			return resp
		}
		for _, lr := range res {
			m := kmsg.NewLeaveGroupResponseMember()
			m.MemberID = lr.MemberID
			if lr.InstanceID != "" {
				m.InstanceID = strPtr(lr.InstanceID)
			}
			m.ErrorCode = lr.Err
			resp.Members = append(resp.Members, m)
		}
		return resp
	}, nil
}
