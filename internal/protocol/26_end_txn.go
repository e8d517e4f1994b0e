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
	"github.com/floe-io/floe/internal/txn"
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
			res := txns.EndTxn(ctx, txn.EndTxnRequest{
				Version: r.Version, TransactionalID: r.TransactionalID,
				ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch, Commit: r.Commit,
			})
			code = res.Err
			if r.Version >= 5 {
				resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
			}
		}
		resp.ErrorCode = code
		return resp
	}, nil
}
