package cluster

// The control plane's leader killed under load (issue 16): two `floe
// control` processes on one PostgreSQL journal, three agents that list
// both, idempotent producers and a consumer group; the process leading
// the vcluster is SIGKILLed twice, then SIGSTOPped past its lease.

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestControlLeaderKilledUnderLoad runs two control processes with a 2 s
// lease TTL on one journal, a vcluster created through the first, and
// three agents whose --metastore names both processes. Under load from
// three idempotent franz-go producers over six partitions, with a
// three-member consumer group committing after every poll, it SIGKILLs
// the process leading the vcluster (found by its lease epoch on
// /metrics): the other must take the vcluster over once the lease
// expired, and the agents carry on through it. The killed process is
// started again (standing by), and the new leader is SIGKILLed too;
// after a restart again, the third leader is SIGSTOPped until the other
// process took over, then continued: it must stop serving. At
// the end every acknowledged record must be in the log once, at its
// acknowledged offset, in producer order; the group's committed offsets,
// read from the store throughout, must never go back, and the group must
// have consumed everything exactly as the committed offsets say.
func TestControlLeaderKilledUnderLoad(t *testing.T) { controlLeaderKilled(t, false) }

// TestControlLeaderKilledUnderLoadFromSnapshots is the same with the
// control processes backing the vcluster up to the bucket (--bucket,
// a snapshot every second, --trim-journal): each takeover opens the
// vcluster through a warm standby that started from the newest snapshot
// and tailed the journal, survives its trims, and continues the old
// leader's backups; it must hold every acknowledged commit just as a
// whole replay does.
func TestControlLeaderKilledUnderLoadFromSnapshots(t *testing.T) { controlLeaderKilled(t, true) }

var controlReplayed = regexp.MustCompile(`msg="virtual cluster replayed" vcluster=\S+ epoch=(\d+) from_snapshot=(\d+) (?:standby_seq=(\d+) )?batches=(\d+)`)

var controlBackupLines = regexp.MustCompile(`msg="(?:backup adopted from the bucket's listing|warm standby restarted from a snapshot|warm standby drops its state[^"]*)"[^\n]*`)

