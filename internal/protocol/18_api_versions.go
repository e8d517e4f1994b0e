package protocol

// ApiVersions v0-v4.
//
// Versions come from the registry (see register). A request for a version
// above ours is answered at v0 with UNSUPPORTED_VERSION and our ranges, so
// the client can retry with a version we know (KIP-511).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(18, 0, 4, (*Handler).apiVersions) }

func (h *Handler) apiVersions(_ context.Context, req *wire.Request) (Reply, error) {
	resp := req.Req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = Supported()
	return now(resp), nil
}

func unsupportedApiVersions() Reply {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = Supported()
	return now(resp)
}
