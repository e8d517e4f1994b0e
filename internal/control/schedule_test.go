package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/testutil"
)

// newControlGrace is newControl with Options.ScheduleGrace.
func newControlGrace(t *testing.T, grace time.Duration) *controlPlane {
	t.Helper()
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	return startControlOpts(t, dbURL, 0, func(o *control.Options) { o.ScheduleGrace = grace })
}

// cutProxy forwards TCP connections to a control plane; cut breaks the
// connections open now (an agent's session drops; it reconnects).
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// watcher is one agent's view of the schedule, as WatchSchedule hands it.
type watcher struct {
	id   string
	mu   sync.Mutex
	seen []metastore.Schedule
}

func (w *watcher) update(s metastore.Schedule) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, s)
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

func (w *watcher) last() metastore.Schedule {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return metastore.Schedule{}
	}
	return w.seen[len(w.seen)-1]
}

// checkOrder fails if the watcher was ever handed a schedule older than
// one it had (a lost one may be followed by the same version again).
func (w *watcher) checkOrder(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.seen); i++ {
		a, b := w.seen[i-1], w.seen[i]
		if a.Newer(b) || (!b.Lost && !a.Lost && !b.Newer(a)) {
			t.Errorf("%s: schedule %d.%d (lost %v) after %d.%d (lost %v)", w.id, b.Epoch, b.Version, b.Lost, a.Epoch, a.Version, a.Lost)
		}
	}
}

func member(id, zone string, ring bool, jobNames ...string) metastore.ScheduleMember {
	return metastore.ScheduleMember{
		Agent: metastore.AgentInfo{ID: id, Host: "127.0.0.1", Port: int32(len(id)) * 100, Zone: zone, Roles: []string{"fetch", "jobs"}, PeerAddr: "127.0.0.1:1" + id[len(id)-1:]},
		Jobs:  jobNames, Ring: ring,
	}
}

func ringIDs(s metastore.Schedule, zone string) []string {
	var out []string
	for _, a := range s.Rings[zone] {
		out = append(out, a.ID)
	}
	return out
}

