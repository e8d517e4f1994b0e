package protocol

// SaslHandshake v0-v1 (KIP-43, KIP-152) and SaslAuthenticate v0-v2
// (KIP-152, KIP-368: v1 adds the session lifetime).
//
// The connection of a SASL listener answers both itself, because they
// change who the connection is (internal/agent/sasl.go). What reaches
// these handlers comes from a listener without SASL, where Kafka answers
// ILLEGAL_SASL_STATE; they are registered so that ApiVersions advertises
// them.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() {
	register(17, 0, 1, (*Handler).saslHandshake)
	register(36, 0, 2, (*Handler).saslAuthenticate)
}

func (h *Handler) saslHandshake(_ context.Context, req *wire.Request) (Reply, error) {
	resp := req.Req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	return now(resp), nil
}

func (h *Handler) saslAuthenticate(_ context.Context, req *wire.Request) (Reply, error) {
	resp := req.Req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	msg := "SASL authentication is not enabled on this listener"
	resp.ErrorMessage = &msg
	return now(resp), nil
}
