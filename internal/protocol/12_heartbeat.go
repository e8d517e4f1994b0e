package protocol

// Heartbeat v0-v4.
//
// Keeps a member's session alive. REBALANCE_IN_PROGRESS tells it to
// rejoin, ILLEGAL_GENERATION that its generation is over,
// UNKNOWN_MEMBER_ID that it was removed, FENCED_INSTANCE_ID (v3+,
// KIP-345) that another process took its group.instance.id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(12, 0, 4, (*Handler).heartbeat) }

func (h *Handler) heartbeat(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.HeartbeatRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		co, code := h.groupsOrErr()
		switch {
		case code != 0:
			resp.ErrorCode = code
		case !h.allowed(req, acl.Read, acl.Group, r.Group):
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case r.Group == "":
			resp.ErrorCode = kerr.InvalidGroupID.Code
		default:
			resp.ErrorCode = co.Heartbeat(ctx, r.Group, r.MemberID, derefStr(r.InstanceID), r.Generation)
		}
		return resp
	}, nil
}
