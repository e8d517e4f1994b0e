package compat

// KIP-848 consumer groups (group.protocol=consumer) with franz-go's
// kgo.ServerSideBalancer: the coordinator assigns partitions and members
// reconcile through ConsumerGroupHeartbeat.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// consumerProtocolOptions start agents for KIP-848 tests: members
// heartbeat every 100ms (group.consumer.heartbeat.interval.ms) and are
// removed 6s after their last heartbeat.
func consumerProtocolOptions() agenttest.Options {
	opts := groupAgentOptions()
	base := opts.Config
	opts.Config = func(c *agent.Config) {
		base(c)
		c.Groups.Consumer.HeartbeatInterval = 100 * time.Millisecond
		c.Groups.Consumer.SessionTimeout = 6 * time.Second
	}
	return opts
}

// consumerProtocolMember starts a franz-go member that speaks the consumer
// protocol with the server-side assignor its balancer names.
func consumerProtocolMember(t *testing.T, addr, group, topic string, log *consumedLog, balancer kgo.GroupBalancer, opts ...kgo.Opt) *groupMember {
	return startMember(t, addr, group, topic, log, append([]kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(balancer)}, opts...)...)
}

// describeConsumerGroup describes a group with ConsumerGroupDescribe.
func describeConsumerGroup(t *testing.T, ctx context.Context, admin *kadm.Client, group string) kadm.DescribedConsumerGroup {
	t.Helper()
	g, err := tryDescribeConsumerGroup(ctx, admin, group)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func tryDescribeConsumerGroup(ctx context.Context, admin *kadm.Client, group string) (kadm.DescribedConsumerGroup, error) {
	d, err := admin.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return kadm.DescribedConsumerGroup{}, fmt.Errorf("describe consumer group: %w", err)
	}
	if g := d[group]; g.Err != nil {
		return g, fmt.Errorf("describe %s: %w", group, g.Err)
	}
	return d[group], nil
}

// converged reports a Stable consumer group of n members whose current
// assignments equal their targets and together cover every partition of
// topic exactly once.
func converged(g kadm.DescribedConsumerGroup, n int, topic string, partitions int32) bool {
	if g.State != "Stable" || len(g.Members) != n {
		return false
	}
	var seen []int32
	for _, m := range g.Members {
		if m.MemberEpoch != g.Epoch || fmt.Sprint(m.Assignment) != fmt.Sprint(m.TargetAssignment) {
			return false
		}
		for p := range m.Assignment[topic] {
			seen = append(seen, p)
		}
	}
	slices.Sort(seen)
	for p := range partitions {
		if int(p) >= len(seen) || seen[p] != p {
			return false
		}
	}
	return len(seen) == int(partitions)
}

// TestConsumerProtocolChurn: 3 franz-go members over 12 partitions with
// the consumer protocol, members joining and leaving while records are
// produced and consumed, for both server-side assignors. Every record is
// consumed, none twice (each member commits every poll before letting a
// revocation through, and a partition reaches its new owner only after
// the revocation), the committed offsets end at the end of every
// partition, and the assignment converges.
func TestConsumerProtocolChurn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		assignor string
	}{
		{"uniform", kgo.CooperativeStickyBalancer(), "uniform"},
		{"range", kgo.RangeBalancer(), "range"},
	} {
		t.Run(tc.name, func(t *testing.T) { testConsumerProtocolChurn(t, tc.balancer, tc.assignor) })
	}
}