func controlLeaderKilled(t *testing.T, fromSnapshots bool) {
	const (
		ttl        = 2 * time.Second
		vcluster   = "prod"
		topic      = "orders"
		group      = "control-kill-readers"
		partitions = 6
	)
	e := newPostgresEnv(t, "")
	flags := []string{"--lease-ttl", ttl.String()}
	if fromSnapshots {
		// A key prefix of their own: the agents' cleaner owns theirs.
		flags = append(flags, "--bucket", e.s3.BucketURL(e.s3.Endpoint, e.prefix+"-control"),
			"--snapshot-interval", "1s", "--trim-journal")
	}
	ctls := []*controlProc{startControl(t, e, flags...), startControl(t, e, flags...)}
	for i, c := range ctls {
		c.Name = fmt.Sprintf("control c%d", i)
	}
	key := ctls[0].createVCluster(t, vcluster)
	onControl := *e
	// The agents ping their control connection and give it up after a
	// TTL of silence: a stopped leader keeps them waiting about that long.
	onControl.dbURL = fmt.Sprintf("floe://%s,%s/%s?key=%s&ping_timeout=%v", ctls[0].listen, ctls[1].listen, vcluster, key, ttl)
	agents := []*agentProc{
		startAgent(t, &onControl, "a0", agentOpts{}),
		startAgent(t, &onControl, "a1", agentOpts{}),
		startAgent(t, &onControl, "a2", agentOpts{}),
	}
	waitForView(t, client{}, agents, 15*time.Second)
	createTopic(t, client{}, agents[0].addr, topic, partitions)

	tr := newGroupTracker()
	for i, a := range agents {
		startMember(t, tr, i, client{}, a.addr, group, topic)
	}
	waitAssigned(t, tr, partitions, 3, 30*time.Second)

	led := newLedger()
	acks := watchAcks(t, led)
	stored := watchCommitted(t, addrs(agents), group)
	franz := startFranzProducers(t, led, addrs(agents), loadSpec{topic: topic, partitions: partitions, rate: 300, size: 150})
	start := time.Now()

	time.Sleep(4 * time.Second)
	var failovers []failover
	for range 2 {
		f := failControlLeader(t, ctls, vcluster, agents, led, acks, ttl, false)
		failovers = append(failovers, f)
		if err := f.old.Start(context.Background()); err != nil {
			t.Fatalf("restart %s: %v\n%s", f.old.Name, err, f.old.log.Tail(50))
		}
		t.Logf("%s started again on %s (standing by)", f.old.Name, f.old.listen)
		time.Sleep(3 * time.Second)
	}
	// A leader that hangs instead of dying: stopped until the agents
	// found the new leader (their pings unanswered), it must not serve
	// once it runs again.
	failovers = append(failovers, failControlLeader(t, ctls, vcluster, agents, led, acks, ttl, true))
	time.Sleep(3 * time.Second)

	franz.finish(t, 60*time.Second)
	sent, acked, failed := led.counts()
	t.Logf("load stopped after %v: %d records sent, %d acknowledged, %d failed", time.Since(start).Round(time.Millisecond), sent, acked, failed)
	for i, f := range failovers {
		t.Logf("failover %d: %s", i+1, f)
	}

	hwm := endOffsets(t, addrs(agents), client{}, topic)
	tr.waitCaughtUp(t, hwm)
	stored.check(t, hwm)

	log := verifyLog(t, addrs(agents), client{}, led, topic)
	tr.check(t, log)

	// How each process opened the vcluster: from which snapshot, from
	// which warm standby's state, how many journal batches replayed
	// after it. A process restarted during the run stands by for 3 s
	// before the next failure, so every takeover is by a warm standby;
	// with the bucket, the standbys of restarted processes start from a
	// snapshot.
	takeovers, fromSnapshot, fromStandby := 0, 0, 0
	for _, c := range ctls {
		for _, m := range controlReplayed.FindAllStringSubmatch(c.log.String(), -1) {
			standby := m[3]
			if standby == "" {
				standby = "0"
			}
			t.Logf("%s opened %s at epoch %s: from the snapshot at batch %s, the warm standby at batch %s, %s batches replayed", c.Name, vcluster, m[1], m[2], standby, m[4])
			if m[1] != "1" {
				takeovers++
				if m[2] != "0" {
					fromSnapshot++
				}
				if standby != "0" {
					fromStandby++
				}
			}
		}
	}
	// With the bucket, how each new leader found the backups (from the
	// listing: no object read) and whether a standby had to load a
	// snapshot again after a trim.
	for _, c := range ctls {
		for _, line := range controlBackupLines.FindAllString(c.log.String(), -1) {
			t.Logf("%s: %s", c.Name, line)
		}
	}
	if takeovers != len(failovers) || fromStandby != takeovers {
		t.Errorf("%d takeovers logged for %d failovers, %d of them by a warm standby: want every one", takeovers, len(failovers), fromStandby)
	}
	if fromSnapshots && fromSnapshot < 2 {
		t.Errorf("%d of %d takeovers started from a snapshot, want at least 2 (a snapshot every second; the standbys of the restarted processes load the newest)", fromSnapshot, takeovers)
	}
}

// failover is what one SIGKILL (or SIGSTOP) of the control leader showed.
type failover struct {
	signal       string
	old, took    *controlProc
	epoch, next  int // lease epochs of the old leader and its successor
	acked        int // records acknowledged when it failed
	takeover     time.Duration
	resumed      time.Duration // first acknowledgement after the takeover, from the kill
	stall        time.Duration // longest time without an acknowledgement around it
	commitErrors float64       // failed segment commits on the agents meanwhile
}

func (f failover) String() string {
	return fmt.Sprintf("%s %s (epoch %d) with %d records acknowledged; %s took over at epoch %d after %v; acknowledgements resumed %v after the kill, longest stall %v; %.0f segment commits failed on the agents",
		f.signal, f.old.Name, f.epoch, f.acked, f.took.Name, f.next, f.takeover.Round(time.Millisecond), f.resumed.Round(time.Millisecond), f.stall.Round(time.Millisecond), f.commitErrors)
}

