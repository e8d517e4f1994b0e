package topiccache

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	topics prometheus.Gauge
	reads  *prometheus.CounterVec
	failed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		topics: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_topic_cache_topics", Help: "Topics in this agent's topic cache.",
		}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_topic_cache_store_reads_total",
			Help: "Reads of the metadata store by the topic cache, by reason: load (every topic: at start, after a lost notice channel, on resync or after a failed re-read), notice (a changed topic), miss (a name the cache did not hold). Requests for known topics cause none.",
		}, []string{"reason"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_topic_cache_read_failures_total",
			Help: "Store reads of the topic cache that failed; the cache then reloads every topic each second until one succeeds.",
		}),
	}
	for _, r := range []string{"load", "notice", "miss"} {
		m.reads.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.topics, m.reads, m.failed)
	}
	return m
}
