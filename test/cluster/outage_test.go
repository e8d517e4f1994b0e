package cluster

// Producing through a metadata store outage (docs/design.md, "Producing
// through a metadata outage"): agents on `floe control` with
// --produce-through-metastore-outage keep acknowledging while the control
// process is dead for 60 s, and every acknowledged record is in the log
// once afterwards, in each partition in the order it was acknowledged.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// streamPart is one producer's records in one partition.
type streamPart struct {
	tp
	stream string
}

// outageAcks is what the producers were told, per producer and partition
// in the order the acknowledgements came.
type outageAcks struct {
	mu       sync.Mutex
	order    map[streamPart][]string
	offsets  map[string]int64 // value → acknowledged offset (-1: not known yet)
	at       []time.Time      // every acknowledgement's time
	unknown  int              // acknowledged with offset -1
	failed   int
	errKinds map[string]int
}

func (a *outageAcks) ack(r *kgo.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	stream, _, _ := parseValue(string(r.Value))
	x := streamPart{tp{r.Topic, r.Partition}, stream}
	a.order[x] = append(a.order[x], string(r.Value))
	a.offsets[string(r.Value)] = r.Offset
	a.at = append(a.at, time.Now())
	if r.Offset < 0 {
		a.unknown++
	}
}

func (a *outageAcks) fail(err error) {
	a.mu.Lock()
	a.failed++
	a.errKinds[err.Error()]++
	a.mu.Unlock()
}