func testConsumerProtocolChurn(t *testing.T, balancer kgo.GroupBalancer, assignor string) {
	a := agenttest.Start(t, consumerProtocolOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	const topic, group, partitions = "churn848", "churn848-group", 12
	createTopic(t, ctx, a.Addr(), topic, partitions)

	ends := map[int32]int64{}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for range 20 {
			for p, o := range produceSpread(t, ctx, a.Addr(), topic, partitions, 240) {
				ends[p] = max(ends[p], o)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	log := newConsumedLog()
	start := func() *groupMember { return consumerProtocolMember(t, a.Addr(), group, topic, log, balancer) }
	members := []*groupMember{start()}
	time.Sleep(300 * time.Millisecond)
	members = append(members, start(), start())
	time.Sleep(500 * time.Millisecond)
	members[0].stop() // one leaves, another joins
	members = append(members[1:], start())
	time.Sleep(500 * time.Millisecond)
	members = append(members, start()) // a fourth joins, then one leaves
	time.Sleep(500 * time.Millisecond)
	members[1].stop()
	members = append(members[:1], members[2:]...)
	<-produced
	var total int
	for _, o := range ends {
		total += int(o)
	}
	testutil.WaitFor(t, 30*time.Second, "every record consumed", func() bool { return log.distinct() == total })

	var d kadm.DescribedConsumerGroup
	testutil.WaitFor(t, 15*time.Second, "the assignment converged", func() bool {
		var err error
		d, err = tryDescribeConsumerGroup(ctx, admin, group)
		return err == nil && converged(d, 3, topic, partitions)
	})
	if d.AssignorName != assignor {
		t.Errorf("assignor %q, want %q", d.AssignorName, assignor)
	}
	// Classic tools see a "consumer" group with its members' partitions.
	if g := describeGroup(t, ctx, admin, group); g.ProtocolType != "consumer" || g.State != "Stable" || len(g.Members) != 3 {
		t.Errorf("DescribeGroups: %s %s with %d members", g.ProtocolType, g.State, len(g.Members))
	} else if ca, ok := g.Members[0].Assigned.AsConsumer(); !ok || len(ca.Topics) != 1 || ca.Topics[0].Topic != topic {
		t.Errorf("DescribeGroups member assignment %+v", g.Members[0].Assigned)
	}
	listed, err := admin.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil || !slices.Contains(listed.Groups(), group) {
		t.Errorf("ListGroups type consumer: %v %v", listed.Groups(), err)
	}
	for _, m := range members {
		m.stop()
	}
	if log.dups != 0 {
		t.Errorf("%d records consumed twice (of %d)", log.dups, log.total)
	}
	offs, err := admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
			t.Errorf("partition %d: committed %+v, want %d", p, o, end)
		}
	}
	if d := describeConsumerGroup(t, ctx, admin, group); d.State != "Empty" || len(d.Members) != 0 {
		t.Errorf("after every member left: %s with %d members, want Empty", d.State, len(d.Members))
	}
}

// TestConsumerProtocolStaticRestart: static members (group.instance.id)
// with the consumer protocol. A member that closes leaves with epoch -2;
// the group keeps its place and partitions, and the process that comes
// back with the same instance id takes them over without a new group
// epoch.
func TestConsumerProtocolStaticRestart(t *testing.T) {
	a := agenttest.Start(t, consumerProtocolOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	const topic, group, partitions = "static848", "static848-group", 4
	createTopic(t, ctx, a.Addr(), topic, partitions)
	produceSpread(t, ctx, a.Addr(), topic, partitions, 200)
	log := newConsumedLog()
	start := func(instance string) *groupMember {
		return consumerProtocolMember(t, a.Addr(), group, topic, log, kgo.RangeBalancer(), kgo.InstanceID(instance))
	}
	members := []*groupMember{start("i1"), start("i2")}
	var before kadm.DescribedConsumerGroup
	testutil.WaitFor(t, 15*time.Second, "a converged group consuming", func() bool {
		var err error
		before, err = tryDescribeConsumerGroup(ctx, admin, group)
		return err == nil && converged(before, 2, topic, partitions) && log.distinct() == 200
	})
	byInstance := func(g kadm.DescribedConsumerGroup, instance string) kadm.ConsumerGroupMember {
		for _, m := range g.Members {
			if m.InstanceID != nil && *m.InstanceID == instance {
				return m
			}
		}
		return kadm.ConsumerGroupMember{}
	}
	members[0].stop()
	if d := describeConsumerGroup(t, ctx, admin, group); len(d.Members) != 2 || byInstance(d, "i1").MemberEpoch != -2 || d.Epoch != before.Epoch {
		t.Errorf("after i1 left: epoch %d, %d members, i1 at epoch %d", d.Epoch, len(d.Members), byInstance(d, "i1").MemberEpoch)
	}
	members[0] = start("i1")
	produceSpread(t, ctx, a.Addr(), topic, partitions, 200)
	testutil.WaitFor(t, 15*time.Second, "every record consumed", func() bool { return log.distinct() == 400 })
	after := describeConsumerGroup(t, ctx, admin, group)
	was, now := byInstance(before, "i1"), byInstance(after, "i1")
	if !converged(after, 2, topic, partitions) || after.Epoch != before.Epoch || now.MemberID == was.MemberID ||
		fmt.Sprint(now.Assignment) != fmt.Sprint(was.Assignment) {
		t.Errorf("after i1 came back: %s epoch %d (was %d), i1 %s %v (was %s %v)", after.State, after.Epoch, before.Epoch,
			now.MemberID, now.Assignment, was.MemberID, was.Assignment)
	}
	for _, m := range members {
		m.stop()
	}
	if log.dups != 0 {
		t.Errorf("%d records consumed twice (of %d)", log.dups, log.total)
	}
}

// messageLog is a kgo.Logger that keeps the messages franz-go logs at
// info and above.
type messageLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *messageLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l *messageLog) Log(_ kgo.LogLevel, msg string, _ ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
}

func (l *messageLog) contains(part string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.msgs, func(m string) bool { return strings.Contains(m, part) })
}

