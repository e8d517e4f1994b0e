package protocol

// DeleteGroups v0-v3.
//
// Deletes groups without members, with their committed offsets:
// NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND for an unknown
// group, NOT_COORDINATOR when another agent coordinates it. A share
// group (KIP-932) is deleted with its share partitions' states. v3 adds
// an error message.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(42, 0, 3, (*Handler).deleteGroups) }

func (h *Handler) deleteGroups(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DeleteGroupsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
		co, code := h.groupsOrErr()
		for _, name := range r.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group = name
			switch {
			case code != 0:
				g.ErrorCode = code
			case !h.allowed(req, acl.Delete, acl.Group, name):
				g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			case name == "":
				g.ErrorCode = kerr.InvalidGroupID.Code
			default:
				shareCode, isShare := int16(0), false
				if h.cfg.Shares != nil {
					shareCode, isShare = h.cfg.Shares.DeleteGroup(ctx, name)
				}
				if isShare {
					g.ErrorCode = shareCode
				} else {
					g.ErrorCode = co.DeleteGroup(ctx, name)
				}
			}
			if g.ErrorCode != 0 && r.Version >= 3 {
				if e := kerr.ErrorForCode(g.ErrorCode); e != nil {
					g.ErrorMessage = strPtr(e.Error())
				}
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}