// TestScheduleFollowsSessions: agents that join the schedule through the
// control plane get the jobs spread over them and a ring per zone; when
// a session ends its agent leaves its ring at once, and its jobs move
// once its grace period (1 s here) is over; a session cut by the network
// is reported lost, and the agent is back in the schedule once its
// client reconnected, within its grace: its jobs never moved. Every
// watcher sees the versions in order.
func TestScheduleFollowsSessions(t *testing.T) {
	const grace = time.Second
	cp := newControlGrace(t, grace)
	key, err := cp.server.CreateVCluster(t.Context(), "sched")
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, cp.addr)
	names := jobs.StandardNames()
	var ws []*watcher
	var clients []*remote.Client
	for i, zone := range []string{"a", "a", "b"} {
		addr := cp.addr
		if i == 1 {
			addr = proxy.addr()
		}
		c, err := remote.Open(t.Context(), remote.Options{Addr: addr, VCluster: "sched", Key: key, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		w := &watcher{id: fmt.Sprintf("agent-%d", i)}
		stop, err := c.WatchSchedule(member(w.id, zone, true, names...), w.update)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		ws, clients = append(ws, w), append(clients, c)
	}
	settled := func(what string, want []string) metastore.Schedule {
		t.Helper()
		var s metastore.Schedule
		testutil.WaitFor(t, 10*time.Second, what, func() bool {
			info, _ := cp.server.Schedule("sched")
			s = info.Schedule
			for _, a := range s.Jobs {
				if !slices.Contains(want, a) {
					return false // in its grace period
				}
			}
			var members []string
			for _, as := range s.Rings {
				for _, a := range as {
					members = append(members, a.ID)
				}
			}
			slices.Sort(members)
			if !slices.Equal(members, want) {
				return false
			}
			for _, w := range ws {
				if slices.Contains(want, w.id) {
					if l := w.last(); l.Lost || l.Version != s.Version || l.Epoch != s.Epoch {
						return false
					}
				}
			}
			return true
		})
		return s
	}
	s := settled("three agents in the schedule", []string{"agent-0", "agent-1", "agent-2"})
	t.Logf("schedule %d.%d: jobs %v", s.Epoch, s.Version, s.Jobs)
	if got := ringIDs(s, "a"); !slices.Equal(got, []string{"agent-0", "agent-1"}) {
		t.Errorf("ring of zone a: %v", got)
	}
	if got := ringIDs(s, "b"); !slices.Equal(got, []string{"agent-2"}) {
		t.Errorf("ring of zone b: %v", got)
	}
	for _, w := range ws {
		if n := len(s.JobsOf(w.id)); n < 1 || n > 2 {
			t.Errorf("%s runs %d of the 4 jobs: %v", w.id, n, s.Jobs)
		}
	}

	// agent-2's session ends: zone b has no ring any more at once; after
	// the grace period its jobs move, and nothing else does.
	clients[2].Close()
	closed := time.Now()
	testutil.WaitFor(t, 10*time.Second, "zone b's ring gone", func() bool {
		info, _ := cp.server.Schedule("sched")
		return info.Rings["b"] == nil
	})
	if info, _ := cp.server.Schedule("sched"); time.Since(closed) < grace/2 && (info.InGrace != 1 || len(info.JobsOf("agent-2")) != len(s.JobsOf("agent-2"))) {
		t.Errorf("agent-2's jobs left before its grace period: %+v", info)
	}
	s2 := settled("agent-2 gone", []string{"agent-0", "agent-1"})
	if d := time.Since(closed); d < grace {
		t.Errorf("agent-2's jobs moved %v after its session ended, within its grace of %v", d, grace)
	}
	for job, agent := range s.Jobs {
		switch {
		case agent == "agent-2" && s2.Jobs[job] == "agent-2":
			t.Errorf("%s still on the agent that left", job)
		case agent != "agent-2" && s2.Jobs[job] != agent:
			t.Errorf("%s moved from %s to %s when agent-2 left", job, agent, s2.Jobs[job])
		}
	}
	if _, ok := s2.Rings["b"]; ok {
		t.Errorf("zone b still has a ring: %v", s2.Rings["b"])
	}

	// agent-1's connection is cut: it hears that its schedule is lost,
	// reconnects by itself, and is in the schedule again.
	before := ws[1].count()
	proxy.cut()
	testutil.WaitFor(t, 10*time.Second, "agent-1 told its schedule is lost", func() bool {
		ws[1].mu.Lock()
		defer ws[1].mu.Unlock()
		for _, s := range ws[1].seen[before:] {
			if s.Lost {
				return true
			}
		}
		return false
	})
	s3 := settled("agent-1 back", []string{"agent-0", "agent-1"})
	if !s3.Newer(s2) {
		t.Errorf("schedule after the reconnection %d.%d not newer than %d.%d", s3.Epoch, s3.Version, s2.Epoch, s2.Version)
	}
	if !maps.Equal(s3.Jobs, s2.Jobs) {
		t.Errorf("agent-1 reconnected within its grace, yet jobs moved: %v, then %v", s2.Jobs, s3.Jobs)
	}
	for _, w := range ws {
		w.checkOrder(t)
	}
	info, _ := cp.server.Schedule("sched")
	t.Logf("schedule %d.%d after %d changes, %d job moves; agent-1 saw %d schedules", info.Epoch, info.Version, info.Changes, info.Moves, ws[1].count())

	// The operator's view: the admin API and the metrics.
	admin := control.AdminHandler(cp.server, "", nil)
	get := func(path string) string {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	var got control.ScheduleInfo
	if err := json.Unmarshal([]byte(get("/api/vclusters/sched/schedule")), &got); err != nil || got.Version != info.Version || !maps.Equal(got.Jobs, info.Jobs) || got.Members != 2 {
		t.Errorf("schedule from the admin API: %+v (%v), want %+v", got, err, info)
	}
	metrics := get("/metrics")
	want := []string{`floe_control_schedule_members{vcluster="sched"} 2`, fmt.Sprintf(`floe_control_schedule_version{vcluster="sched"} %d`, info.Version),
		`floe_control_ring_members{vcluster="sched",zone="a"} 2`}
	for job, agent := range info.Jobs {
		want = append(want, fmt.Sprintf(`floe_control_job_assignment{agent=%q,job=%q,vcluster="sched"} 1`, agent, job))
	}
	for _, w := range want {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

// overlapDetector fails the test if two agents run one job at once, and
// keeps every run.
type overlapDetector struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]string // job → agent running it
	runs    []jobRun
	overlap int
}

type jobRun struct {
	job, agent string
	start, end time.Time
}

func (d *overlapDetector) begin(job, agent string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if other, ok := d.running[job]; ok {
		d.overlap++
		d.t.Errorf("%s runs %s while %s does", agent, job, other)
	}
	d.running[job] = agent
	return time.Now()
}

func (d *overlapDetector) end(job, agent string, start time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running[job] == agent {
		delete(d.running, job)
	}
	d.runs = append(d.runs, jobRun{job, agent, start, time.Now()})
}

// runsBetween returns, per job, the agents that ran it between from and to.
func (d *overlapDetector) runsBetween(from, to time.Time) map[string][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string][]string{}
	for _, r := range d.runs {
		if r.start.After(from) && r.start.Before(to) && !slices.Contains(out[r.job], r.agent) {
			out[r.job] = append(out[r.job], r.agent)
		}
	}
	return out
}

// trackedJob is a job that takes passTime (or until cancelled) and tells
// the detector.
type trackedJob struct {
	name, agent string
	d           *overlapDetector
	passTime    time.Duration
}

func (j *trackedJob) Name() string { return j.name }

func (j *trackedJob) Run(ctx context.Context, env *jobs.Env) error {
	start := j.d.begin(j.name, j.agent)
	defer j.d.end(j.name, j.agent, start)
	select {
	case <-ctx.Done():
	case <-time.After(j.passTime):
	}
	return nil
}

// TestOverlapDetector: the detector the scheduling tests rely on reports
// two agents in one job.
func TestOverlapDetector(t *testing.T) {
	inner := &testing.T{}
	d := &overlapDetector{t: inner, running: map[string]string{}}
	s := d.begin("cleaner", "a")
	d.begin("cleaner", "b")
	d.end("cleaner", "a", s)
	if d.overlap != 1 {
		t.Fatalf("overlap of two agents not detected (%d)", d.overlap)
	}
}

// scheduledAgent is what an agent on floe:// runs for jobs: a client, the
// schedule watch, and a jobs scheduler following the assignment, under
// the job leases of the vcluster.
type scheduledAgent struct {
	id     string
	client *remote.Client
	cancel context.CancelFunc
	done   chan struct{}
	stop   func()
}

func startScheduledAgent(t *testing.T, addr, key, id string, d *overlapDetector, passTime time.Duration) *scheduledAgent {
	t.Helper()
	c, err := remote.Open(t.Context(), remote.Options{Addr: addr, VCluster: "jobs", Key: key, Logger: testutil.Logger(t).With("agent", id)})
	if err != nil {
		t.Fatal(err)
	}
	names := jobs.StandardNames()
	var js []jobs.Job
	for _, n := range names {
		js = append(js, &trackedJob{name: n, agent: id, d: d, passTime: passTime})
	}
	assignment := jobs.NewAssignment()
	stop, err := c.WatchSchedule(member(id, "z", false, names...), func(s metastore.Schedule) {
		if s.Lost {
			assignment.Set(nil)
			return
		}
		assignment.Set(s.JobsOf(id))
	})
	if err != nil {
		t.Fatal(err)
	}
	sched := jobs.NewScheduler(c, js, jobs.Options{
		Holder: id, Interval: 50 * time.Millisecond, LeaseTTL: time.Second, Concurrency: len(js),
		Assignment: assignment, Logger: testutil.Logger(t).With("agent", id),
	})
	ctx, cancel := context.WithCancel(context.Background())
	a := &scheduledAgent{id: id, client: c, cancel: cancel, done: make(chan struct{}), stop: stop}
	go func() {
		defer close(a.done)
		sched.Run(ctx)
	}()
	t.Cleanup(a.close)
	return a
}

// close stops the agent as a graceful shutdown does: jobs (releasing
// their leases), then the schedule, then the client.
func (a *scheduledAgent) close() {
	a.cancel()
	<-a.done
	a.stop()
	a.client.Close()
}

// kill drops the agent's session without releasing anything, as a
// killed process does; its jobs keep running until their leases fail.
func (a *scheduledAgent) kill() { a.client.Close() }

// TestScheduledJobsRunWhereAssigned runs three agents' job schedulers on
// a vcluster of a real control plane (journal in PostgreSQL): each job
// runs only on the agent the schedule assigns it to; when an agent shuts
// down, or its session drops while its jobs run (a killed agent: it
// releases nothing; its jobs move after the grace period), its jobs move
// to the others, which start them only once its leases are released or
// expired; no job ever runs on two agents at once.
func TestScheduledJobsRunWhereAssigned(t *testing.T) {
	cp := newControlGrace(t, time.Second) // as long as the job leases
	key, err := cp.server.CreateVCluster(t.Context(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	d := &overlapDetector{t: t, running: map[string]string{}}
	const pass = 150 * time.Millisecond
	agents := map[string]*scheduledAgent{}
	for _, id := range []string{"agent-0", "agent-1", "agent-2"} {
		agents[id] = startScheduledAgent(t, cp.addr, key, id, d, pass)
	}

	// steady checks that, once the schedule of the given members has been
	// out for a while, each job runs on its assigned agent only.
	steady := func(what string, want int) metastore.Schedule {
		t.Helper()
		var s metastore.Schedule
		testutil.WaitFor(t, 10*time.Second, what, func() bool {
			info, _ := cp.server.Schedule("jobs")
			s = info.Schedule
			return info.Members == want && info.InGrace == 0 && len(s.Jobs) == 4
		})
		// Leases handed over from a killed agent wait for its TTL.
		time.Sleep(1500 * time.Millisecond)
		from := time.Now()
		time.Sleep(time.Second)
		to := time.Now()
		if info, _ := cp.server.Schedule("jobs"); info.Version != s.Version || info.Epoch != s.Epoch {
			t.Fatalf("%s: the schedule changed while measured", what)
		}
		for job, ran := range d.runsBetween(from, to) {
			if len(ran) != 1 || ran[0] != s.Jobs[job] {
				t.Errorf("%s: %s ran on %v, assigned to %s", what, job, ran, s.Jobs[job])
			}
		}
		for job := range s.Jobs {
			if len(d.runsBetween(from, to)[job]) == 0 {
				t.Errorf("%s: %s did not run in a second (assigned to %s)", what, job, s.Jobs[job])
			}
		}
		t.Logf("%s: schedule %d.%d, jobs %v", what, s.Epoch, s.Version, s.Jobs)
		return s
	}
	s := steady("three agents", 3)
	used := map[string]bool{}
	for _, a := range s.Jobs {
		used[a] = true
	}
	if len(used) != 3 {
		t.Errorf("4 jobs on 3 agents use %d of them: %v", len(used), s.Jobs)
	}

	// A graceful shutdown of the agent with the most jobs.
	var leaver string
	for id := range agents {
		if leaver == "" || len(s.JobsOf(id)) > len(s.JobsOf(leaver)) {
			leaver = id
		}
	}
	agents[leaver].close()
	delete(agents, leaver)
	s = steady(leaver+" shut down", 2)
	for _, a := range s.Jobs {
		if a == leaver {
			t.Errorf("a job is still assigned to %s", leaver)
		}
	}

	// A kill of one of the two left, while its jobs run: its leases
	// expire (1s) before the other agent takes them.
	var victim string
	for id := range agents {
		if len(s.JobsOf(id)) > 0 {
			victim = id
			break
		}
	}
	agents[victim].kill()
	s = steady(victim+" killed", 1)
	if len(s.JobsOf(victim)) != 0 {
		t.Errorf("jobs still assigned to %s: %v", victim, s.Jobs)
	}
	info, _ := cp.server.Schedule("jobs")
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Logf("%d runs recorded, %d overlaps; %d schedules, %d job moves", len(d.runs), d.overlap, info.Changes, info.Moves)
}

// TestScheduleFailover: two control processes share a journal; the
// leader dies without releasing anything. The agents reconnect to the
// standby once it took the vcluster over, get a schedule of a newer
// epoch, and run every job again, never two agents one job (the job
// leases were replayed from the journal with the rest of the state).
func TestScheduleFailover(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	a := startControlTTL(t, dbURL, ttl)
	key, err := a.server.CreateVCluster(t.Context(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlTTL(t, dbURL, ttl)
	d := &overlapDetector{t: t, running: map[string]string{}}
	addrs := a.addr + "," + b.addr
	for _, id := range []string{"agent-0", "agent-1"} {
		startScheduledAgent(t, addrs, key, id, d, 100*time.Millisecond)
	}
	var before control.ScheduleInfo
	testutil.WaitFor(t, 10*time.Second, "both agents scheduled by the leader", func() bool {
		before, _ = a.server.Schedule("jobs")
		return before.Members == 2 && len(before.Jobs) == 4
	})
	time.Sleep(time.Second)
	control.Crash(a.server)
	crashed := time.Now()

	var after control.ScheduleInfo
	testutil.WaitFor(t, 30*time.Second, "both agents scheduled by the standby", func() bool {
		after, _ = b.server.Schedule("jobs")
		return after.Members == 2 && len(after.Jobs) == 4
	})
	t.Logf("taken over %v after the crash: schedule %d.%d (was %d.%d), jobs %v", time.Since(crashed).Round(time.Millisecond),
		after.Epoch, after.Version, before.Epoch, before.Version, after.Jobs)
	if !after.Newer(before.Schedule) || after.Epoch <= before.Epoch {
		t.Errorf("the standby's schedule %d.%d is not of a newer epoch than %d.%d", after.Epoch, after.Version, before.Epoch, before.Version)
	}
	// Every job runs again, on its assigned agent (a lease of the dead
	// leader's time expires first).
	resumed := time.Now()
	testutil.WaitFor(t, 15*time.Second, "every job running again", func() bool {
		return len(d.runsBetween(resumed, time.Now())) == 4
	})
	time.Sleep(500 * time.Millisecond)
	from := time.Now()
	time.Sleep(time.Second)
	for job, ran := range d.runsBetween(from, time.Now()) {
		if len(ran) != 1 || ran[0] != after.Jobs[job] {
			t.Errorf("after the failover %s ran on %v, assigned to %s", job, ran, after.Jobs[job])
		}
	}
}

// TestScheduleRefusesHostileMembers: what an agent announces is checked
// before it counts: too large, malformed, or over the bounds of names and
// jobs, the subscription is refused with an error answer and the
// schedule has no member.
func TestScheduleRefusesHostileMembers(t *testing.T) {
	cp := newControl(t)
	key, err := cp.server.CreateVCluster(t.Context(), "hostile-sched")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", metastore.MaxScheduleNameLen+1)
	tooMany := make([]string, metastore.MaxScheduleJobs+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("job-", i)
	}
	ok := member("agent-1", "z", true, "cleaner")
	cases := map[string]remote.RawMessage{
		"not a member":   must(remote.Marshal([]int{5})),
		"too large":      must(remote.Marshal(map[string]string{"Pad": strings.Repeat("p", remote.MaxScheduleArgs)})),
		"long agent id":  must(remote.Marshal(metastore.ScheduleMember{Agent: metastore.AgentInfo{ID: long}})),
		"long job name":  must(remote.Marshal(metastore.ScheduleMember{Agent: ok.Agent, Jobs: []string{long}})),
		"empty job name": must(remote.Marshal(metastore.ScheduleMember{Agent: ok.Agent, Jobs: []string{""}})),
		"too many jobs":  must(remote.Marshal(metastore.ScheduleMember{Agent: ok.Agent, Jobs: tooMany})),
		"long zone":      must(remote.Marshal(metastore.ScheduleMember{Agent: metastore.AgentInfo{ID: "a", Zone: long}})),
		"many roles":     must(remote.Marshal(metastore.ScheduleMember{Agent: metastore.AgentInfo{ID: "a", Roles: make([]string, 17)}})),
	}
	nc, err := net.Dial("tcp", cp.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	w := bufio.NewWriter(nc)
	r := bufio.NewReader(nc)
	send := func(kind byte, id uint64, payload []byte) remote.Frame {
		t.Helper()
		b, err := remote.AppendFrame(nil, remote.Frame{Kind: kind, ID: id, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Flush()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		// A member's session also receives the schedule pushed to it
		// (KindSchedule), in any order against the answer: skip those.
		for range 100 {
			f, err := remote.ReadFrame(r)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if f.Kind != remote.KindSchedule {
				return f
			}
		}
		t.Fatal("no answer among 100 schedule frames")
		return remote.Frame{}
	}
	send(remote.KindHello, 0, must(remote.Marshal(remote.Hello{V: remote.Version, VCluster: "hostile-sched", Key: key})))
	var id uint64
	for name, args := range cases {
		id++
		f := send(remote.KindRequest, id, must(remote.Marshal(remote.Request{Op: remote.OpSchedule, Args: args})))
		var resp remote.Response
		if f.Kind != remote.KindResponse || remote.Unmarshal(f.Payload, &resp) != nil || resp.Err == nil {
			t.Errorf("%s: answered %d %+v, want an error", name, f.Kind, resp)
			continue
		}
		t.Logf("%s: %s", name, resp.Err.Msg)
	}
	if info, _ := cp.server.Schedule("hostile-sched"); info.Members != 0 || info.Version != 0 {
		t.Errorf("refused subscriptions made members: %+v", info)
	}
	// The session still works: a valid member joins.
	id++
	f := send(remote.KindRequest, id, must(remote.Marshal(remote.Request{Op: remote.OpSchedule, Args: must(remote.Marshal(ok))})))
	var resp remote.Response
	var s metastore.Schedule
	if remote.Unmarshal(f.Payload, &resp) != nil || resp.Err != nil || remote.Unmarshal(resp.Result, &s) != nil || s.Jobs["cleaner"] != "agent-1" {
		t.Fatalf("valid member: %+v, schedule %+v", resp, s)
	}
}

// TestScheduleChurn cuts the agents' connections again and again while
// their jobs run (each agent reconnects by itself; without a grace
// period the schedule moves its jobs away and back): no job ever runs on
// two agents at once, and every job keeps running.
func TestScheduleChurn(t *testing.T) {
	for _, grace := range []time.Duration{-1, 2 * time.Second} {
		t.Run(fmt.Sprint("grace ", max(grace, 0)), func(t *testing.T) { scheduleChurn(t, grace) })
	}
}

func scheduleChurn(t *testing.T, grace time.Duration) {
	cp := newControlGrace(t, grace)
	key, err := cp.server.CreateVCluster(t.Context(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	d := &overlapDetector{t: t, running: map[string]string{}}
	var proxies []*cutProxy
	for i := range 3 {
		p := newCutProxy(t, cp.addr)
		proxies = append(proxies, p)
		startScheduledAgent(t, p.addr(), key, fmt.Sprintf("agent-%d", i), d, 80*time.Millisecond)
	}
	testutil.WaitFor(t, 10*time.Second, "three agents scheduled", func() bool {
		info, _ := cp.server.Schedule("jobs")
		return info.Members == 3
	})
	r := rand.New(rand.NewPCG(7, 7))
	start := time.Now()
	const cuts = 20
	for range cuts {
		time.Sleep(time.Duration(100+r.IntN(300)) * time.Millisecond)
		proxies[r.IntN(len(proxies))].cut()
	}
	// Once the cuts stop, every job runs again.
	calm := time.Now()
	testutil.WaitFor(t, 15*time.Second, "every job running after the cuts", func() bool {
		return len(d.runsBetween(calm, time.Now())) == 4
	})
	info, _ := cp.server.Schedule("jobs")
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Logf("%d cuts in %v: %d passes, %d overlaps; %d schedules, %d job moves", cuts, calm.Sub(start).Round(time.Millisecond), len(d.runs), d.overlap, info.Changes, info.Moves)
}