// TestConsumerProtocolGroupVersion0: with group.version finalized at 0,
// ApiVersions still lists ConsumerGroupHeartbeat v0-v1 (Kafka's broker
// lists it whatever the level), so a franz-go member asked to use the
// consumer protocol (kgo.ServerSideBalancer) sends it, gets
// UNSUPPORTED_VERSION and falls back to the classic protocol: it consumes
// every record in a classic group, which ConsumerGroupDescribe calls
// GROUP_ID_NOT_FOUND once group.version is 1 again.
func TestConsumerProtocolGroupVersion0(t *testing.T) {
	a := agenttest.Start(t, consumerProtocolOptions())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	setGroupVersion := func(level int16, upgradeType int8) {
		t.Helper()
		res, err := admin.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "group.version", MaxVersionLevel: level, UpgradeType: upgradeType})
		if err == nil {
			err = res["group.version"].Err
		}
		if err != nil {
			t.Fatalf("group.version %d: %v", level, err)
		}
	}
	setGroupVersion(0, 3) // an unsafe downgrade, as Kafka's controller wants for group.version

	raw := testutil.Dial(t, a.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "compat-test", "1"
	resp := raw.Do(req).(*kmsg.ApiVersionsResponse)
	listed := false
	for _, k := range resp.ApiKeys {
		listed = listed || k.ApiKey == int16(kmsg.ConsumerGroupHeartbeat) && k.MaxVersion >= 1
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "group.version" {
			t.Fatalf("group.version finalized at %d, want it left out at 0", f.MaxVersionLevel)
		}
	}
	if !listed {
		t.Fatal("ConsumerGroupHeartbeat v1 is not listed at group.version 0")
	}

	const topic, group, partitions, records = "gv0", "gv0-group", 4, 200
	createTopic(t, ctx, a.Addr(), topic, partitions)
	produceSpread(t, ctx, a.Addr(), topic, partitions, records)
	consumed, logged := newConsumedLog(), &messageLog{}
	m := consumerProtocolMember(t, a.Addr(), group, topic, consumed, kgo.RangeBalancer(), kgo.WithLogger(logged))
	defer m.stop()
	testutil.WaitFor(t, 30*time.Second, "every record consumed", func() bool { return consumed.distinct() == records })
	if !logged.contains("falling back to standard consumer group management") {
		t.Errorf("franz-go did not log its fallback to the classic protocol: %q", logged.msgs)
	}
	if g := describeGroup(t, ctx, admin, group); g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 1 {
		t.Errorf("group %s: protocol type %q, protocol %q, %d members; want a classic consumer group with range and 1 member", group, g.ProtocolType, g.Protocol, len(g.Members))
	}

	setGroupVersion(1, 1)
	if _, err := tryDescribeConsumerGroup(ctx, admin, group); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("ConsumerGroupDescribe of the group at group.version 1: %v, want GROUP_ID_NOT_FOUND (a classic group)", err)
	}
}
