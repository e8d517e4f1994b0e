package protocol

// ListGroups v0-v5.
//
// Lists the groups this agent coordinates (clients ask every broker and
// merge). v4+ filters by state (KIP-518, case-insensitive) and returns
// each group's state (consumer-protocol groups have KIP-848's states:
// Empty, Assigning, Reconciling, Stable); v5+ filters by type and returns
// it: "classic" or "consumer" (KIP-848), or "share" (KIP-932: share
// groups, protocol type "share", state Empty or Stable; those stored as
// well as those in memory, sharecoord.Coordinator.ListGroups).

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(16, 0, 5, (*Handler).listGroups) }

func (h *Handler) listGroups(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListGroupsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
		co, code := h.groupsOrErr()
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		list, err := co.List(ctx)
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp
		}
		matches := func(filter []string, v string) bool {
			if len(filter) == 0 {
				return true
			}
			for _, f := range filter {
				if strings.EqualFold(f, v) {
					return true
				}
			}
			return false
		}
		// DESCRIBE on the cluster lists every group; otherwise only those
		// the principal may DESCRIBE.
		everything := h.visible(req, acl.Describe, acl.Cluster, acl.ClusterName)
		for _, s := range list {
			if !matches(r.StatesFilter, s.State) || !matches(r.TypesFilter, s.Type) {
				continue
			}
			if !everything && !h.visible(req, acl.Describe, acl.Group, s.Name) {
				continue
			}
			g := kmsg.NewListGroupsResponseGroup()
			g.Group, g.ProtocolType = s.Name, s.ProtocolType
			g.GroupState, g.GroupType = s.State, s.Type
			resp.Groups = append(resp.Groups, g)
		}
		if h.cfg.Shares == nil {
			return resp
		}
		for _, s := range h.cfg.Shares.ListGroups(ctx) {
			name, state := s[0], s[1]
			if !matches(r.StatesFilter, state) || !matches(r.TypesFilter, "share") {
				continue
			}
			if !everything && !h.visible(req, acl.Describe, acl.Group, name) {
				continue
			}
			g := kmsg.NewListGroupsResponseGroup()
			g.Group, g.ProtocolType, g.GroupState, g.GroupType = name, "share", state, "share"
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}
