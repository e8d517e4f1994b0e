package protocol

// JoinGroup v0-v9.
//
// The classic group protocol (internal/groups, run by
// internal/coordinator). v0 has no rebalance timeout (the session timeout
// is used); v4+ answers a dynamic member's first join MEMBER_ID_REQUIRED
// (KIP-394); v5+ carries group.instance.id (KIP-345); v7+ returns the
// protocol type; v8+ carries a reason (logged); v9+ may tell a restarted
// static leader to skip its assignor (KIP-814). The response waits for
// the rebalance, which only delays later responses on this connection,
// as in Kafka. A JoinGroup into a KIP-848 consumer group with members
// joins it as a classic member and is answered at once (KIP-848's online
// migration, internal/groups/consumer/classic.go).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(11, 0, 9, (*Handler).joinGroup) }

func (h *Handler) joinGroup(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.JoinGroupRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.Generation = -1
		resp.MemberID = r.MemberID
		fail := func(code int16) kmsg.Response {
			resp.ErrorCode = code
			if r.Version < 7 {
				resp.Protocol = strPtr("")
			}
			return resp
		}
		co, code := h.groupsOrErr()
		if code != 0 {
			return fail(code)
		}
		if !h.allowed(req, acl.Read, acl.Group, r.Group) {
			return fail(kerr.GroupAuthorizationFailed.Code)
		}
		if r.Group == "" {
			return fail(kerr.InvalidGroupID.Code)
		}
		if r.Reason != nil {
			h.log.Debug("join group", "group", r.Group, "member", r.MemberID, "reason", *r.Reason)
		}
		jr := groups.JoinRequest{
			Version: r.Version, MemberID: r.MemberID, InstanceID: derefStr(r.InstanceID),
			ClientID:         req.ClientID,
			ClientHost:       req.ClientHost,
			SessionTimeout:   time.Duration(r.SessionTimeoutMillis) * time.Millisecond,
			RebalanceTimeout: time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond,
			ProtocolType:     r.ProtocolType,
		}
		if r.Version == 0 {
			jr.RebalanceTimeout = 0
		}
		for _, p := range r.Protocols {
			jr.Protocols = append(jr.Protocols, groups.Protocol{Name: p.Name, Metadata: p.Metadata})
		}
		out := co.Join(ctx, r.Group, jr)(ctx)
		resp.ErrorCode = out.Err
		resp.MemberID = out.MemberID
		resp.Generation = out.Generation
		if out.Err != 0 {
			return fail(out.Err)
		}
		resp.ProtocolType = strPtr(out.ProtocolType)
		resp.Protocol = strPtr(out.Protocol)
		resp.LeaderID = out.Leader
		resp.SkipAssignment = out.SkipAssignment
		for _, m := range out.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = m.ID
			if m.InstanceID != "" {
				rm.InstanceID = strPtr(m.InstanceID)
			}
			rm.ProtocolMetadata = m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}, nil
}
