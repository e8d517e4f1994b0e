package protocol

// SaslAuthenticate v0-v2 (KIP-152; v1, KIP-368: the session lifetime; v2
// is flexible).
//
// Like SaslHandshake, answered by the connection on SASL listeners; this
// handler answers ILLEGAL_SASL_STATE on the others, as Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(36, 0, 2, (*Handler).saslAuthenticate) }

func (h *Handler) saslAuthenticate(_ context.Context, req *wire.Request) (Reply, error) {
	resp := req.Req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	msg := "SASL authentication is not enabled on this listener"
	resp.ErrorMessage = &msg
	return now(resp), nil
}
