package protocol

// DeleteAcls v0-v3.
//
// Deletes every binding each filter selects (acl.Filter: ANY, MATCH,
// null names) and answers, per filter, the bindings it deleted. Needs
// ALTER on the cluster. Without an authorizer it answers
// SECURITY_DISABLED, as Kafka does. The agent that made the change
// reloads its ACLs before answering; the others within their poll
// interval.
//
// v1+: pattern types (KIP-290); v0 filters literal patterns. v2+:
// flexible. v3: the USER resource type (KIP-373).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(31, 0, 3, (*Handler).deleteACLs) }

func (h *Handler) deleteACLs(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(r.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	fail := func(code int16, msg *string) (Reply, error) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
		}
		return now(resp), nil
	}
	switch {
	case h.cfg.Authorizer == nil:
		return fail(kerr.SecurityDisabled.Code, strPtr("no authorizer is configured (--authorizer acl)"))
	case !h.allowedOnCluster(req, acl.Alter):
		return fail(kerr.ClusterAuthorizationFailed.Code, nil)
	}
	acls, _, err := h.store.ACLs(ctx)
	if err != nil {
		return fail(errorCode(err), errMessage(err))
	}
	// Each filter's matches, and every binding to delete once.
	matches := make([][]metastore.ACL, len(r.Filters))
	var doomed []metastore.ACL
	for i, rf := range r.Filters {
		if r.Version == 0 {
			rf.ResourcePatternType = acl.Literal
		}
		f := acl.Filter{
			ResourceType: rf.ResourceType, Name: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType,
		}
		if !validFilter(f) {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			resp.Results[i].ErrorMessage = strPtr("the filter has an unknown type, pattern, operation or permission")
			continue
		}
		for _, a := range acls {
			if f.Matches(a) {
				matches[i] = append(matches[i], a)
				doomed = append(doomed, a)
			}
		}
	}
	if len(doomed) == 0 {
		return now(resp), nil
	}
	deleted, err := h.store.DeleteACLs(ctx, metastore.SortACLs(doomed))
	if err != nil {
		return fail(errorCode(err), errMessage(err))
	}
	gone := make(map[metastore.ACL]bool, len(deleted))
	for _, a := range deleted {
		gone[a] = true
	}
	for i, ms := range matches {
		for _, a := range ms {
			if !gone[a] {
				continue // deleted meanwhile through another request
			}
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			m.Principal, m.Host = a.Principal, a.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	h.reloadACLs(ctx)
	h.log.Info("acls deleted", "principal", req.Principal, "count", len(deleted))
	return now(resp), nil
}
