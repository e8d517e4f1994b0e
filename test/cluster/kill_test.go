package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// liveAgents is the test's list of running agents, which kcat runs pick
// their bootstrap agent from.
type liveAgents struct {
	mu     sync.Mutex
	agents []*agentProc
}

func (l *liveAgents) set(agents []*agentProc) {
	l.mu.Lock()
	l.agents = slices.Clone(agents)
	l.mu.Unlock()
}

func (l *liveAgents) get() []*agentProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.agents)
}

// pick returns the n-th agent, round robin.
func (l *liveAgents) pick(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.agents[n%len(l.agents)].addr
}

// TestThreeAgentsKillAndReplace runs three agents under load from
// idempotent franz-go producers and kcat runs bootstrapped from every
// agent, with a three-member consumer group (cooperative-sticky, committing
// after every poll) reading through all of them. Mid-run it SIGKILLs the
// agent that coordinates the group, starts a fourth agent and replaces a
// group member. At the end every acknowledged record must be in the log
// at its acknowledged offset, once, in producer order within its
// partition; the group must have consumed every record, restarting each
// partition exactly at its committed offset (a record consumed twice only
// after a failed commit); and the new agent must have served clients.
func TestThreeAgentsKillAndReplace(t *testing.T) {
	kcat := requireKcat(t)
	e := newEnv(t, "")
	agents := []*agentProc{
		startAgent(t, e, "a0", agentOpts{}),
		startAgent(t, e, "a1", agentOpts{}),
		startAgent(t, e, "a2", agentOpts{}),
	}
	waitForView(t, agents, 15*time.Second)
	const (
		franzTopic = "orders"
		kcatTopic  = "events"
		group      = "cluster-readers"
	)
	topics := []string{franzTopic, kcatTopic}
	createTopic(t, agents[0].addr, franzTopic, 6)
	createTopic(t, agents[1].addr, kcatTopic, 3)
	live := &liveAgents{}
	live.set(agents)

	tr := newGroupTracker()
	var members []*groupMember
	for i, a := range agents {
		members = append(members, startMember(t, tr, i, a.addr, group, topics...))
	}
	waitAssigned(t, tr, 9, 3, 30*time.Second)

	led := newLedger()
	franz := startFranzProducers(t, led, addrs(agents), loadSpec{topic: franzTopic, partitions: 6, rate: 300, size: 150})
	kc := startKcat(t, led, kcat, 3, 200, loadSpec{topic: kcatTopic, partitions: 3, size: 150}, live.pick)

	time.Sleep(5 * time.Second)
	victim := coordinatorOf(t, agents, group)
	sent, acked, _ := led.counts()
	t.Logf("SIGKILL agent %s (node %d, the group's coordinator): %d records sent, %d acknowledged so far", victim.name, victim.nodeID, sent, acked)
	victim.kill(t)
	survivors := slices.DeleteFunc(slices.Clone(agents), func(a *agentProc) bool { return a == victim })
	live.set(survivors)

	time.Sleep(time.Second)
	a3 := startAgent(t, e, "a3", agentOpts{})
	agents = append(survivors, a3)
	live.set(agents)

	time.Sleep(3 * time.Second)
	t.Logf("member 0 leaves the group; member 3 joins through the new agent %s", a3.name)
	members[0].close()
	members = append(members, startMember(t, tr, 3, a3.addr, group, topics...))

	time.Sleep(5 * time.Second)
	franz.finish(t, 60*time.Second)
	kc.finish(t)
	sent, acked, failed := led.counts()
	t.Logf("load stopped: %d records sent, %d acknowledged, %d failed; kcat: %d runs, %d not fully delivered",
		sent, acked, failed, kc.runs.Load(), kc.failedRun.Load())

	hwm := endOffsets(t, addrs(agents), "", topics...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, behind := tr.caughtUp(hwm)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group not caught up 60s after the load stopped: %s", behind)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, m := range members {
		m.close()
		for e, n := range m.errs {
			t.Logf("member %d fetch error %d×: %s", m.id, n, e)
		}
	}

	log := verifyLog(t, addrs(agents), "", led, topics...)
	tr.check(t, log)

	// The fourth agent took part: clients bootstrapped from it, and it
	// served produce and fetch requests for the partitions it leads.
	m, err := a3.metrics()
	if err != nil {
		t.Fatal(err)
	}
	led3 := 0
	for _, id := range leaders(t, addrs(agents), topics...) {
		if id == a3.nodeID {
			led3++
		}
	}
	metadata := m.sum("floe_request_duration_seconds_count", "api", "Metadata")
	produced := m.sum("floe_request_duration_seconds_count", "api", "Produce")
	fetched := m.sum("floe_request_duration_seconds_count", "api", "Fetch")
	t.Logf("new agent %s leads %d of 9 partitions and served %.0f metadata, %.0f produce and %.0f fetch requests", a3.name, led3, metadata, produced, fetched)
	if metadata == 0 || led3 > 0 && (produced == 0 || fetched == 0) {
		t.Errorf("new agent %s (leading %d partitions) served %.0f metadata, %.0f produce and %.0f fetch requests; want all > 0", a3.name, led3, metadata, produced, fetched)
	}
}

// leaders returns the node id leading each partition of topics.
func leaders(t *testing.T, seeds []string, topics ...string) map[tp]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, topics...)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	out := map[tp]int32{}
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			out[tp{td.Topic, p.Partition}] = p.Leader
		}
	}
	return out
}

// waitAssigned waits until the group's members own all partitions, each
// member some.
func waitAssigned(t *testing.T, tr *groupTracker, partitions, members int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tr.mu.Lock()
		owned, busy := 0, 0
		for _, ps := range tr.open {
			owned += len(ps)
			if len(ps) > 0 {
				busy++
			}
		}
		tr.mu.Unlock()
		if owned == partitions && busy == members {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group: %d of %d partitions assigned, %d of %d members with partitions after %v", owned, partitions, busy, members, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// coordinatorOf returns the agent coordinating group.
func coordinatorOf(t *testing.T, agents []*agentProc, group string) *agentProc {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs(agents)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := kadm.NewClient(cl).FindGroupCoordinators(ctx, group)
	c, ok := resp[group]
	if !ok || c.Err != nil {
		t.Fatalf("find coordinator of %s: %v", group, c.Err)
	}
	for _, a := range agents {
		if a.nodeID == c.NodeID {
			return a
		}
	}
	t.Fatalf("coordinator node %d of %s is none of the agents", c.NodeID, group)
	return nil
}
