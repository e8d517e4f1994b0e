package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestDatabaseRestartDuringLoad stops the metadata database (pg_ctl stop
// -m fast) for about 3 s while three agents take produce load, then
// starts it again. The test runs its own PostgreSQL server on a free port,
// so that stopping it cannot disturb other tests using the shared one.
//
// While the database is down, produce requests must fail with retriable
// error codes only (a probe sends one-record requests to every agent and
// keeps every answer); soon after it is back they must succeed on every
// agent again; each agent's commit listener (LISTEN) must reconnect, so
// that a fetch waiting on one agent wakes when another commits;
// idempotent franz-go producers, which retry, must lose nothing and
// duplicate nothing.
func TestDatabaseRestartDuringLoad(t *testing.T) {
	requireServices(t)
	pg := startPostgres(t)
	e := newEnv(t, pg.url())
	agents := []*agentProc{
		startAgent(t, e, "a0", agentOpts{}),
		startAgent(t, e, "a1", agentOpts{}),
		startAgent(t, e, "a2", agentOpts{}),
	}
	waitForView(t, e.admin(), agents, 15*time.Second)
	const topic = "db-restart"
	createTopic(t, e.admin(), agents[0].addr, topic, 6)

	led := newLedger()
	franz := startFranzProducers(t, led, addrs(agents), loadSpec{topic: topic, partitions: 6, rate: 400, size: 200, as: e.as(producerUser)})
	pr := newProbes()
	defer pr.stop()
	for i, a := range agents {
		pr.produceProbe(a.name, a.addr, tp{topic, int32(i)}, led, 50*time.Millisecond)
	}

	time.Sleep(3 * time.Second)
	sent, acked, _ := led.counts()
	down := time.Now()
	pg.stop(t)
	stopped := time.Now()
	t.Logf("PostgreSQL stopped in %v (%d records sent, %d acknowledged so far)", stopped.Sub(down).Round(time.Millisecond), sent, acked)
	time.Sleep(3 * time.Second)
	starting := time.Now()
	pg.start(t)
	up := time.Now()
	t.Logf("PostgreSQL started again after %v down", up.Sub(stopped).Round(time.Millisecond))

	// Every agent's produce requests succeed again, within a bound.
	const recoverWithin = 15 * time.Second
	recovered := map[string]time.Duration{}
	ok := waitUntil(recoverWithin, func() bool {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		for _, a := range agents {
			if _, done := recovered[a.name]; done {
				continue
			}
			// Recovered: the last three answers, all sent after the
			// restart, succeeded.
			rs := pr.results[a.name]
			n := 0
			for i := len(rs) - 1; i >= 0 && n < 3 && rs[i].start.After(up) && rs[i].err == nil && rs[i].code == 0; i-- {
				n++
			}
			if n == 3 {
				first := rs[len(rs)-3]
				recovered[a.name] = first.end.Sub(up)
			}
		}
		return len(recovered) == len(agents)
	})
	if !ok {
		for _, a := range agents {
			pr.mu.Lock()
			rs := pr.results[a.name]
			pr.mu.Unlock()
			t.Logf("probe %s after the restart: %v", a.name, summarize(rs, up, time.Now()))
		}
		t.Fatalf("produce requests did not succeed on every agent within %v of the database's restart (recovered: %v)", recoverWithin, recovered)
	}
	time.Sleep(2 * time.Second)
	pr.stop()
	franz.finish(t, 60*time.Second)
	end := time.Now()

	// What the probes saw before, during and after.
	failedDuring := 0
	for _, a := range agents {
		pr.mu.Lock()
		rs := pr.results[a.name]
		pr.mu.Unlock()
		before, during, after := summarize(rs, time.Time{}, down), summarize(rs, down, up), summarize(rs, up, end)
		t.Logf("probe %s: before: %v", a.name, before)
		t.Logf("probe %s: database down: %v", a.name, during)
		t.Logf("probe %s: after the restart: %v; all succeeded again %v after it", a.name, after, recovered[a.name].Round(time.Millisecond))
		failedDuring += during.retriable
		for when, s := range map[string]probeSummary{"before the stop": before, "while the database was down": during, "after the restart": after} {
			if s.fatal > 0 || s.transport > 0 {
				t.Errorf("agent %s %s: %d non-retriable errors and %d dropped connections (%v); want retriable error codes only", a.name, when, s.fatal, s.transport, s.codes)
			}
		}
		if before.ok == 0 {
			t.Errorf("agent %s: no produce succeeded before the database stopped", a.name)
		}
	}
	if failedDuring == 0 {
		t.Errorf("no produce request failed while the database was down: the test did not test anything")
	}
	for _, a := range agents {
		t.Logf("agent %s logged %d failed heartbeats", a.name, strings.Count(a.stderr.String(), `msg="heartbeat failed"`))
	}

	// Commit notices cross agents again: each agent's LISTEN connection
	// came back, and a fetch waiting on one agent wakes when another
	// agent commits. On the control plane the database is its journal:
	// a failed append makes the leader rebuild the vcluster (or lose its
	// lease to the other process) and close the agents' sessions, and
	// the notices come back with their new connections.
	reconnected := `msg="commit listener reconnected"`
	if onControlPlane() {
		reconnected = `msg="reconnected to the control plane"`
	}
	for _, a := range agents {
		var at time.Time
		if !waitUntil(15*time.Second, func() bool {
			at = logTime(a.stderr.String(), reconnected)
			return !at.IsZero()
		}) {
			t.Fatalf("agent %s: no %s 15s after the database's restart", a.name, reconnected)
		}
		t.Logf("agent %s: %s %v after pg_ctl start began (it returned after %v)", a.name, reconnected, at.Sub(starting).Round(time.Millisecond), up.Sub(starting).Round(time.Millisecond))
	}
	for i, a := range agents {
		b := agents[(i+1)%len(agents)]
		took := wakeupLatency(t, led, a, b, tp{topic, 5})
		t.Logf("a fetch waiting on %s woke %v after %s's produce was sent", a.name, took.Round(time.Millisecond), b.name)
		if took > time.Second {
			t.Errorf("a fetch waiting on %s took %v to see a record produced through %s; commit notices are not crossing agents", a.name, took, b.name)
		}
	}
	verifyLog(t, addrs(agents), e.admin(), led, topic)
}

// logTime returns the time of the last agent log line containing substr,
// or the zero time.
func logTime(log, substr string) time.Time {
	i := strings.LastIndex(log, substr)
	if i < 0 {
		return time.Time{}
	}
	line := log[strings.LastIndexByte(log[:i], '\n')+1 : i]
	v, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}
	}
	v, _, _ = strings.Cut(v, " ")
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return at
}