// failControlLeader SIGKILLs the process leading vcluster (or, if
// pause, SIGSTOPs it) and waits until another takes it over and
// acknowledgements resume. A paused leader is continued once the other
// took over, and must then stop serving the vcluster: its lease is lost.
func failControlLeader(t *testing.T, ctls []*controlProc, vcluster string, agents []*agentProc, led *ledger, acks *ackWatch, ttl time.Duration, pause bool) failover {
	t.Helper()
	leader, epoch := controlLeader(t, ctls, vcluster, 15*time.Second)
	errsBefore := sumMetric(t, agents, "floe_segment_flushes_total", "result", "commit_error")
	_, ackedBefore, _ := led.counts()
	f := failover{signal: "SIGKILL", old: leader, epoch: epoch, acked: ackedBefore}
	if pause {
		f.signal = "SIGSTOP"
	}
	t.Logf("%s %s, leading %s at epoch %d: %d records acknowledged so far", f.signal, leader.Name, vcluster, epoch, ackedBefore)
	failedAt := time.Now()
	var err error
	if pause {
		err = leader.Pause()
	} else {
		err = leader.Kill()
	}
	if err != nil {
		t.Fatalf("%s %s: %v", f.signal, leader.Name, err)
	}
	deadline := failedAt.Add(10 * ttl)
	for f.took == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no control process took %s over %v after its leader died", vcluster, 10*ttl)
		}
		time.Sleep(25 * time.Millisecond)
		for _, c := range ctls {
			if c == leader {
				continue
			}
			if e, _ := c.epoch(vcluster); e > epoch {
				f.took, f.next = c, e
			}
		}
	}
	f.takeover = time.Since(failedAt)
	tookAt := time.Now()
	resume := func() {
		if pause {
			if err := leader.Resume(); err != nil {
				t.Fatalf("SIGCONT %s: %v", leader.Name, err)
			}
		}
	}
	// The old leader never released its lease: no other process may
	// lead before it expired, at least TTL − TTL/5 after its last renewal
	// (which is at most TTL/5 before the kill).
	if f.takeover < ttl/2 {
		t.Errorf("%s took %s over %v after the leader died: before its lease (TTL %v) could expire", f.took.Name, vcluster, f.takeover, ttl)
	}
	// A stopped leader stays stopped until acknowledgements resume: the
	// agents must leave it by themselves (their pings go unanswered),
	// not when it runs again and closes their sessions.
	resumedAt, ok := acks.firstAfter(tookAt, 30*time.Second)
	resume()
	if !ok {
		t.Fatalf("no record acknowledged within 30s of the takeover by %s (old leader %s)", f.took.Name, f.signal)
	}
	f.resumed = resumedAt.Sub(failedAt)
	f.stall = acks.longestGap(failedAt.Add(-time.Second), resumedAt)
	// Loosely bounded (a loaded machine is slow, not 2 minutes slow):
	// before pings, agents stayed on a stopped leader until its
	// connections broke or their mutations' 2-minute timeout.
	if limit := 15 * ttl; f.stall > limit {
		t.Errorf("%s: no record acknowledged for %v, want well below the agents' 2-minute mutation timeout (at most %v)", f.signal, f.stall, limit)
	}
	f.commitErrors = sumMetric(t, agents, "floe_segment_flushes_total", "result", "commit_error") - errsBefore
	if pause {
		// Continued, the old leader finds its lease lost (its local
		// deadline passed, or its renewal finds a newer epoch) and drops
		// the vcluster.
		for deadline := time.Now().Add(10 * time.Second); ; {
			e, err := leader.epoch(vcluster)
			if err == nil && e == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still serves %s at epoch %d (%v) 10s after it was continued; %s leads at epoch %d", leader.Name, vcluster, e, err, f.took.Name, f.next)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%s took over %s at epoch %d after %v; acknowledgements resumed %v after the kill", f.took.Name, vcluster, f.next, f.takeover.Round(time.Millisecond), f.resumed.Round(time.Millisecond))
	return f
}

