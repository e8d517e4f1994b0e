package protocol

// SaslHandshake v0-v1 (KIP-43; v1, KIP-152: SaslAuthenticate requests
// carry the tokens).
//
// The connection of a SASL listener answers it itself, because it changes
// who the connection is (internal/agent/sasl.go). What reaches this
// handler comes from a listener without SASL, where Kafka answers
// ILLEGAL_SASL_STATE; it is registered so that ApiVersions advertises it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(17, 0, 1, (*Handler).saslHandshake) }

func (h *Handler) saslHandshake(_ context.Context, req *wire.Request) (Reply, error) {
	resp := req.Req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	return now(resp), nil
}
