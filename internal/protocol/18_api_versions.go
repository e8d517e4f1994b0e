package protocol

// ApiVersions v0-v4.
//
// Versions come from the registry (see register). A request for a version
// above ours (or below 0) is answered at v0 with UNSUPPORTED_VERSION and,
// as Kafka does (KIP-511), only ApiVersions' own range, so the client can
// retry with a version we know and then learn the rest.
//
// From v3 the client names its software (KIP-511); Kafka answers
// INVALID_REQUEST when the name or version is not made of letters,
// digits, '.' and '-', starting and ending with a letter or digit, and so
// do we.

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(18, 0, 4, (*Handler).apiVersions) }

// softwareNamePattern is what Kafka accepts as ClientSoftwareName and
// ClientSoftwareVersion (KIP-511).
var softwareNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (h *Handler) apiVersions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ApiVersionsRequest)
	resp := req.Req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.Version >= 3 && (!softwareNamePattern.MatchString(r.ClientSoftwareName) || !softwareNamePattern.MatchString(r.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp), nil
	}
	resp.ApiKeys = Supported()
	return now(resp), nil
}

func unsupportedApiVersions() Reply {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a := apis[wire.ApiVersionsKey]
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max}}
	return now(resp)
}
