package console

import (
	"net/http"
	"time"

	"github.com/floe-io/floe/internal/jobs"
)

type jobRow struct {
	Name, Holder      string
	Epoch             int64
	Acquired, Renewed time.Time
	Runs, Failures    float64 // on this agent
	LastSeconds       float64 // mean pass duration over the last minute, this agent
	BytesIn, BytesOut float64 // taken out of the live data and written, this agent
	Lag               float64 // seconds the oldest due work has waited
	HeldHere          bool
}

type jobsData struct {
	Status jobs.Status
	Jobs   []jobRow
	Error  string
}

func (c *Console) jobs(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var d jobsData
	st, err := jobs.ReadStatus(ctx, c.opts.Store)
	if err != nil {
		c.log.Warn("console: jobs status", "err", err)
		d.Error = "the metadata store did not answer"
	}
	d.Status = st
	s := c.samples
	for _, l := range st.Leases {
		row := jobRow{Name: l.Name, Holder: l.Holder, Epoch: l.Epoch, Acquired: l.Acquired, Renewed: l.Renewed,
			Runs: s.value("floe_job_runs_total", "job="+l.Name), Failures: s.value("floe_job_failures_total", "job="+l.Name),
			BytesIn: s.value("floe_job_bytes_in_total", "job="+l.Name), BytesOut: s.value("floe_job_bytes_out_total", "job="+l.Name),
			Lag: s.value("floe_job_lag_seconds", "job="+l.Name), HeldHere: s.value("floe_job_lease_held", "job="+l.Name) == 1}
		if n := s.rate("floe_job_run_seconds_count", "job="+l.Name); n > 0 {
			row.LastSeconds = s.rate("floe_job_run_seconds_sum", "job="+l.Name) / n
		}
		d.Jobs = append(d.Jobs, row)
	}
	c.render(w, r, "jobs", page{Title: "Jobs", Nav: "jobs", Refresh: true, Data: d})
}
