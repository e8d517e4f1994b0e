package agent

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/wire"
)

type metrics struct {
	requests *prometheus.HistogramVec
	// versions counts requests answered by API and version, so that an
	// operator sees which request versions clients use (transaction
	// version 2 shows as EndTxn 5 and Produce 12). Only advertised
	// versions are answered, which bounds the labels.
	versions    *prometheus.CounterVec
	connections prometheus.Gauge
	rejected    prometheus.Counter
	tlsFailures prometheus.Counter
	// auths counts SASL authentications by mechanism and result (ok,
	// failed).
	auths *prometheus.CounterVec
	// requestBytes and responseBytes count the Kafka frames' bytes by
	// API: Produce's request bytes are what clients write, Fetch's
	// response bytes what they read.
	requestBytes, responseBytes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "floe_request_duration_seconds",
			Help:    "Time from reading a Kafka request to having its response ready, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16),
		}, []string{"api"}),
		versions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_api_requests_total",
			Help: "Kafka requests answered, by API and request version.",
		}, []string{"api", "version"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_connections", Help: "Open Kafka client connections.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_connections_rejected_total", Help: "Connections closed because of a malformed, oversize or unsupported request.",
		}),
		tlsFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_tls_handshake_failures_total", Help: "Kafka client connections closed because their TLS handshake failed (no TLS, an unknown client certificate, a timeout).",
		}),
		auths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_sasl_authentications_total", Help: "SASL authentications on the Kafka listeners, by mechanism and result (ok, failed).",
		}, []string{"mechanism", "result"}),
		requestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_request_bytes_total", Help: "Bytes of Kafka requests read, by API.",
		}, []string{"api"}),
		responseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_response_bytes_total", Help: "Bytes of Kafka responses written, by API.",
		}, []string{"api"}),
	}
	reg.MustRegister(m.requests, m.versions, m.connections, m.rejected, m.tlsFailures, m.auths, m.requestBytes, m.responseBytes)
	// The data APIs' series exist from the start, so that dashboards and
	// alerts see zeros rather than nothing on an idle agent.
	for _, api := range []string{"Produce", "Fetch"} {
		m.requests.WithLabelValues(api)
		m.requestBytes.WithLabelValues(api)
		m.responseBytes.WithLabelValues(api)
	}
	return m
}

// frameBytes counts one request and its response.
func (m *metrics) frameBytes(key int16, request, response int) {
	name := keyName(key)
	m.requestBytes.WithLabelValues(name).Add(float64(request))
	m.responseBytes.WithLabelValues(name).Add(float64(response))
}

func (m *metrics) observe(hdr wire.Header, d time.Duration) {
	m.requests.WithLabelValues(keyName(hdr.Key)).Observe(d.Seconds())
	m.versions.WithLabelValues(keyName(hdr.Key), strconv.Itoa(int(hdr.Version))).Inc()
}
