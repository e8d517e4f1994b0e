package protocol

// FindCoordinator v0-v4.
//
// A consumer group's coordinator is the live agent owning the key
// "group:NAME" (rendezvous hashing over the live agents), so every agent
// gives the same answer and a group moves only when its agent leaves or
// dies. v4 batches keys (KIP-699). A transactional id's coordinator (key
// type 1) is the owner of "txn:ID" by the same rule. Other key types:
// INVALID_REQUEST.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/txncoord"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(10, 0, 4, (*Handler).findCoordinator) }

func (h *Handler) findCoordinator(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID = -1
		switch {
		case r.CoordinatorType == 1 && !h.allowed(req, acl.Describe, acl.TransactionalID, key):
			c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case r.CoordinatorType == 1 && key == "":
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = strPtr("empty transactional id")
		case r.CoordinatorType == 1:
			b := h.cfg.Cluster.Owner(txncoord.Key(key))
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		case r.CoordinatorType != 0:
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = strPtr("unknown coordinator type")
		case !h.allowed(req, acl.Describe, acl.Group, key):
			c.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case key == "":
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = strPtr("empty group id")
		default:
			b := h.cfg.Cluster.Owner(groupKey(key))
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if r.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return now(resp), nil
}
