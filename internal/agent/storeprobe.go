package agent

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeProbeInterval is how often the agent checks that its metadata
// store answers.
const storeProbeInterval = 5 * time.Second

// storeProbe measures the metadata store's health from this agent: a
// cheap read (the live agents) every storeProbeInterval, its latency and
// whether it succeeded, for dashboards and alerts.
type storeProbe struct {
	up       prometheus.Gauge
	seconds  prometheus.Histogram
	failures prometheus.Counter
}

func newStoreProbe(reg prometheus.Registerer) *storeProbe {
	p := &storeProbe{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_metastore_up", Help: "1 if the metadata store answered this agent's last probe, 0 if it failed.",
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_metastore_probe_seconds", Help: "Latency of the agent's periodic metadata store probe (a read of the live agents).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_metastore_probe_failures_total", Help: "Metadata store probes that failed or timed out.",
		}),
	}
	reg.MustRegister(p.up, p.seconds, p.failures)
	return p
}

// run probes until ctx ends, the first time at once.
func (p *storeProbe) run(ctx context.Context, a *Agent) {
	t := time.NewTicker(storeProbeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, storeProbeInterval)
		start := time.Now()
		_, err := a.store.LiveAgents(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.up.Set(0)
			p.failures.Inc()
			a.log.Debug("metadata store probe failed", "err", err)
		default:
			p.up.Set(1)
			p.seconds.Observe(time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
