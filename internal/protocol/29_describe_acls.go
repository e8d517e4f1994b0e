package protocol

// DescribeAcls v0-v3.
//
// Answers the bindings the filter selects (acl.Filter: ANY, MATCH, null
// names), grouped by resource pattern. Needs DESCRIBE on the cluster.
// Without an authorizer it answers SECURITY_DISABLED, as Kafka does.
//
// v1+: pattern types (KIP-290); v0 asks for literal patterns only.
// v2+: flexible. v3: the USER resource type (KIP-373).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(29, 0, 3, (*Handler).describeACLs) }

func (h *Handler) describeACLs(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	if r.Version == 0 {
		r.ResourcePatternType = acl.Literal
	}
	f := acl.Filter{
		ResourceType: r.ResourceType, Name: r.ResourceName, PatternType: r.ResourcePatternType,
		Principal: r.Principal, Host: r.Host, Operation: r.Operation, Permission: r.PermissionType,
	}
	switch {
	case h.cfg.Authorizer == nil:
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, strPtr("no authorizer is configured (--authorizer acl)")
		return now(resp), nil
	case !h.allowedOnCluster(req, acl.Describe):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	case !validFilter(f):
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strPtr("the filter has an unknown type, pattern, operation or permission")
		return now(resp), nil
	}
	acls, _, err := h.store.ACLs(ctx)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errMessage(err)
		return now(resp), nil
	}
	// Sorted by resource first, so each resource's bindings are adjacent.
	for _, a := range acls {
		if !f.Matches(a) {
			continue
		}
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != kmsg.ACLResourceType(a.ResourceType) ||
			resp.Resources[n-1].ResourceName != a.ResourceName ||
			resp.Resources[n-1].ResourcePatternType != kmsg.ACLResourcePatternType(a.PatternType) {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			res.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			resp.Resources = append(resp.Resources, res)
			n++
		}
		entry := kmsg.NewDescribeACLsResponseResourceACL()
		entry.Principal, entry.Host = a.Principal, a.Host
		entry.Operation, entry.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, entry)
	}
	return now(resp), nil
}

// validFilter rejects filters with UNKNOWN in a field, as Kafka does.
func validFilter(f acl.Filter) bool {
	return f.ResourceType != kmsg.ACLResourceTypeUnknown && f.PatternType != kmsg.ACLResourcePatternTypeUnknown &&
		f.Operation != kmsg.ACLOperationUnknown && f.Permission != kmsg.ACLPermissionTypeUnknown
}
