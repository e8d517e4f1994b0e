package protocol

// InitProducerId v0-v5 (v5 adds only the TRANSACTION_ABORTABLE error).
//
// Idempotent producers get a producer id and epoch from the metadata
// store, so sequence checks hold across agents. v3+ may pass the current
// id and epoch to bump the epoch after an error (KIP-360). Transactional
// ids go to the id's transaction coordinator (NOT_COORDINATOR on another
// agent), which fences earlier producers of the id; they need WRITE on
// the transactional id.
// A client asking faster than Limits.ProducerIDRate is not read from
// until it is within its quota again, and told its throttle time; it is
// never refused.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(22, 0, 5, (*Handler).initProducerID) }

func (h *Handler) initProducerID(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		return h.initTransactionalProducer(req, r), nil
	}
	// An idempotent producer needs IDEMPOTENT_WRITE on the cluster, or
	// WRITE on some topic (KIP-679, Kafka 2.8+).
	if !h.visible(req, acl.IdempotentWrite, acl.Cluster, acl.ClusterName) && !h.allowedAny(req, acl.Write, acl.Topic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	}
	client := quotaKey(req.Principal, req.ClientID)
	if ok, wait := h.producerIDs.admit(client); !ok {
		// Waiting here stops the connection's reader, as Kafka mutes a
		// throttled channel: nothing more is read from the client.
		sleepCtx(ctx, wait)
	}
	wait := h.producerIDs.record(client, 1)
	id, epoch, err := h.store.InitProducerID(ctx, r.ProducerID, r.ProducerEpoch)
	switch {
	case err == nil:
		resp.ProducerID, resp.ProducerEpoch = id, epoch
	case errors.Is(err, metastore.ErrInvalidProducerEpoch):
		resp.ErrorCode = kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrUnknownProducerID):
		resp.ErrorCode = kerr.UnknownProducerID.Code
	default:
		h.log.Warn("init producer id failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	}
	return throttled(resp, wait, false), nil
}

// initTransactionalProducer answers an InitProducerId with a
// transactional id.
func (h *Handler) initTransactionalProducer(req *wire.Request, r *kmsg.InitProducerIDRequest) Reply {
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		id := *r.TransactionalID
		txns, code := h.txnCoordinator(id)
		switch {
		case id == "":
			code = kerr.InvalidRequest.Code
		case code != 0:
		case !h.allowed(req, acl.Write, acl.TransactionalID, id):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		default:
			producerID, epoch := int64(-1), int16(-1)
			if r.Version >= 3 {
				producerID, epoch = r.ProducerID, r.ProducerEpoch
			}
			res := txns.InitProducerID(ctx, txn.InitProducerIDRequest{
				Version: r.Version, TransactionalID: id, TimeoutMs: r.TransactionTimeoutMillis,
				ProducerID: producerID, ProducerEpoch: epoch,
			})
			resp.ProducerID, resp.ProducerEpoch, code = res.ProducerID, res.ProducerEpoch, res.Err
		}
		resp.ErrorCode = code
		if code != 0 {
			resp.ProducerID, resp.ProducerEpoch = -1, -1
		}
		return resp
	}
}
