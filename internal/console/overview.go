package console

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

type agentRow struct {
	NodeID  int32
	Addr    string
	Zone    string
	Roles   []string
	Expires time.Time
	Self    bool
	// From the agent's registration, and for other agents from their
	// admin API's /api/status.
	Admin   string
	Version string
	// OutageManifest is the agent's --outage-manifest-name ("" none).
	OutageManifest string
	Uptime         time.Duration // 0: unknown
	// Status is "ok", why the agent is unhealthy, "unreachable: …" or
	// "no admin address"; Healthy is set for "ok".
	Status      string
	Healthy     bool
	HasLoad     bool
	Connections float64
	Goroutines  float64
	CPU         float64
	RSS         int64
}

type opRate struct {
	Op             string
	PerSec, ErrSec float64
	Bytes          float64 // bytes per second
}

type overviewData struct {
	Self        Self
	Version     string
	Uptime      time.Duration
	Health      string
	Healthy     bool
	Connections float64
	Goroutines  float64
	CPU         float64 // CPU seconds per second
	RSS         int64
	Agents      []agentRow
	AgentsErr   string
	Metastore   string
	Commits     float64 // segment commits/s
	CommitMs    float64 // mean commit latency over the last minute
	FlushErrs   float64
	Bucket      string
	BucketOps   []opRate
	Retries     float64
	Hedges      float64
	Requests    []opRate // Kafka requests by API
	Warm        bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	s := c.samples
	self := c.opts.Self()
	d := overviewData{
		Self: self, Version: c.version, Metastore: c.opts.MetastoreName, Bucket: c.opts.Bucket,
		Connections: s.value("floe_connections"), Goroutines: s.value("go_goroutines"),
		CPU: s.rate("process_cpu_seconds_total"), RSS: int64(s.value("process_resident_memory_bytes")),
		Commits: s.rate("floe_segment_commit_seconds_count"), FlushErrs: s.rate("floe_segment_flushes_total", "result=error"),
		Retries: s.rate("floe_objstore_retries_total"), Hedges: s.rate("floe_objstore_hedges_total"), Warm: s.warm(),
	}
	if !self.Started.IsZero() {
		d.Uptime = time.Since(self.Started)
	}
	if n := d.Commits; n > 0 {
		d.CommitMs = s.rate("floe_segment_commit_seconds_sum") / n * 1000
	}
	if err := c.opts.Health(ctx); err != nil {
		d.Health = err.Error()
	} else {
		d.Health, d.Healthy = "ok", true
	}
	for _, op := range []string{"put", "get", "delete", "list"} {
		d.BucketOps = append(d.BucketOps, opRate{
			Op: op, PerSec: s.rate("floe_objstore_requests_total", "op="+op),
			ErrSec: s.rate("floe_objstore_requests_total", "op="+op, "result=error"),
			Bytes:  s.rate("floe_objstore_bytes_total", "op="+op),
		})
	}
	for _, api := range []string{"Produce", "Fetch", "Metadata", "OffsetCommit", "JoinGroup", "Heartbeat"} {
		d.Requests = append(d.Requests, opRate{Op: api, PerSec: s.rate("floe_request_duration_seconds_count", "api="+api)})
	}
	agents, err := c.opts.Store.LiveAgents(ctx)
	if err != nil {
		c.log.Warn("console: live agents", "err", err)
		d.AgentsErr = "the metadata store did not answer"
	}
	if len(agents) > 1 {
		c.peers.refresh(ctx, agents, self.ID)
	}
	for _, a := range agents {
		row := agentRow{NodeID: a.NodeID, Addr: joinHostPort(a.Host, a.Port), Zone: a.Zone,
			Roles: slices.Clone(a.Roles), Expires: a.Expires, Self: a.ID == self.ID, Version: a.Version, OutageManifest: a.OutageManifest}
		if _, err := peerURL(a.Admin, "/"); err == nil {
			row.Admin = strings.TrimSuffix(a.Admin, "/")
		}
		if !a.Started.IsZero() {
			row.Uptime = time.Since(a.Started)
		}
		if row.Self {
			row.Version, row.Uptime, row.Status, row.Healthy = d.Version, d.Uptime, d.Health, d.Healthy
			row.HasLoad, row.Connections, row.Goroutines, row.CPU, row.RSS = true, d.Connections, d.Goroutines, d.CPU, d.RSS
		} else {
			c.peerRow(&row, a)
		}
		d.Agents = append(d.Agents, row)
	}
	nav := "overview"
	if r.URL.Path == "/agents" {
		nav = "agents"
	}
	c.render(w, r, "overview", page{Title: "Cluster", Nav: nav, Refresh: true, Data: d})
}

// peerRow fills in what another agent's admin API said of it.
func (c *Console) peerRow(row *agentRow, a metastore.AgentInfo) {
	if row.Admin == "" {
		row.Status = "no admin address registered"
		return
	}
	v := c.peers.view(a.ID)
	switch {
	case !v.Known:
		row.Status = "not asked yet"
		return
	case !v.Reachable:
		row.Status = "unreachable: " + v.Err
		return
	}
	st := v.Status
	if st.Version != "" {
		row.Version = st.Version
	}
	if !st.Started.IsZero() {
		row.Uptime = max(time.Since(st.Started), 0)
	}
	row.Status, row.Healthy = st.Health, st.Health == "ok"
	row.HasLoad, row.Connections, row.Goroutines, row.CPU, row.RSS = true, st.Connections, st.Goroutines, v.CPU, int64(st.RSSBytes)
}
