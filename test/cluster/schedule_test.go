package cluster

// Scheduling from the control plane (docs/control-plane.md, Scheduling),
// with processes: `floe control` decides which `floe agent` runs each
// background job and which agents form each zone's cache ring.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/jobs"
)

func (c *controlProc) schedule(t *testing.T, vcluster string) control.ScheduleInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.admin+"/api/vclusters/"+vcluster+"/schedule", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("schedule: %v", err)
	}
	defer resp.Body.Close()
	var info control.ScheduleInfo
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
		t.Fatalf("schedule: %s", resp.Status)
	}
	return info
}

// TestControlPlaneSchedulesAgents runs three agents (two in zone z1, one
// in z2) on a vcluster of a `floe control` process: the four jobs are
// spread over them, each job is assigned to one agent and runs there
// only (floe_job_assigned, floe_job_runs_total), and the rings are per
// zone. An agent stopped with SIGTERM leaves the schedule and its jobs
// run on the others at once; one SIGKILLed leaves its ring as soon as
// its session ends, and its jobs go after the grace period.
func TestControlPlaneSchedulesAgents(t *testing.T) {
	e := newPostgresEnv(t, "")
	ctl := startControl(t, e)
	onControl := ctl.envOn(t, e, "prod")
	var agents []*agentProc
	for i, zone := range []string{"z1", "z1", "z2"} {
		agents = append(agents, startAgent(t, onControl, fmt.Sprintf("a%d", i), agentOpts{zone: zone, extra: []string{"--job-interval", "200ms"}}))
	}
	names := jobs.StandardNames()

	// check waits for a schedule of len(live) agents, then checks that
	// each job is assigned to one of them, runs there over two seconds
	// and nowhere else.
	check := func(what string, live []*agentProc) control.ScheduleInfo {
		t.Helper()
		var info control.ScheduleInfo
		deadline := time.Now().Add(30 * time.Second)
		for {
			info = ctl.schedule(t, "prod")
			if info.Members == len(live) && info.InGrace == 0 && len(info.Jobs) == len(names) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: schedule %+v", what, info)
			}
			time.Sleep(200 * time.Millisecond)
		}
		runs := func() map[string]map[string]float64 {
			out := map[string]map[string]float64{}
			for _, a := range live {
				m, err := a.metrics()
				if err != nil {
					t.Fatalf("metrics of %s: %v", a.name, err)
				}
				out[a.name] = map[string]float64{}
				for _, job := range names {
					out[a.name][job] = m.sum("floe_job_runs_total", "job", job)
					out[a.name]["assigned:"+job] = m.sum("floe_job_assigned", "job", job)
				}
			}
			return out
		}
		time.Sleep(time.Second) // jobs moved from a stopped agent start
		before := runs()
		time.Sleep(2 * time.Second)
		after := runs()
		if now := ctl.schedule(t, "prod"); now.Version != info.Version || now.Epoch != info.Epoch {
			t.Fatalf("%s: the schedule changed while measured", what)
		}
		agentsWithJobs := map[string]bool{}
		for _, id := range info.Jobs {
			agentsWithJobs[id] = true
		}
		processesWithJobs := map[string]bool{}
		for _, job := range names {
			var assigned, ran []string
			for _, a := range live {
				if after[a.name]["assigned:"+job] == 1 {
					assigned = append(assigned, a.name)
				}
				if after[a.name][job] > before[a.name][job] {
					ran = append(ran, a.name)
				}
			}
			if len(assigned) != 1 || !slices.Equal(ran, assigned) {
				t.Errorf("%s: %s assigned to %v, ran on %v", what, job, assigned, ran)
				continue
			}
			processesWithJobs[assigned[0]] = true
		}
		if len(processesWithJobs) != len(agentsWithJobs) {
			t.Errorf("%s: jobs on %d processes, the schedule names %d agents: %v", what, len(processesWithJobs), len(agentsWithJobs), info.Jobs)
		}
		t.Logf("%s: schedule %d.%d, jobs on %v, ring sizes z1 %d z2 %d", what, info.Epoch, info.Version, slices.Sorted(maps.Keys(processesWithJobs)), len(info.Rings["z1"]), len(info.Rings["z2"]))
		return info
	}

	info := check("three agents", agents)
	if len(info.Rings["z1"]) != 2 || len(info.Rings["z2"]) != 1 {
		t.Errorf("rings %v, want 2 agents in z1 and 1 in z2", info.Rings)
	}
	if n := len(slices.Compact(slices.Sorted(maps.Values(info.Jobs)))); n != 3 {
		t.Errorf("4 jobs on 3 agents use %d of them", n)
	}

	agents[0].stop(t)
	info = check("a0 stopped", agents[1:])
	if len(info.Rings["z1"]) != 1 {
		t.Errorf("ring of z1 after a0 stopped: %v", info.Rings["z1"])
	}

	// A SIGKILLed agent's session ends with it: it leaves its ring at
	// once and, after the grace period (5 s), the jobs (which wait for its
	// leases to expire before they run elsewhere, docs/jobs.md; not
	// waited for here).
	agents[2].kill(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info = ctl.schedule(t, "prod")
		if info.Members == 1 && info.InGrace == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed agent still in the schedule: %+v", info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := info.Rings["z2"]; ok || len(slices.Compact(slices.Sorted(maps.Values(info.Jobs)))) != 1 {
		t.Errorf("after the kill: jobs %v, rings %v", info.Jobs, info.Rings)
	}
}
