package protocol

// AddOffsetsToTxn v0-v4.
//
// Adds a consumer group to the producer's ongoing transaction, before
// TxnOffsetCommit sends the group's offsets to the group coordinator.
// Needs WRITE on the transactional id and READ on the group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(25, 0, 4, (*Handler).addOffsetsToTxn) }

func (h *Handler) addOffsetsToTxn(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AddOffsetsToTxnRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		txns, code := h.txnCoordinator(r.TransactionalID)
		switch {
		case code != 0:
		case !h.allowed(req, acl.Write, acl.TransactionalID, r.TransactionalID):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case !h.allowed(req, acl.Read, acl.Group, r.Group):
			code = kerr.GroupAuthorizationFailed.Code
		case r.Group == "":
			code = kerr.InvalidGroupID.Code
		default:
			code = txns.AddOffsets(ctx, txn.AddOffsetsRequest{
				Version: r.Version, TransactionalID: r.TransactionalID,
				ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch, Group: r.Group,
			})
		}
		resp.ErrorCode = code
		return resp
	}, nil
}
