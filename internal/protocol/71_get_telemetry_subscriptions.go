package protocol

// GetTelemetrySubscriptions v0 (KIP-714).
//
// Tells a client which of its metrics to push, how often and how: a
// client instance id (a new random one when the client has none), a
// subscription id, the accepted codecs (lz4, gzip, snappy: not zstd,
// whose decoder would allocate what a frame declares), the push interval
// (one minute by default), the largest push (1 MiB) and delta
// temporality for sums. The metrics asked for are a small set of the
// standard client metrics (telemetry.DefaultMetrics) rather than Kafka's
// default of none, which needs a client-metrics config resource Floe
// does not have; the agent's options can ask for every metric or none.
// A client asking again sooner than a push interval after its previous
// request is answered THROTTLING_QUOTA_EXCEEDED, as Kafka does, unless
// its last push was refused for its subscription or codec. Any client
// may ask: Kafka checks no ACL. The pushes are taken by PushTelemetry.
//
// Kafka advertises these APIs only when a metrics reporter plugin
// receives what clients push; every agent does (package telemetry).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(71, 0, 0, (*Handler).getTelemetrySubscriptions) }

func (h *Handler) getTelemetrySubscriptions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.GetTelemetrySubscriptionsRequest)
	resp := r.ResponseKind().(*kmsg.GetTelemetrySubscriptionsResponse)
	s, err := h.cfg.Telemetry.Subscribe(r.ClientInstanceID)
	if err != nil {
		resp.ErrorCode = kafkaCode(err)
		return now(resp), nil
	}
	resp.ClientInstanceID = s.InstanceID
	resp.SubscriptionID = s.ID
	resp.AcceptedCompressionTypes = s.Compression
	resp.PushIntervalMillis = int32(s.PushInterval.Milliseconds())
	resp.TelemetryMaxBytes = s.MaxBytes
	resp.DeltaTemporality = s.Delta
	resp.RequestedMetrics = s.Metrics
	return now(resp), nil
}
