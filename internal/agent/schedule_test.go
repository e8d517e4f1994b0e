package agent_test

import (
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// jobMetric reads a per-job metric of an agent's registry (0: none).
func jobMetric(t *testing.T, reg *prometheus.Registry, name, job string) float64 {
	t.Helper()
	v, _ := testutil.MetricValue(t, reg, name, "job", job)
	return v
}

func ids(as []metastore.AgentInfo) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return out
}

// TestAgentsScheduledByControlPlane starts three agents with the jobs
// role on a vcluster of a real `floe control` (journal in PostgreSQL),
// two in zone z1 and one in z2: every job runs (floe_job_runs_total
// moves) on the agent the control plane assigns it to and on no other,
// each zone's cache ring is the agents of that zone holding a session;
// when an agent stops, its jobs run elsewhere and it leaves its ring.
func TestAgentsScheduledByControlPlane(t *testing.T) {
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	j, err := journal.Open(t.Context(), dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	srv, err := control.New(t.Context(), control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	key, err := srv.CreateVCluster(t.Context(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := localdir.Open(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}

	type running struct {
		*agent.Agent
		id   string
		zone string
		reg  *prometheus.Registry
	}
	var agents []*running
	for i, zone := range []string{"z1", "z1", "z2"} {
		store, err := remote.Open(t.Context(), remote.Options{Addr: ln.Addr().String(), VCluster: "prod", Key: key, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		a, err := agent.Start(agent.Config{
			Listen: "127.0.0.1:0", NodeID: -1, Linger: 20 * time.Millisecond, Zone: zone,
			Roles: []string{"produce", "fetch", "jobs"}, Jobs: agenttest.JobsConfig(),
			Registry: reg, Logger: testutil.Logger(t).With("agent", i),
		}, store, bucket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); store.Close() })
		agents = append(agents, &running{Agent: a, id: agent.SelfID(a), zone: zone, reg: reg})
	}

	// check waits for a schedule of the given agents, then checks the
	// jobs' runs over a second and the rings the agents route reads by.
	check := func(what string, live []*running) {
		t.Helper()
		var info control.ScheduleInfo
		testutil.WaitFor(t, 15*time.Second, what, func() bool {
			info, _ = srv.Schedule("prod")
			return info.Members == len(live) && len(info.Jobs) == 4
		})
		// A job moved from a stopped agent starts once it released the
		// lease; give the passes (every 100 ms) time to settle.
		time.Sleep(time.Second)
		runs := func() map[string]map[string]float64 {
			out := map[string]map[string]float64{}
			for _, a := range live {
				out[a.id] = map[string]float64{}
				for job := range info.Jobs {
					out[a.id][job] = jobMetric(t, a.reg, "floe_job_runs_total", job)
				}
			}
			return out
		}
		before := runs()
		time.Sleep(time.Second)
		after := runs()
		if now, _ := srv.Schedule("prod"); now.Version != info.Version || now.Epoch != info.Epoch {
			t.Fatalf("%s: the schedule changed while measured", what)
		}
		for job, owner := range info.Jobs {
			for _, a := range live {
				n := after[a.id][job] - before[a.id][job]
				switch {
				case a.id == owner && n == 0:
					t.Errorf("%s: %s did not run on %s, its agent, in a second", what, job, a.id)
				case a.id != owner && n != 0:
					t.Errorf("%s: %s ran %v times on %s, assigned to %s", what, job, n, a.id, owner)
				}
				if assigned := jobMetric(t, a.reg, "floe_job_assigned", job); (assigned == 1) != (a.id == owner) {
					t.Errorf("%s: floe_job_assigned{job=%s} is %v on %s, assigned to %s", what, job, assigned, a.id, owner)
				}
			}
		}
		for _, a := range live {
			var want []string
			for _, b := range live {
				if b.zone == a.zone {
					want = append(want, b.id)
				}
			}
			slices.Sort(want)
			if got := ids(agent.RingMembers(a.Agent)); !slices.Equal(got, want) {
				t.Errorf("%s: %s (zone %s) routes reads over ring %v, want %v", what, a.id, a.zone, got, want)
			}
		}
		t.Logf("%s: schedule %d.%d, jobs %v, runs in a second: %v", what, info.Epoch, info.Version, info.Jobs, diff(before, after))
	}
	check("three agents", agents)

	agents[1].Close()
	check("agent 1 stopped", []*running{agents[0], agents[2]})
}

func diff(before, after map[string]map[string]float64) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for a, jobs := range after {
		out[a] = map[string]float64{}
		for j, n := range jobs {
			if d := n - before[a][j]; d != 0 {
				out[a][j] = d
			}
		}
	}
	return out
}
