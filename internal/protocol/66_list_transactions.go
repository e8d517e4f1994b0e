package protocol

// ListTransactions v0-v2 (KIP-664; v1 adds the duration filter, KIP-994;
// v2 a transactional id pattern, re2 syntax).
//
// Admin clients send ListTransactions to every broker and merge the
// answers, so each agent lists only the transactional ids it coordinates,
// read from the metadata store. Ids the client may not describe are left
// out. Unknown state filters are echoed in UnknownStateFilters, as Kafka
// does. An invalid pattern is INVALID_REGULAR_EXPRESSION.

import (
	"context"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/txncoord"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(66, 0, 2, (*Handler).listTransactions) }

func (h *Handler) listTransactions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListTransactionsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
		txns, code := h.txnsOrErr()
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		f := txncoord.ListFilter{States: r.StateFilters, ProducerIDs: r.ProducerIDFilters}
		if r.Version >= 1 && r.DurationFilterMillis >= 0 {
			// Kafka keeps transactions running longer than the filter;
			// MinDuration zero keeps all, so 0 ms asks for 1 ns.
			f.MinDuration = max(time.Duration(r.DurationFilterMillis)*time.Millisecond, 1)
		}
		if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
			var err error
			if f.Pattern, err = regexp.Compile(*r.TransactionalIDPattern); err != nil {
				resp.ErrorCode = kerr.InvalidRegularExpression.Code
				return resp
			}
		}
		list, unknown, err := txns.List(ctx, f)
		if err != nil {
			h.log.Warn("list transactions failed", "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.UnknownStateFilters = unknown
		for _, t := range list {
			if !h.visible(req, acl.Describe, acl.TransactionalID, t.TransactionalID) {
				continue
			}
			s := kmsg.NewListTransactionsResponseTransactionState()
			s.TransactionalID, s.ProducerID, s.TransactionState = t.TransactionalID, t.ProducerID, t.State
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
		return resp
	}, nil
}
