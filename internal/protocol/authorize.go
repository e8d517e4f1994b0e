package protocol

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

// Authorization. Each handler asks, one line per resource, whether the
// request's principal may do Kafka's operation for that API on it (the
// table in docs/security.md) and answers Kafka's authorization error for
// that resource if not. Without an authorizer (--authorizer acl) every
// request is allowed.

// allowed reports whether req's principal may do op on the resource; a
// denial is counted and logged.
func (h *Handler) allowed(req *wire.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return h.cfg.Authorizer == nil || h.cfg.Authorizer.Authorize(req.Principal, req.ClientHost, op, rt, name)
}

// visible is allowed for lists that leave out what the principal may not
// see (all topics' metadata, ListGroups): nothing is counted or logged.
func (h *Handler) visible(req *wire.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return h.cfg.Authorizer == nil || h.cfg.Authorizer.Filtered(req.Principal, req.ClientHost, op, rt, name)
}

// allowedOnCluster reports whether req's principal may do op on the
// cluster.
func (h *Handler) allowedOnCluster(req *wire.Request, op kmsg.ACLOperation) bool {
	return h.allowed(req, op, acl.Cluster, acl.ClusterName)
}

// mayCreateTopic reports whether req's principal may create the topic:
// CREATE on the cluster or on the topic, as Kafka 2.0+ allows.
func (h *Handler) mayCreateTopic(req *wire.Request, topic string) bool {
	return h.visible(req, acl.Create, acl.Cluster, acl.ClusterName) || h.allowed(req, acl.Create, acl.Topic, topic)
}

// authorizedOperations narrows ops, a bit field of kmsg.ACLOperation
// values, to those the principal may do on the resource (KIP-430).
func (h *Handler) authorizedOperations(req *wire.Request, rt kmsg.ACLResourceType, name string, ops int32) int32 {
	if h.cfg.Authorizer == nil {
		return ops
	}
	var out int32
	for op := kmsg.ACLOperation(0); op < 32; op++ {
		if ops&(1<<op) != 0 && h.visible(req, op, rt, name) {
			out |= 1 << op
		}
	}
	return out
}

// allowedAny reports whether req's principal may do op on at least one
// resource of type rt (Kafka's authorizeByResourceType); a denial is
// counted and logged.
func (h *Handler) allowedAny(req *wire.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	return h.cfg.Authorizer == nil || h.cfg.Authorizer.AuthorizeAny(req.Principal, req.ClientHost, op, rt)
}
