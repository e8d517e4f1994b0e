package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the receiver's own metrics; the receiver's collector
// exposes the clients' series.
type metrics struct {
	subscriptions *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	pushBytes     prometheus.Counter
	dropped       *prometheus.CounterVec
}

var (
	gaugeDesc = prometheus.NewDesc("floe_client_metric_value",
		"The latest value of a metric a client pushes (KIP-714): a gauge, or a sum that can go down. By client id, metric name (as the client names it) and the data point's attributes (key=value, sorted, comma-separated).",
		[]string{"client_id", "metric", "attributes"}, nil)
	counterDesc = prometheus.NewDesc("floe_client_metric_total",
		"The total of a monotonic sum a client pushes (KIP-714), added up from the deltas it sends to this agent: summed over the agents, the client's total. By client id, metric name and the data point's attributes.",
		[]string{"client_id", "metric", "attributes"}, nil)
	instancesDesc = prometheus.NewDesc("floe_client_telemetry_instances",
		"Client instances this agent remembers (those that asked for a subscription or pushed lately).", nil, nil)
)

func newMetrics(r *Receiver, reg prometheus.Registerer) *metrics {
	m := &metrics{
		subscriptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_client_telemetry_subscriptions_total",
			Help: "GetTelemetrySubscriptions answered, by result (accepted, throttled).",
		}, []string{"result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_client_telemetry_pushes_total",
			Help: "PushTelemetry requests, by result (accepted, throttled, unknown_subscription, unsupported_compression, too_large, invalid_metrics, invalid_request).",
		}, []string{"result"}),
		pushBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_client_telemetry_push_bytes_total",
			Help: "Bytes of accepted pushes, as sent (compressed).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_client_telemetry_dropped_points_total",
			Help: "Pushed data points not exposed, by reason: clients (too many client ids), series (too many series for the client id), type (histograms and summaries), unrequested (a metric not asked for), value (not a number, or a negative delta of a monotonic sum), push_limit (past the points one push may update).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.subscriptions, m.pushes, m.pushBytes, m.dropped, (*collector)(r))
	}
	return m
}

// collector exposes the clients' series.
type collector Receiver

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gaugeDesc
	ch <- counterDesc
	ch <- instancesDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := (*Receiver)(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exposed.sweep(r.opts.Now())
	for k, s := range r.exposed.series {
		desc, typ := gaugeDesc, prometheus.GaugeValue
		if k.counter {
			desc, typ = counterDesc, prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(desc, typ, s.value, k.client, k.metric, k.attrs)
	}
	ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(r.lru.Len()))
}