// during counts the acknowledgements in [from, to) and the longest time
// without one there.
func (a *outageAcks) during(from, to time.Time) (n int, gap time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := from
	for _, t := range a.at {
		if t.Before(from) || !t.Before(to) {
			continue
		}
		n++
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return n, max(gap, to.Sub(prev))
}

// TestProduceThroughControlOutage SIGKILLs the only control process under
// load from two idempotent franz-go producers, keeps it dead for 60 s,
// produces with kcat meanwhile, then starts it again.
func TestProduceThroughControlOutage(t *testing.T) {
	e := newEnv(t, "")
	ctl := startControl(t, e)
	onControl := ctl.envOn(t, e, "prod")
	produceThroughOutage(t, onControl, 60*time.Second, noKill, "control process SIGKILLed", func() { ctl.Kill() }, func() {
		if err := ctl.Start(context.Background()); err != nil {
			t.Fatalf("restart control: %v\n%s", err, ctl.log.Tail(50))
		}
	})
}

// TestProduceThroughDatabaseOutage does the same with the agents on
// PostgreSQL, stopped for 20 s (pg_ctl stop -m fast: connections are
// terminated, new ones refused).
func TestProduceThroughDatabaseOutage(t *testing.T) {
	requireServices(t)
	pg := startPostgres(t)
	e := newEnv(t, pg.url())
	produceThroughOutage(t, e, 20*time.Second, noKill, "PostgreSQL stopped", func() { pg.stop(t) }, func() { pg.start(t) })
}

// TestProduceThroughOutageAgentKilled stops PostgreSQL for 20 s and
// SIGKILLs one of the agents in the middle of it, with the commits it
// queued in the bucket (--outage-manifest-name): started again under the
// same name once the database is back, the agent replays them, and no
// acknowledged record is lost. Order is not checked: the producers'
// later records went through the other agent, committed before the
// restarted agent's replay (docs/design.md).
func TestProduceThroughOutageAgentKilled(t *testing.T) {
	requireServices(t)
	pg := startPostgres(t)
	e := newEnv(t, pg.url())
	produceThroughOutage(t, e, 20*time.Second, killRestart, "PostgreSQL stopped", func() { pg.stop(t) }, func() { pg.start(t) })
}

// TestProduceThroughOutageAgentLost is TestProduceThroughOutageAgentKilled
// with an agent that never comes back: once the database is back,
// `floe outage replay --name` replays the commits the agent left in the
// bucket, and no acknowledged record is lost.
func TestProduceThroughOutageAgentLost(t *testing.T) {
	requireServices(t)
	pg := startPostgres(t)
	e := newEnv(t, pg.url())
	produceThroughOutage(t, e, 20*time.Second, killReplay, "PostgreSQL stopped", func() { pg.stop(t) }, func() { pg.start(t) })
}

// killMode says whether an agent is SIGKILLed during the outage, and
// what becomes of it.
type killMode int

const (
	noKill      killMode = iota
	killRestart          // started again under its manifest name
	killReplay           // never started again: floe outage replay replays its manifests
)

// produceThroughOutage runs two agents with the mode on e's metadata
// store (each with its manifest name), two idempotent franz-go producers
// and an idempotent kcat through them, makes the store unreachable with
// stop for outage, then start again, and checks what the producers were
// told against the log. Unless kill is noKill, the agent with more
// commits queued is SIGKILLed halfway through the outage, and after it started again (killRestart)
// or left dead while `floe outage replay` replays its manifests
// (killReplay).
func produceThroughOutage(t *testing.T, e *env, outage time.Duration, kill killMode, what string, stop, start func()) {
	killAgent := kill != noKill
	const (
		topic      = "through-outage"
		partitions = 4
		rate       = 200 // records per second per producer
	)
	mode := func(name string) agentOpts {
		return agentOpts{extra: []string{"--produce-through-metastore-outage", "--outage-max-duration", "3m", "--outage-manifest-name", name}}
	}
	agents := []*agentProc{startAgent(t, e, "a0", mode("a0")), startAgent(t, e, "a1", mode("a1"))}
	waitForView(t, client{}, agents, 15*time.Second)
	createTopic(t, client{}, agents[0].addr, topic, partitions)

	acks := &outageAcks{order: map[streamPart][]string{}, offsets: map[string]int64{}, errKinds: map[string]int{}}
	quit := make(chan struct{})
	var loops sync.WaitGroup
	var clients []*kgo.Client
	for i, a := range agents {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(a.addr),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.ProducerOnDataLossDetected(func(topic string, p int32) {
				if killAgent {
					// Expected: its later batches reach the store before
					// the restarted agent replays the earlier ones.
					t.Logf("franz-go detected data loss on %s/%d (sequence gap while the killed agent's queue waited)", topic, p)
					return
				}
				t.Errorf("franz-go detected data loss on %s/%d", topic, p)
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
		stream := fmt.Sprintf("f%d", i)
		loops.Add(1)
		go func() {
			defer loops.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for seq := int64(0); ; {
				select {
				case <-quit:
					return
				case <-tick.C:
				}
				for range rate / 50 {
					r := &kgo.Record{Topic: topic, Partition: int32(seq % partitions), Value: makeValue(stream, seq, 100)}
					seq++
					cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
						if err != nil {
							acks.fail(err)
							return
						}
						acks.ack(r)
					})
				}
			}
		}()
	}

	// kcat (librdkafka) produces through the outage too, idempotent: it
	// gets its producer id before the outage (a new idempotent producer
	// cannot start without the store), then writes 20 records during it,
	// which must be acknowledged (exit status 0, no delivery failure)
	// and, after the replay, read back.
	kctx, kcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer kcancel()
	kcat := exec.CommandContext(kctx, "kcat", "-b", agents[1].addr, "-P", "-t", topic, "-p", "0",
		"-X", "enable.idempotence=true", "-X", "message.timeout.ms=30000", "-X", "linger.ms=5")
	kin, err := kcat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var kout bytes.Buffer
	kcat.Stdout, kcat.Stderr = &kout, &kout
	if err := kcat.Start(); err != nil {
		t.Fatalf("kcat: %v", err)
	}
	const kcatBefore, kcatDuring = 10, 20
	for i := range kcatBefore {
		fmt.Fprintf(kin, "%s\n", makeValue("kcat", int64(i), 50))
	}

	time.Sleep(5 * time.Second)
	stop()
	down := time.Now()
	t.Logf("%s; keeping it down %v", what, outage)

	time.Sleep(outage / 6)
	for i := kcatBefore; i < kcatBefore+kcatDuring; i++ {
		fmt.Fprintf(kin, "%s\n", makeValue("kcat", int64(i), 50))
	}
	kin.Close() // kcat flushes and exits
	kerr := kcat.Wait()
	if kerr != nil || strings.Contains(kout.String(), "Delivery failed") || time.Since(down) > outage {
		t.Errorf("kcat during the outage: %v after %v\n%s", kerr, time.Since(down).Round(time.Millisecond), kout.String())
	} else {
		t.Logf("kcat produced %d records during the outage and exited 0, %v after the store went down", kcatDuring, time.Since(down).Round(time.Millisecond))
	}

	var queuedKilled float64
	victim := 1                    // the agent killed, if any
	ackedUntil := down.Add(outage) // the window whose acknowledgements are checked for gaps
	if killAgent {
		time.Sleep(time.Until(down.Add(outage / 2)))
		// The agent with the longer queue is killed: an agent leading
		// none of the partitions (the hash may give them all to the
		// other) queues nothing.
		queuedKilled = sumMetric(t, agents[1:], "floe_outage_queue_segments")
		if q0 := sumMetric(t, agents[:1], "floe_outage_queue_segments"); q0 > queuedKilled {
			victim, queuedKilled = 0, q0
		}
		// The partitions it leads take no records from here until the
		// store is back: no agent can take them over without it.
		ackedUntil = time.Now()
		agents[victim].kill(t)
		t.Logf("agent %s SIGKILLed during the outage with %v segment commits queued", agents[victim].name, queuedKilled)
		if queuedKilled == 0 {
			t.Errorf("agent %s had nothing queued when killed: the test tests nothing", agents[victim].name)
		}
	}
	killed := agents[victim].name
	time.Sleep(time.Until(down.Add(outage)))
	start()
	up := time.Now()
	switch kill {
	case killRestart:
		agents[victim] = startAgent(t, e, killed, mode(killed))
		t.Logf("agent %s started again under its manifest name %v after the store came back", killed, time.Since(up).Round(time.Millisecond))
	case killReplay:
		agents = slices.Delete(agents, victim, victim+1)
		replayLost(t, e, killed)
		t.Logf("floe outage replay --name %s done %v after the store came back", killed, time.Since(up).Round(time.Millisecond))
	}
	n, gap := acks.during(down, up)
	t.Logf("metadata store back after %v: %d records acknowledged meanwhile, longest gap %v", up.Sub(down).Round(time.Millisecond), n, gap.Round(time.Millisecond))
	if want := rate * int(outage/time.Second) / 4; n < want {
		t.Errorf("%d records acknowledged during the %v outage, want at least %d (a quarter of the load)", n, outage, want)
	}
	if _, gap := acks.during(down, ackedUntil); gap > 10*time.Second {
		t.Errorf("no record acknowledged for %v during the outage (before any agent was killed)", gap)
	}
	// A killed agent's counters died with it: what it had queued counts.
	queued := sumMetric(t, agents, "floe_outage_queued_segments_total") + queuedKilled
	t.Logf("segments queued on the agents during the outage: %v, %v of them on the killed agent (segment commits failed instead: %v)", queued, queuedKilled,
		sumMetric(t, agents, "floe_segment_flushes_total", "result", "commit_error"))
	if queued == 0 {
		t.Errorf("no segment was queued: the outage was not seen")
	}

	// The queues drain once the control plane is back.
	deadline := time.Now().Add(45 * time.Second)
	for sumMetric(t, agents, "floe_outage_queue_segments") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outage queues still hold %v segments 45s after the store came back", sumMetric(t, agents, "floe_outage_queue_segments"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if kill == killRestart {
		m := regexp.MustCompile(`msg="outage queue loaded from the bucket[^"]*" segments=(\d+)`).FindStringSubmatch(agents[victim].stderr.String())
		if m == nil {
			t.Errorf("the restarted agent %s loaded no outage queue from the bucket", killed)
		} else {
			t.Logf("the restarted agent %s loaded %s queued commits from the bucket", killed, m[1])
		}
	}
	t.Logf("queues replayed %v after the store came back (replays: %v committed, %v already committed, %v unreachable attempts)",
		time.Since(up).Round(time.Millisecond),
		sumMetric(t, agents, "floe_outage_replays_total", "result", "committed"),
		sumMetric(t, agents, "floe_outage_replays_total", "result", "already_committed"),
		sumMetric(t, agents, "floe_outage_replays_total", "result", "unreachable"))

	time.Sleep(3 * time.Second)
	close(quit)
	loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, cl := range clients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("producer f%d: records unresolved 60s after the load stopped: %v", i, err)
		}
	}

	acks.mu.Lock()
	defer acks.mu.Unlock()
	total := 0
	for _, vs := range acks.order {
		total += len(vs)
	}
	t.Logf("%d records acknowledged (%d without an offset), %d failed", total, acks.unknown, acks.failed)
	for e, n := range acks.errKinds {
		t.Logf("  produce error %d×: %s", n, e)
	}
	if acks.unknown == 0 {
		t.Errorf("no acknowledgement without an offset: nothing was produced through the outage")
	}

	log := readLog(t, addrs(agents), client{}, 60*time.Second, topic)
	where := map[string]int{} // value → index in its partition
	for x, vs := range log {
		for i, v := range vs {
			if _, _, err := parseValue(v); err != nil {
				t.Errorf("%s offset %d: %v", x, i, err)
			}
			if prev, ok := where[v]; ok && killAgent {
				// A batch the killed agent queued (manifest stored) but
				// had not answered yet, retried through the other agent.
				t.Logf("%s: %.30q at offsets %d and %d (duplicated: in the killed agent's queue and retried)", x, v, prev, i)
			} else if ok {
				t.Errorf("%s: %.30q at offsets %d and %d (duplicated)", x, v, prev, i)
			}
			where[v] = i
		}
	}
	lost := 0
	for x, vs := range acks.order {
		last := -1
		for _, v := range vs {
			i, ok := where[v]
			switch {
			case !ok:
				lost++
				if lost <= 10 {
					t.Errorf("%s: acknowledged %.30q is not in the log (LOST)", x, v)
				}
				continue
			case i <= last && !killAgent:
				t.Errorf("%s: %.30q acknowledged after the record at offset %d but stored at %d (reordered)", x, v, last, i)
			}
			if off := acks.offsets[v]; off >= 0 && int64(i) != off && !killAgent {
				t.Errorf("%s: %.30q acknowledged at offset %d, stored at %d", x, v, off, i)
			}
			last = i
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged records lost", lost)
	}
	last := -1
	for i := range kcatBefore + kcatDuring {
		at, ok := where[string(makeValue("kcat", int64(i), 50))]
		switch {
		case !ok && kerr == nil:
			t.Errorf("kcat's record %d, acknowledged, is not in the log", i)
		case ok && at <= last:
			t.Errorf("kcat's record %d at offset %d, after its record at %d (reordered)", i, at, last)
		}
		last = max(last, at)
	}
}

