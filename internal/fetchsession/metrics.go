package fetchsession

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions   prometheus.Gauge
	partitions prometheus.Gauge
	evictions  *prometheus.CounterVec
	requests   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_fetch_sessions", Help: "Incremental fetch sessions (KIP-227) this agent holds.",
		}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_fetch_session_partitions", Help: "Partitions cached in this agent's fetch sessions, all sessions together.",
		}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_fetch_session_evictions_total",
			Help: "Fetch sessions evicted, by reason: stale (unused for the eviction age), smaller (for a larger new session), per_connection (the connection's oldest, for its new one), too_large (grown past the partition bounds).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_fetch_session_requests_total",
			Help: "Fetch requests by what they were to the session cache: full (epoch 0, asks for a session), incremental, sessionless (epoch -1, versions before 7, or a session closed by the request), not_found, invalid_epoch and topic_id_usage (answered with that error).",
		}, []string{"kind"}),
	}
	for _, r := range []string{"stale", "smaller", "per_connection", "too_large"} {
		m.evictions.WithLabelValues(r)
	}
	for _, k := range []string{"full", "incremental", "sessionless", "not_found", "invalid_epoch", "topic_id_usage"} {
		m.requests.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.partitions, m.evictions, m.requests)
	}
	return m
}
