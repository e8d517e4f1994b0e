package protocol_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/telemetry/telemetrytest"
)

// scrape returns the lines of the agent's /metrics that start with
// prefix.
func (f *fixture) scrape(prefix string) []string {
	f.t.Helper()
	resp, err := http.Get("http://" + f.a.AdminAddr() + "/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func TestClientTelemetry(t *testing.T) {
	f := start(t)
	f.c.ClientID = "telemetry-app"
	sub := do[*kmsg.GetTelemetrySubscriptionsResponse](f, 0, kmsg.NewPtrGetTelemetrySubscriptionsRequest())
	expectCode(t, "subscribe", sub.ErrorCode, 0)
	if sub.ClientInstanceID == ([16]byte{}) || sub.PushIntervalMillis != 60_000 || sub.TelemetryMaxBytes != 1<<20 || !sub.DeltaTemporality ||
		!slices.Equal(sub.RequestedMetrics, telemetry.DefaultMetrics) || !slices.Equal(sub.AcceptedCompressionTypes, []int8{3, 1, 2}) {
		t.Fatalf("subscription %+v", sub)
	}
	// Asked again within the push interval.
	again := kmsg.NewPtrGetTelemetrySubscriptionsRequest()
	again.ClientInstanceID = sub.ClientInstanceID
	expectCode(t, "subscribe again", do[*kmsg.GetTelemetrySubscriptionsResponse](f, 0, again).ErrorCode, kerr.ThrottlingQuotaExceeded.Code)

	push := func(subscription int32, compression int8, metrics []byte) int16 {
		req := kmsg.NewPtrPushTelemetryRequest()
		req.ClientInstanceID, req.SubscriptionID, req.CompressionType, req.Metrics = sub.ClientInstanceID, subscription, compression, metrics
		return do[*kmsg.PushTelemetryResponse](f, 0, req).ErrorCode
	}
	metrics := telemetrytest.MetricsData(
		telemetrytest.Gauge("org.apache.kafka.producer.node.request.latency.avg", telemetrytest.Point(4.5, "node.id", int64(0))),
		telemetrytest.Sum("org.apache.kafka.producer.connection.creation.total", true, true, telemetrytest.Point(int64(2))),
	)
	expectCode(t, "push", push(sub.SubscriptionID, 0, metrics), 0)
	expectCode(t, "push again at once", push(sub.SubscriptionID, 0, metrics), kerr.ThrottlingQuotaExceeded.Code)
	want := []string{
		`floe_client_metric_total{attributes="",client_id="telemetry-app",metric="org.apache.kafka.producer.connection.creation.total"} 2`,
		`floe_client_metric_value{attributes="node.id=0",client_id="telemetry-app",metric="org.apache.kafka.producer.node.request.latency.avg"} 4.5`,
	}
	if got := f.scrape("floe_client_metric_"); !slices.Equal(got, want) {
		t.Errorf("exposed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := f.scrape(`floe_client_telemetry_pushes_total{result="accepted"}`); !slices.Equal(got, []string{`floe_client_telemetry_pushes_total{result="accepted"} 1`}) {
		t.Errorf("pushes counted: %v", got)
	}

	// The errors of a push, each from a new instance; an unknown
	// subscription tells the client to ask again, which it may at once.
	for _, tc := range []struct {
		name        string
		wrongSub    bool
		compression int8
		metrics     []byte
		want        int16
	}{
		{name: "unknown subscription", wrongSub: true, want: kerr.UnknownSubscriptionID.Code},
		{name: "zstd", compression: 4, metrics: []byte{1}, want: kerr.UnsupportedCompressionType.Code},
		{name: "not OTLP", metrics: []byte{0x0a, 0xff}, want: kerr.InvalidRecord.Code},
		{name: "too large", metrics: make([]byte, 1<<20+1), want: kerr.TelemetryTooLarge.Code},
	} {
		sub = do[*kmsg.GetTelemetrySubscriptionsResponse](f, 0, kmsg.NewPtrGetTelemetrySubscriptionsRequest())
		id := sub.SubscriptionID
		if tc.wrongSub {
			id++
		}
		expectCode(t, tc.name, push(id, tc.compression, tc.metrics), tc.want)
		if tc.wrongSub {
			again.ClientInstanceID = sub.ClientInstanceID
			expectCode(t, "subscribe after an unknown subscription", do[*kmsg.GetTelemetrySubscriptionsResponse](f, 0, again).ErrorCode, 0)
		}
	}
}
