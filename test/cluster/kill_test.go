package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
func TestThreeAgentsKillAndReplace(t *testing.T) { killAndReplace(t, false) }

// TestThreeAgentsKillAndReplaceSecure is the same with security on: the
// agents listen for SASL_SSL only and authorize with ACLs; the producers
// (franz-go and kcat) log in as a user granted WRITE on their topics, the
// group's members as one granted READ on the topics and the group, and
// the test's own requests are the super user's. A produce by the
// consumer's user must be refused.
func TestThreeAgentsKillAndReplaceSecure(t *testing.T) { killAndReplace(t, true) }

func killAndReplace(t *testing.T, secure bool) {
	kcat := requireKcat(t)
	e := newEnv(t, "")
	if secure {
		e.secure(t)
	}
	agents := []*agentProc{
		startAgent(t, e, "a0", agentOpts{}),
		startAgent(t, e, "a1", agentOpts{}),
		startAgent(t, e, "a2", agentOpts{}),
	}
	waitForView(t, e.admin(), agents, 15*time.Second)
	const (
		franzTopic = "orders"
		kcatTopic  = "events"
		group      = "cluster-readers"
	)
	topics := []string{franzTopic, kcatTopic}
	createTopic(t, e.admin(), agents[0].addr, franzTopic, 6)
	createTopic(t, e.admin(), agents[1].addr, kcatTopic, 3)
	if secure {
		e.sec.Grant(t, addrs(agents), producerUser, topics, nil, kadm.OpWrite)
		e.sec.Grant(t, addrs(agents), consumerUser, topics, []string{group}, kadm.OpRead)
		waitGranted(t, e, agents, topics, producerUser, consumerUser)
		refusedProduce(t, e.as(consumerUser), agents[2].addr, franzTopic)
	}
	live := &liveAgents{}
	live.set(agents)

	tr := newGroupTracker()
	var members []*groupMember
	for i, a := range agents {
		members = append(members, startMember(t, tr, i, e.as(consumerUser), a.addr, group, topics...))
	}
	waitAssigned(t, tr, 9, 3, 30*time.Second)

	led := newLedger()
	franz := startFranzProducers(t, led, addrs(agents), loadSpec{topic: franzTopic, partitions: 6, rate: 300, size: 150, as: e.as(producerUser)})
	kc := startKcat(t, led, kcat, 3, 200, loadSpec{topic: kcatTopic, partitions: 3, size: 150, as: e.as(producerUser)}, live.pick)

	time.Sleep(5 * time.Second)
	victim := coordinatorOf(t, e.admin(), agents, group)
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
	members = append(members, startMember(t, tr, 3, e.as(consumerUser), a3.addr, group, topics...))

	time.Sleep(5 * time.Second)
	franz.finish(t, 60*time.Second)
	kc.finish(t)
	sent, acked, failed := led.counts()
	t.Logf("load stopped: %d records sent, %d acknowledged, %d failed; kcat: %d runs, %d not fully delivered",
		sent, acked, failed, kc.runs.Load(), kc.failedRun.Load())

	hwm := endOffsets(t, addrs(agents), e.admin(), topics...)
	tr.waitCaughtUp(t, hwm)
	for _, m := range members {
		m.close()
		for e, n := range m.errs {
			t.Logf("member %d fetch error %d×: %s", m.id, n, e)
		}
	}

	log := verifyLog(t, addrs(agents), e.admin(), led, topics...)
	tr.check(t, log)

	// The fourth agent took part: clients bootstrapped from it, and it
	// served produce and fetch requests for the partitions it leads.
	m, err := a3.metrics()
	if err != nil {
		t.Fatal(err)
	}
	led3 := 0
	for _, id := range leaders(t, e.admin(), addrs(agents), topics...) {
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
	if secure {
		// Every client logged in, each connection once: nothing failed.
		ok := sumMetric(t, agents, "floe_sasl_authentications_total", "result", "ok")
		failed := sumMetric(t, agents, "floe_sasl_authentications_total", "result", "failed")
		denied := sumMetric(t, agents, "floe_acl_denied_total")
		t.Logf("SASL authentications on the live agents: %.0f ok, %.0f failed; %.0f operations denied by ACLs; new agent %s: %.0f ok",
			ok, failed, denied, a3.name, m.sum("floe_sasl_authentications_total", "result", "ok"))
		if failed > 0 || m.sum("floe_sasl_authentications_total", "result", "ok") == 0 {
			t.Errorf("SASL authentications: %.0f failed on the live agents, %.0f ok on the new agent; want none failed, some ok", failed, m.sum("floe_sasl_authentications_total", "result", "ok"))
		}
	}
}

// waitGranted waits until every agent lets each of users describe every
// topic (ACLs reach the agents that did not create them within about a
// second), asking each agent alone.
func waitGranted(t *testing.T, e *env, agents []*agentProc, topics []string, users ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range agents {
		for _, u := range users {
			cl := e.as(u).newClient(t, []string{a.addr})
			for {
				err := describable(cl, topics)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					cl.Close()
					t.Fatalf("agent %s: %s: %v", a.name, u, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			cl.Close()
		}
	}
}

// describable asks cl's seed broker alone for the metadata of topics.
func describable(cl *kgo.Client, topics []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return fmt.Errorf("topic %s: %w", *rt.Topic, err)
		}
	}
	return nil
}

// refusedProduce checks that c, granted no WRITE, cannot produce to topic.
func refusedProduce(t *testing.T, c client, addr, topic string) {
	t.Helper()
	cl := c.newClient(t, []string{addr}, kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("must be refused")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to %s as %s without WRITE: %v, want %v", topic, c.user, err, kerr.TopicAuthorizationFailed)
	}
	t.Logf("produce to %s as %s without WRITE: %v", topic, c.user, err)
}

// leaders returns the node id leading each partition of topics.
func leaders(t *testing.T, c client, seeds []string, topics ...string) map[tp]int32 {
	t.Helper()
	cl := c.newClient(t, seeds)
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

// coordinatorOf returns the agent coordinating group, asking as who.
func coordinatorOf(t *testing.T, who client, agents []*agentProc, group string) *agentProc {
	t.Helper()
	cl := who.newClient(t, addrs(agents))
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
