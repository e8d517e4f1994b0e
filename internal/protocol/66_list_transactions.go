package protocol

// ListTransactions v0-v2 (KIP-664; v1 adds the duration filter, KIP-994;
// v2 a transactional id pattern, re2 syntax).
//
// Admin clients send ListTransactions to every broker and merge the
// answers, so each agent lists only the transactional ids it coordinates
// (the owner of "txn:ID"), read from the metadata store. Ids the client
// may not describe are left out. Unknown state filters are echoed in
// UnknownStateFilters, as Kafka does. An invalid pattern is
// INVALID_REGULAR_EXPRESSION.

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(66, 0, 2, (*Handler).listTransactions) }

// txnStates are the states Kafka's ListTransactions filters know.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func (h *Handler) listTransactions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListTransactionsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
		var pattern *regexp.Regexp
		if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
			var err error
			if pattern, err = regexp.Compile(*r.TransactionalIDPattern); err != nil {
				resp.ErrorCode = kerr.InvalidRegularExpression.Code
				return resp
			}
		}
		for _, f := range r.StateFilters {
			if !slices.Contains(txnStates, f) {
				resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
			}
		}
		txns, err := h.store.ListTxns(ctx)
		if err != nil {
			h.log.Warn("list transactions failed", "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		now := time.Now()
		self := h.cfg.Cluster.Self()
		for _, t := range txns {
			switch {
			case !sameBroker(h.cfg.Cluster.Owner(txnKey(t.TransactionalID)), self):
			case len(r.StateFilters) > 0 && !slices.Contains(r.StateFilters, string(t.State)):
			case len(r.ProducerIDFilters) > 0 && !slices.Contains(r.ProducerIDFilters, t.ProducerID):
			case r.Version >= 1 && r.DurationFilterMillis >= 0 &&
				(t.State != metastore.TxnOngoing || now.Sub(t.StartedAt).Milliseconds() <= r.DurationFilterMillis):
			case pattern != nil && !pattern.MatchString(t.TransactionalID):
			case !h.visible(req, acl.Describe, acl.TransactionalID, t.TransactionalID):
			default:
				s := kmsg.NewListTransactionsResponseTransactionState()
				s.TransactionalID, s.ProducerID, s.TransactionState = t.TransactionalID, t.ProducerID, string(t.State)
				resp.TransactionStates = append(resp.TransactionStates, s)
			}
		}
		return resp
	}, nil
}
