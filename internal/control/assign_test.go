package control_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/metastore"
)

var standardJobs = []string{"cleaner", "compaction", "key-compaction", "retention"}

func runner(i int, zone string, jobs ...string) metastore.ScheduleMember {
	return metastore.ScheduleMember{
		Agent: metastore.AgentInfo{ID: fmt.Sprintf("agent-%02d", i), Host: "10.0.0.1", Port: int32(9000 + i), Zone: zone,
			PeerAddr: fmt.Sprintf("10.0.0.1:%d", 19000+i), Roles: []string{"fetch", "jobs"}},
		Jobs: jobs, Ring: true,
	}
}

func without(ms []metastore.ScheduleMember, id string) []metastore.ScheduleMember {
	return slices.DeleteFunc(slices.Clone(ms), func(m metastore.ScheduleMember) bool { return m.Agent.ID == id })
}

func loads(jobs map[string]string) map[string]int {
	out := map[string]int{}
	for _, a := range jobs {
		out[a]++
	}
	return out
}

func moved(a, b map[string]string) int {
	n := 0
	for job, agent := range a {
		if b[job] != agent {
			n++
		}
	}
	return n
}

// TestAssignSpread: the four standard jobs over 2 to 4 agents, and 64
// jobs over 8, land on every agent, none with more than ⌈jobs/agents⌉.
func TestAssignSpread(t *testing.T) {
	many := make([]string, 64)
	for i := range many {
		many[i] = fmt.Sprintf("compaction/topic-%02d", i)
	}
	for _, tc := range []struct {
		agents int
		jobs   []string
	}{{2, standardJobs}, {3, standardJobs}, {4, standardJobs}, {8, many}} {
		var ms []metastore.ScheduleMember
		for i := range tc.agents {
			ms = append(ms, runner(i, "z", tc.jobs...))
		}
		jobs, _ := control.Assign(nil, ms)
		if len(jobs) != len(tc.jobs) {
			t.Fatalf("%d agents: %d jobs assigned, want %d", tc.agents, len(jobs), len(tc.jobs))
		}
		bound := (len(tc.jobs) + tc.agents - 1) / tc.agents
		l := loads(jobs)
		if len(l) != min(tc.agents, len(tc.jobs)) {
			t.Errorf("%d agents, %d jobs: only %d agents run jobs: %v", tc.agents, len(tc.jobs), len(l), l)
		}
		for a, n := range l {
			if n > bound {
				t.Errorf("%d agents: %s runs %d jobs, bound %d", tc.agents, a, n, bound)
			}
		}
		t.Logf("%d agents, %d jobs: loads %v", tc.agents, len(tc.jobs), l)
	}
}

// TestAssignDeterministic: the answer depends on the members, not on
// their order; a second member with an agent's ID is ignored.
func TestAssignDeterministic(t *testing.T) {
	var ms []metastore.ScheduleMember
	for i := range 5 {
		ms = append(ms, runner(i, fmt.Sprintf("z%d", i%2), standardJobs...))
	}
	jobs, rings := control.Assign(nil, ms)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(ms)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		j2, r2 := control.Assign(nil, shuffled)
		if !maps.Equal(jobs, j2) || fmt.Sprint(rings) != fmt.Sprint(r2) {
			t.Fatalf("order changed the schedule: %v %v, then %v %v", jobs, rings, j2, r2)
		}
	}
	dup := runner(0, "elsewhere") // no jobs, another zone: ignored, the first counts
	j3, r3 := control.Assign(nil, append(slices.Clone(ms), dup))
	if !maps.Equal(jobs, j3) || fmt.Sprint(rings) != fmt.Sprint(r3) {
		t.Fatalf("a duplicate member changed the schedule: %v %v", j3, r3)
	}
}

