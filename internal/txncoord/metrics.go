package txncoord

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Metrics are the transaction coordinator's Prometheus metrics.
type Metrics struct {
	requests   *prometheus.CounterVec
	ends       *prometheus.CounterVec
	endSeconds prometheus.Histogram
	conflicts  prometheus.Counter
	ongoing    prometheus.Gauge
	objects    prometheus.Counter
	perObject  prometheus.Histogram
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_txn_requests_total", Help: "Transaction coordinator requests by API and Kafka error (\"\" for none).",
		}, []string{"api", "error"}),
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_txn_ended_total", Help: "Transactions ended, by reason: commit, abort, timeout (aborted by the coordinator), fence (aborted by a new producer instance).",
		}, []string{"reason"}),
		endSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_txn_end_seconds", Help: "Time to end a transaction: markers upload and metadata commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_txn_conflicts_total", Help: "Transaction records found changed by another coordinator when writing; the request is decided again.",
		}),
		ongoing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_txn_ongoing", Help: "Ongoing transactions coordinated by this agent, at the last timeout scan.",
		}),
		objects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_txn_marker_objects_total", Help: "Objects of COMMIT/ABORT markers uploaded (one PUT each); ends that come together share one.",
		}),
		perObject: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_txn_ends_per_marker_object", Help: "Transaction ends whose markers shared one uploaded object.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.ends, m.endSeconds, m.conflicts, m.ongoing, m.objects, m.perObject)
	}
	return m
}

func (m *Metrics) request(api string, code int16) {
	name := ""
	if code != 0 {
		name = kerr.ErrorForCode(code).(*kerr.Error).Message
	}
	m.requests.WithLabelValues(api, name).Inc()
}

func (m *Metrics) ended(reason string, took time.Duration) {
	m.ends.WithLabelValues(reason).Inc()
	m.endSeconds.Observe(took.Seconds())
}

func (m *Metrics) markerObject(ends int) {
	m.objects.Inc()
	m.perObject.Observe(float64(ends))
}

// slogLevel is the level of the log line of an ended transaction: the
// coordinator's own aborts are worth seeing, the producers' ends are not.
func slogLevel(reason string) slog.Level {
	if reason == "timeout" || reason == "fence" {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
