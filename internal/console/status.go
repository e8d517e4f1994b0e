package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is what an agent's admin API answers at /api/status: who it is,
// its health and load, and its cumulative per-topic fetch counters. The
// consoles of the other agents read it to show this agent's version,
// uptime, health and load, and to add its fetch rates to the cluster's.
// Counters are totals since the agent started; readers take rates from
// two answers.
type Status struct {
	ID      string    `json:"id"`
	NodeID  int32     `json:"node_id"`
	Version string    `json:"version"`
	Started time.Time `json:"started,omitzero"` // zero until the agent serves
	// Health is "ok", or why the agent is not healthy ("draining",
	// "metadata store unavailable").
	Health      string  `json:"health"`
	Connections float64 `json:"connections"`
	Goroutines  float64 `json:"goroutines"`
	CPUSeconds  float64 `json:"cpu_seconds_total"`
	RSSBytes    float64 `json:"resident_memory_bytes"`
	// Fetch is, per topic, what Fetch answered since the agent started
	// (floe_fetch_records_total, floe_fetch_bytes_total).
	Fetch map[string]Served `json:"fetch,omitempty"`
	// Bucket is what the agent asked of the bucket and appended since it
	// started: what the cost page adds up over the cluster.
	Bucket BucketTotals `json:"bucket"`
}

// BucketTotals are an agent's bucket requests and appended bytes since it
// started (floe_objstore_requests_total by op, floe_segment_bytes_sum).
type BucketTotals struct {
	Puts          float64 `json:"puts"`
	Gets          float64 `json:"gets"`
	AppendedBytes float64 `json:"appended_bytes"`
}

// Served counts records and bytes.
type Served struct {
	Records float64 `json:"records"`
	Bytes   float64 `json:"bytes"`
}

// StatusOptions configure StatusHandler.
type StatusOptions struct {
	Gatherer prometheus.Gatherer
	Self     func() Self
	Health   func(ctx context.Context) error
	Logger   *slog.Logger
}

// StatusHandler answers /api/status. The agent serves it behind its
// admin token, with the console or without.
func StatusHandler(o StatusOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		self := o.Self()
		st := Status{ID: self.ID, NodeID: self.NodeID, Version: BuildVersion(), Started: self.Started, Health: "ok"}
		if o.Health != nil {
			if err := o.Health(ctx); err != nil {
				st.Health = err.Error()
			}
		}
		m, err := gatherMetrics(o.Gatherer)
		if err != nil {
			o.Logger.Debug("status: gathering metrics", "err", err)
		}
		st.Connections, st.Goroutines = m["floe_connections"], m["go_goroutines"]
		st.Bucket = BucketTotals{
			Puts: sum(m, "floe_objstore_requests_total", "op=put"), Gets: sum(m, "floe_objstore_requests_total", "op=get"),
			AppendedBytes: sum(m, "floe_segment_bytes_sum"),
		}
		st.CPUSeconds, st.RSSBytes = m["process_cpu_seconds_total"], m["process_resident_memory_bytes"]
		for k, v := range m {
			for _, c := range []struct {
				prefix string
				set    func(*Served, float64)
			}{
				{"floe_fetch_records_total{topic=", func(s *Served, v float64) { s.Records = v }},
				{"floe_fetch_bytes_total{topic=", func(s *Served, v float64) { s.Bytes = v }},
			} {
				if topic, ok := strings.CutPrefix(k, c.prefix); ok && strings.HasSuffix(topic, "}") {
					if st.Fetch == nil {
						st.Fetch = map[string]Served{}
					}
					topic = strings.TrimSuffix(topic, "}")
					s := st.Fetch[topic]
					c.set(&s, v)
					st.Fetch[topic] = s
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(st)
	})
}