// TestAssignStable: when an agent leaves only its jobs move; when one
// joins (or a leaver restarts at its address with a new ID) it takes
// ⌊jobs/agents⌋ jobs and nothing else moves; the loads stay within
// [⌊jobs/agents⌋, ⌈jobs/agents⌉] throughout.
func TestAssignStable(t *testing.T) {
	many := make([]string, 64)
	for i := range many {
		many[i] = fmt.Sprintf("job-%02d", i)
	}
	for _, tc := range []struct {
		agents int
		jobs   []string
	}{{2, standardJobs}, {3, standardJobs}, {5, standardJobs}, {8, many}, {7, many}} {
		var ms []metastore.ScheduleMember
		for i := range tc.agents {
			ms = append(ms, runner(i, "z", tc.jobs...))
		}
		checkLoads := func(what string, jobs map[string]string, members []metastore.ScheduleMember) {
			t.Helper()
			agents := len(members)
			lo, hi := len(tc.jobs)/agents, (len(tc.jobs)+agents-1)/agents
			l := loads(jobs)
			for _, m := range members {
				if n := l[m.Agent.ID]; n > hi || n < lo {
					t.Errorf("%d agents, %s: %s runs %d jobs, want %d..%d: %v", tc.agents, what, m.Agent.ID, n, lo, hi, l)
				}
			}
		}
		before, _ := control.Assign(nil, ms)
		checkLoads("first schedule", before, ms)
		if again, _ := control.Assign(before, ms); !maps.Equal(before, again) {
			t.Fatalf("%d agents: the same members moved jobs: %v, then %v", tc.agents, before, again)
		}
		for _, leaver := range ms {
			rest := without(ms, leaver.Agent.ID)
			after, _ := control.Assign(before, rest)
			for job, agent := range before {
				if agent != leaver.Agent.ID && after[job] != agent {
					t.Errorf("%d agents, %s left: %s moved from %s to %s", tc.agents, leaver.Agent.ID, job, agent, after[job])
				}
				if after[job] == leaver.Agent.ID {
					t.Errorf("%s left but still runs %s", leaver.Agent.ID, job)
				}
			}
			checkLoads(leaver.Agent.ID+" left", after, rest)

			again := leaver
			again.Agent.ID = "z-restarted"
			back, _ := control.Assign(after, append(slices.Clone(rest), again))
			checkLoads(leaver.Agent.ID+" restarted", back, append(slices.Clone(rest), again))
			got := loads(back)[again.Agent.ID]
			if n := moved(after, back); n != got {
				t.Errorf("%d agents, %s restarted: %d jobs moved, it took %d", tc.agents, leaver.Agent.ID, n, got)
			}
			if got < len(tc.jobs)/tc.agents {
				t.Errorf("%d agents, %s restarted: it runs %d jobs", tc.agents, leaver.Agent.ID, got)
			}
			same := 0
			for job, agent := range before {
				if agent == leaver.Agent.ID && back[job] == again.Agent.ID {
					same++
				}
			}
			t.Logf("%d agents, %d jobs: %s left (%d jobs moved), restarted: took %d jobs, %d of them its own",
				tc.agents, len(tc.jobs), leaver.Agent.ID, moved(before, after), got, same)
		}
	}
}

// TestAssignCandidates: a job goes only to an agent that announced it;
// agents announcing nothing run nothing; rings are per zone, of the
// members with Ring set and a peer address.
func TestAssignCandidates(t *testing.T) {
	ms := []metastore.ScheduleMember{
		runner(0, "a", "cleaner"),
		runner(1, "a", "cleaner", "retention"),
		runner(2, "b"),      // no jobs role
		runner(3, "b", "x"), // the only one for x
		runner(4, "a"),      // ring only
		{Agent: metastore.AgentInfo{ID: "no-peer", Zone: "a"}, Ring: true},
		{Agent: metastore.AgentInfo{ID: "not-ring", Zone: "b", PeerAddr: "h:1"}},
	}
	ms[4].Jobs = nil
	jobs, rings := control.Assign(nil, ms)
	if jobs["retention"] != "agent-01" || jobs["x"] != "agent-03" || (jobs["cleaner"] != "agent-00" && jobs["cleaner"] != "agent-01") || len(jobs) != 3 {
		t.Fatalf("jobs %v", jobs)
	}
	ids := func(as []metastore.AgentInfo) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	if got := ids(rings["a"]); !slices.Equal(got, []string{"agent-00", "agent-01", "agent-04"}) {
		t.Errorf("ring of a: %v", got)
	}
	if got := ids(rings["b"]); !slices.Equal(got, []string{"agent-02", "agent-03"}) {
		t.Errorf("ring of b: %v", got)
	}
	if jobs, rings := control.Assign(nil, nil); jobs != nil || rings != nil {
		t.Errorf("no members: %v %v", jobs, rings)
	}
}

// BenchmarkAssign times one decision: the schedule is decided again,
// under the vcluster's schedule lock, whenever a session joins or leaves.
// "worst" is what the bounds admit: 4,096 sessions (a server's
// connections) announcing 64 jobs each out of 256 names.
func BenchmarkAssign(b *testing.B) {
	for _, tc := range []struct {
		name           string
		agents, perJob int
		names          int
	}{{"10-agents-4-jobs", 10, 4, 4}, {"100-agents-4-jobs", 100, 4, 4}, {"worst-4096-agents-256-jobs", 4096, 64, control.MaxScheduledJobs}} {
		b.Run(tc.name, func(b *testing.B) {
			var ms []metastore.ScheduleMember
			for i := range tc.agents {
				var jobs []string
				for k := range tc.perJob {
					jobs = append(jobs, fmt.Sprintf("job-%03d", (i*7+k)%tc.names))
				}
				ms = append(ms, runner(i, fmt.Sprintf("z%d", i%3), jobs...))
			}
			prev, _ := control.Assign(nil, ms[1:])
			b.ResetTimer()
			for b.Loop() {
				control.Assign(prev, ms)
			}
		})
	}
}
