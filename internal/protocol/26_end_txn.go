package protocol

// EndTxn v0-v5.
//
// Commits or aborts the producer's ongoing transaction: the coordinator
// writes a COMMIT or ABORT marker into every partition of the transaction
// and publishes or drops its group offsets, in one atomic metadata store
// step (docs/transactions.md), and answers once that step is durable.
// Needs WRITE on the transactional id. v5 is transaction version 2
// (KIP-890 part 2): every end, commit or abort, bumps the producer epoch
// (or moves to a new producer id once the epoch is exhausted), the
// markers carry the new epoch, and the response hands out the producer to
// continue with; a retry of an end whose answer was lost is recognised
// (the last producer, one epoch below) and answered the same; an abort
// with no transaction open is an end of its own.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(26, 0, 5, (*Handler).endTxn) }

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
