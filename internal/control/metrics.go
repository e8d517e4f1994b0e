package control

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes every vcluster's counters, read at scrape time, with
// a vcluster label.
type collector struct {
	s                           *Server
	batches, slow, commands     *prometheus.Desc
	appendSeconds, applySeconds *prometheus.Desc
	sessions, epoch             *prometheus.Desc
}

// NewCollector returns the Prometheus collector of s's vclusters.
func NewCollector(s *Server) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("floe_control_vcluster_"+name, help, []string{"vcluster"}, nil)
	}
	return &collector{
		s:             s,
		batches:       d("batches_total", "Journal rows appended (batches of commands)."),
		slow:          d("batches_one_by_one_total", "Batches applied one command per state transaction because one failed inside the batch's."),
		commands:      d("commands_total", "Mutating commands journaled and applied."),
		appendSeconds: d("append_seconds_total", "Time spent encoding and appending batches to the journal."),
		applySeconds:  d("apply_seconds_total", "Time spent applying batches to the in-memory state."),
		sessions:      d("sessions", "Agent connections open."),
		epoch:         d("epoch", "Journal lease epoch this process holds."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.batches, c.slow, c.commands, c.appendSeconds, c.applySeconds, c.sessions, c.epoch} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.s.VClusters() {
		st, ok := c.s.Stats(v.Name)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.batches, prometheus.CounterValue, float64(st.Batches), v.Name)
		ch <- prometheus.MustNewConstMetric(c.slow, prometheus.CounterValue, float64(st.SlowBatches), v.Name)
		ch <- prometheus.MustNewConstMetric(c.commands, prometheus.CounterValue, float64(st.Commands), v.Name)
		ch <- prometheus.MustNewConstMetric(c.appendSeconds, prometheus.CounterValue, st.Append.Seconds(), v.Name)
		ch <- prometheus.MustNewConstMetric(c.applySeconds, prometheus.CounterValue, st.Apply.Seconds(), v.Name)
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(v.Sessions), v.Name)
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(v.Epoch), v.Name)
	}
}
