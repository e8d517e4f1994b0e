package compat

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestClientTelemetryLibrdkafka: librdkafka (≥ 2.5, bundled with
// confluent-kafka-go) asks for a telemetry subscription when it sees the
// APIs advertised and pushes its metrics, which the agent exposes on
// /metrics under the producer's client id.
func TestClientTelemetryLibrdkafka(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.ClientTelemetry = telemetry.Options{PushInterval: 500 * time.Millisecond}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createTopic(t, ctx, a.Addr(), "telemetry", 1)
	p, err := ckafka.NewProducer(&ckafka.ConfigMap{
		"bootstrap.servers": a.Addr(),
		"client.id":         "librdkafka-telemetry",
		"linger.ms":         5,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t.Logf("librdkafka %s", func() string { _, v := ckafka.LibraryVersion(); return v }())
	go func() {
		for range p.Events() {
		}
	}()
	topic := "telemetry"
	delivered := make(chan ckafka.Event, 1)
	if err := p.Produce(&ckafka.Message{TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny}, Value: []byte("hello")}, delivered); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-delivered:
		if m := e.(*ckafka.Message); m.TopicPartition.Error != nil {
			t.Fatalf("delivery: %v", m.TopicPartition.Error)
		}
	case <-ctx.Done():
		t.Fatal("no delivery report")
	}

	// Pushes come every half second, after a first one jittered.
	want := []string{
		`floe_client_metric_value{attributes="node.id=`,
		`client_id="librdkafka-telemetry",metric="org.apache.kafka.producer.node.request.latency.avg"}`,
	}
	for {
		lines := scrapeMetrics(t, a.AdminAddr(), "floe_client_metric_")
		for _, line := range lines {
			if strings.HasPrefix(line, want[0]) && strings.Contains(line, want[1]) {
				t.Logf("exposed:\n%s", strings.Join(lines, "\n"))
				accepted := scrapeMetrics(t, a.AdminAddr(), `floe_client_telemetry_pushes_total{result="accepted"}`)
				if len(accepted) != 1 {
					t.Errorf("pushes counted: %v", scrapeMetrics(t, a.AdminAddr(), "floe_client_telemetry_pushes_total"))
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("librdkafka's metrics never exposed; pushes: %v; exposed: %v",
				scrapeMetrics(t, a.AdminAddr(), "floe_client_telemetry_"), lines)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// scrapeMetrics returns the lines of an agent's /metrics that start
// with prefix.
func scrapeMetrics(t *testing.T, admin, prefix string) []string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
