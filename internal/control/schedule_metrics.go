package control

import (
	"github.com/prometheus/client_golang/prometheus"
)

// scheduleCollector exposes every vcluster's schedule, read at scrape
// time: floe_control_schedule_* and floe_control_job_assignment.
type scheduleCollector struct {
	s                       *Server
	members, inGrace        *prometheus.Desc
	version, epoch          *prometheus.Desc
	changes, moves          *prometheus.Desc
	assignment, ringMembers *prometheus.Desc
}

// NewScheduleCollector returns the Prometheus collector of s's
// schedules (docs/control-plane.md, Scheduling).
func NewScheduleCollector(s *Server) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("floe_control_"+name, help, append([]string{"vcluster"}, labels...), nil)
	}
	return &scheduleCollector{
		s:           s,
		members:     d("schedule_members", "Agent sessions that joined the vcluster's schedule."),
		inGrace:     d("schedule_in_grace", "Agents whose session ended that keep their jobs until their grace period ends."),
		version:     d("schedule_version", "Version of the current schedule within its epoch."),
		epoch:       d("schedule_epoch", "Epoch of the current schedule (the vcluster's lease epoch)."),
		changes:     d("schedule_changes_total", "Schedules decided since the vcluster opened in this process."),
		moves:       d("schedule_job_moves_total", "Jobs that changed agent from one schedule to the next."),
		assignment:  d("job_assignment", "1 for the agent the current schedule assigns each job to.", "job", "agent"),
		ringMembers: d("ring_members", "Agents in each zone's cache ring.", "zone"),
	}
}

func (c *scheduleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.inGrace, c.version, c.epoch, c.changes, c.moves, c.assignment, c.ringMembers} {
		ch <- d
	}
}

func (c *scheduleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.s.VClusters() {
		info, ok := c.s.Schedule(v.Name)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(info.Members), v.Name)
		ch <- prometheus.MustNewConstMetric(c.inGrace, prometheus.GaugeValue, float64(info.InGrace), v.Name)
		ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(info.Version), v.Name)
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(info.Epoch), v.Name)
		ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(info.Changes), v.Name)
		ch <- prometheus.MustNewConstMetric(c.moves, prometheus.CounterValue, float64(info.Moves), v.Name)
		for job, agent := range info.Jobs {
			ch <- prometheus.MustNewConstMetric(c.assignment, prometheus.GaugeValue, 1, v.Name, job, agent)
		}
		for zone, ring := range info.Rings {
			ch <- prometheus.MustNewConstMetric(c.ringMembers, prometheus.GaugeValue, float64(len(ring)), v.Name, zone)
		}
	}
}
