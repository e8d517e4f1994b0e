package protocol

// CreateAcls v0-v3.
//
// Adds bindings to the metadata store, each checked as Kafka checks them
// (acl.Validate: INVALID_REQUEST). Needs ALTER on the cluster. Without an
// authorizer it answers SECURITY_DISABLED, as Kafka does. The agent that
// made the change reloads its ACLs before answering; the others within
// their poll interval.
//
// v1+: pattern types (KIP-290); v0 creates literal patterns. v2+:
// flexible. v3: the USER resource type (KIP-373).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(30, 0, 3, (*Handler).createACLs) }

func (h *Handler) createACLs(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(r.Creations))
	fail := func(code int16, msg *string) (Reply, error) {
		for i := range resp.Results {
			resp.Results[i] = kmsg.NewCreateACLsResponseResult()
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
	var (
		valid []metastore.ACL
		at    []int // index in resp.Results of each valid binding
	)
	for i, c := range r.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		if r.Version == 0 {
			c.ResourcePatternType = acl.Literal
		}
		a := metastore.ACL{
			ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName, PatternType: int8(c.ResourcePatternType),
			Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType),
		}
		if err := acl.Validate(a); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errMessage(err)
			continue
		}
		valid, at = append(valid, a), append(at, i)
	}
	if len(valid) == 0 {
		return now(resp), nil
	}
	if err := h.store.CreateACLs(ctx, valid); err != nil {
		for _, i := range at {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = errorCode(err), errMessage(err)
		}
		return now(resp), nil
	}
	h.reloadACLs(ctx)
	h.log.Info("acls created", "principal", req.Principal, "count", len(valid))
	return now(resp), nil
}

// reloadACLs makes this agent's own change apply to its next request;
// the other agents see it at their next poll.
func (h *Handler) reloadACLs(ctx context.Context) {
	if err := h.cfg.Authorizer.Reload(ctx); err != nil {
		h.log.Warn("reloading acls after a change failed; the next poll retries", "err", err)
	}
}
