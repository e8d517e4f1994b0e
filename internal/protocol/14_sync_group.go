package protocol

// SyncGroup v0-v5.
//
// The leader sends every member's assignment; followers wait for it.
// Assignments are opaque bytes, returned untouched. v3+ carries
// group.instance.id (KIP-345); v5+ the protocol type and name, checked
// against the group's (INCONSISTENT_GROUP_PROTOCOL) and returned.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(14, 0, 5, (*Handler).syncGroup) }

func (h *Handler) syncGroup(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.SyncGroupRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
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
		sr := groups.SyncRequest{
			MemberID: r.MemberID, InstanceID: derefStr(r.InstanceID), Generation: r.Generation,
			ProtocolType: derefStr(r.ProtocolType), Protocol: derefStr(r.Protocol),
		}
		if len(r.GroupAssignment) > 0 {
			sr.Assignments = make(map[string][]byte, len(r.GroupAssignment))
			for _, a := range r.GroupAssignment {
				sr.Assignments[a.MemberID] = a.MemberAssignment
			}
		}
		out := co.Sync(ctx, r.Group, sr)(ctx)
		resp.ErrorCode = out.Err
		if out.Err == 0 {
			resp.ProtocolType = strPtr(out.ProtocolType)
			resp.Protocol = strPtr(out.Protocol)
			resp.MemberAssignment = out.Assignment
		}
		return resp
	}, nil
}
