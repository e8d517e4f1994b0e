package protocol

// EndTxn v0-v4.
//
// Commits or aborts the producer's ongoing transaction: the coordinator
// writes a COMMIT or ABORT marker into every partition of the transaction
// and publishes or drops its group offsets, in one atomic metadata store
// step (docs/transactions.md), and answers once that step is durable.
// Needs WRITE on the transactional id. v5 (transaction version 2, which
// bumps the epoch at every end and returns it) is not advertised.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(26, 0, 4, (*Handler).endTxn) }

func (h *Handler) endTxn(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.EndTxnRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		txns, code := h.txnCoordinator(r.TransactionalID)
		switch {
		case code != 0:
		case !h.allowed(req, acl.Write, acl.TransactionalID, r.TransactionalID):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		default:
			resp.ProducerID, resp.ProducerEpoch, code = txns.EndTxn(ctx, r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit)
		}
		resp.ErrorCode = code
		return resp
	}, nil
}
