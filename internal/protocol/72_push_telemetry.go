package protocol

// PushTelemetry v0 (KIP-714).
//
// Takes the metrics a client pushes and exposes them on the agent's
// /metrics per client id (floe_client_metric_value and
// floe_client_metric_total, package telemetry). The push is checked in
// Kafka's order, with Kafka's errors: INVALID_REQUEST for a zero or
// reserved instance id or an instance that said it was terminating,
// THROTTLING_QUOTA_EXCEEDED for a push sooner than the interval after
// the previous one (the first after a subscription, and a terminating
// one, excepted), UNKNOWN_SUBSCRIPTION_ID, UNSUPPORTED_COMPRESSION_TYPE
// (zstd included: see GetTelemetrySubscriptions), TELEMETRY_TOO_LARGE,
// and INVALID_RECORD for metrics that do not decompress within four
// times the size limit or are not OTLP, as Kafka answers when its
// exporter fails. An instance this agent has not seen is taken as it
// comes: subscription ids are the same on every agent.
//
// What is not exposed, and counted in
// floe_client_telemetry_dropped_points_total instead: histograms,
// exponential histograms and summaries; metrics not asked for; points
// past the bounds on client ids (100) and series per client id (200);
// points past 10,000 in one push. Resource attributes (client rack,
// group id, …) are not labels; a data point's attributes are one label.
// A series no push updated for three intervals is dropped.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(72, 0, 0, (*Handler).pushTelemetry) }

func (h *Handler) pushTelemetry(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.PushTelemetryRequest)
	resp := r.ResponseKind().(*kmsg.PushTelemetryResponse)
	resp.ErrorCode = kafkaCode(h.cfg.Telemetry.Push(telemetry.Push{
		InstanceID:     r.ClientInstanceID,
		SubscriptionID: r.SubscriptionID,
		Terminating:    r.Terminating,
		Compression:    r.CompressionType,
		Metrics:        r.Metrics,
		ClientID:       req.ClientID,
	}))
	return now(resp), nil
}