// controlLeader waits until exactly one of ctls serves vcluster and
// returns it with its lease epoch.
func controlLeader(t *testing.T, ctls []*controlProc, vcluster string, timeout time.Duration) (*controlProc, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []*controlProc
		epoch := 0
		for _, c := range ctls {
			if e, _ := c.epoch(vcluster); e > 0 {
				leaders, epoch = append(leaders, c), e
			}
		}
		if len(leaders) == 1 {
			return leaders[0], epoch
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d control processes serve %s after %v, want 1", len(leaders), vcluster, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// epoch is the lease epoch under which c serves vcluster, from its
// /metrics (floe_control_vcluster_epoch); 0 if it does not serve it or
// does not answer.
func (c *controlProc) epoch(vcluster string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: %s", c.admin, resp.Status)
	}
	m, err := parseProm(resp.Body)
	if err != nil {
		return 0, err
	}
	return int(m.sum("floe_control_vcluster_epoch", "vcluster", vcluster)), nil
}

// ackWatch samples the ledger's count of acknowledged records every
// 10 ms and keeps the times at which it grew.
type ackWatch struct {
	mu    sync.Mutex
	times []time.Time
}

func watchAcks(t *testing.T, led *ledger) *ackWatch {
	w := &ackWatch{}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		last := 0
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				if _, acked, _ := led.counts(); acked != last {
					last = acked
					w.mu.Lock()
					w.times = append(w.times, now)
					w.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() { close(quit); <-done })
	return w
}

// firstAfter waits at most timeout for an acknowledgement seen after at.
func (w *ackWatch) firstAfter(at time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		i, _ := slices.BinarySearchFunc(w.times, at, func(x, at time.Time) int { return x.Compare(at) })
		var found time.Time
		if i < len(w.times) {
			found = w.times[i]
		}
		w.mu.Unlock()
		if !found.IsZero() {
			return found, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// longestGap is the longest time in [from, to] without an acknowledgement.
func (w *ackWatch) longestGap(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, gap := from, time.Duration(0)
	for _, at := range w.times {
		if at.Before(from) {
			continue
		}
		if at.After(to) {
			break
		}
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return max(gap, to.Sub(prev))
}

// committedWatch reads a group's committed offsets from the store
// (OffsetFetch through the agents) every 250 ms and notes any partition
// whose committed offset went back.
type committedWatch struct {
	mu       sync.Mutex
	last     map[tp]int64
	reads    int
	failures map[string]int
	problems problems
	adm      *kadm.Client
	group    string
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func watchCommitted(t *testing.T, seeds []string, group string) *committedWatch {
	t.Helper()
	w := &committedWatch{last: map[tp]int64{}, failures: map[string]int{}, quit: make(chan struct{}), done: make(chan struct{})}
	cl := client{}.newClient(t, seeds)
	w.adm, w.group = kadm.NewClient(cl), group
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(250 * time.Millisecond):
			}
			w.read()
		}
	}()
	t.Cleanup(func() { w.stop(); cl.Close() })
	return w
}

// read reads the committed offsets once and reports whether it could.
func (w *committedWatch) read() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	got, err := w.adm.FetchOffsets(ctx, w.group)
	cancel()
	if err == nil {
		err = got.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failures[err.Error()]++
		return false
	}
	w.reads++
	got.Each(func(o kadm.OffsetResponse) {
		x := tp{o.Topic, o.Partition}
		if prev, ok := w.last[x]; ok && o.At < prev {
			w.problems.add("%s: committed offset %d read after %d (went back)", x, o.At, prev)
		}
		w.last[x] = max(w.last[x], o.At)
	})
	return true
}

func (w *committedWatch) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

// check stops the watch, reads the offsets once more, reports the
// offsets that went back, and requires that last read of every partition
// to be its high watermark (everything consumed).
func (w *committedWatch) check(t *testing.T, hwm map[tp]int64) {
	t.Helper()
	w.stop()
	for deadline := time.Now().Add(10 * time.Second); !w.read(); {
		if time.Now().After(deadline) {
			t.Errorf("committed offsets: no read of the store succeeded in 10s")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("committed offsets read from the store %d times (failed reads: %v)", w.reads, w.failures)
	for _, s := range w.problems.list {
		t.Errorf("committed offsets: %s", s)
	}
	for _, x := range sortedTPs(hwm) {
		if w.last[x] != hwm[x] {
			t.Errorf("committed offsets: %s last read %d, high watermark %d", x, w.last[x], hwm[x])
		}
	}
}