// replayLost runs floe outage list and floe outage replay --name name on
// e's bucket and store, and checks that it replayed something and left
// nothing.
func replayLost(t *testing.T, e *env, name string) {
	t.Helper()
	floe := func(args ...string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, floeBin, args...)
		cmd.Env = append(os.Environ(), e.s3.Env()...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("floe %s: %v\n%s%s", strings.Join(args[:2], " "), err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	list, _ := floe("outage", "list", "--bucket", e.bucketURL(""))
	t.Logf("floe outage list:\n%s", list)
	if !strings.Contains(list, name) {
		t.Errorf("floe outage list shows no manifests of %s", name)
	}
	out, progress := floe("outage", "replay", "--bucket", e.bucketURL(""), "--metastore", e.dbURL, "--name", name, "--timeout", "60s", "--log-level", "warn")
	t.Logf("floe outage replay: %s(progress and log on stderr: %d lines)", out, strings.Count(progress, "\n"))
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (\d+) manifests loaded, 0 left;`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("floe outage replay --name %s replayed nothing:\n%s\n%s", name, out, progress)
	}
	if list, _ := floe("outage", "list", "--bucket", e.bucketURL("")); strings.Contains(list, name) {
		t.Errorf("manifests of %s left after the replay:\n%s", name, list)
	}
}

// TestProduceThroughOutageNameTaken: with agent a0 serving under its
// outage manifest name, a second `floe agent` under that name exits with
// status 2 and names the holder, without loading the name's manifests,
// and `floe outage replay --name a0` refuses; once a0 is SIGKILLed (its
// registration left to lapse) an agent started at once under a0 waits
// for the lapse and serves.
func TestProduceThroughOutageNameTaken(t *testing.T) {
	requireServices(t)
	e := newEnv(t, "")
	mode := agentOpts{extra: []string{"--produce-through-metastore-outage", "--outage-manifest-name", "a0"}}
	a0 := startAgent(t, e, "a0", mode)

	floe := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, floeBin, args...)
		cmd.Env = append(os.Environ(), e.s3.Env()...)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("floe %s still running after 60s:\n%s", strings.Join(args[:2], " "), out)
		}
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("floe %s: %v", strings.Join(args[:2], " "), err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	start := time.Now()
	code, out := floe(agentArgs(e, mode)...)
	took := time.Since(start)
	if code != 2 || !strings.Contains(out, "outage manifest name held by another live agent") ||
		!strings.Contains(out, fmt.Sprintf("at %s", a0.addr)) || strings.Contains(out, "agent listening") {
		t.Fatalf("second agent under a0: exit %d after %v, want 2 naming a0 at %s:\n%s", code, took, a0.addr, lastLines(strings.TrimRight(out, "\n"), 20))
	}
	t.Logf("second agent under a0 exited %d after %v: %s", code, took.Round(time.Millisecond), lastLines(strings.TrimRight(out, "\n"), 1))

	code, out = floe("outage", "replay", "--bucket", e.bucketURL(""), "--metastore", e.dbURL, "--name", "a0", "--timeout", "10s")
	if code == 0 || !strings.Contains(out, "holds this name") {
		t.Fatalf("floe outage replay --name a0 while a0 is live: exit %d:\n%s", code, out)
	}
	t.Logf("floe outage replay --name a0 exited %d: %s", code, lastLines(strings.TrimRight(out, "\n"), 1))

	// A pod restarted at once after a crash: the old registration still
	// holds the name until its TTL runs out.
	a0.kill(t)
	start = time.Now()
	again := startAgent(t, e, "a0", mode)
	t.Logf("agent restarted under a0 right after a SIGKILL served after %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(again.stderr.String(), "waiting for it to lapse") {
		t.Logf("(the killed run's registration had lapsed already)")
	}
}
