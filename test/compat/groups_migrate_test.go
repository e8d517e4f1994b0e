package compat

// KIP-848's online migration with real clients: a group consuming with
// classic members (franz-go's client-side balancers, sarama,
// confluent-kafka-go with group.protocol=classic) is rolled member by
// member to the consumer protocol (franz-go's kgo.ServerSideBalancer,
// confluent-kafka-go with group.protocol=consumer) while records are
// produced, then rolled back. Every record is consumed, none twice,
// committed offsets never go backwards, and the group is listed and
// described as what it is at each step.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// migrationRun is one migration scenario on one agent: a producer that
// keeps producing, a log of what members consumed, and a watcher of the
// committed offsets.
type migrationRun struct {
	t      *testing.T
	ctx    context.Context
	addr   string
	admin  *kadm.Client
	topic  string
	group  string
	parts  int32
	log    *consumedLog
	mu     sync.Mutex
	ends   map[int32]int64
	stopP  chan struct{}
	doneP  chan struct{}
	stopW  chan struct{}
	doneW  chan struct{}
	backed []string // committed offsets that went backwards
}

func startMigrationRun(t *testing.T, ctx context.Context, a *agenttest.Agent, name string, partitions int32) *migrationRun {
	r := &migrationRun{
		t: t, ctx: ctx, addr: a.Addr(), admin: newAdmin(t, a.Addr()), topic: name, group: name + "-group", parts: partitions,
		log: newConsumedLog(), ends: map[int32]int64{},
		stopP: make(chan struct{}), doneP: make(chan struct{}), stopW: make(chan struct{}), doneW: make(chan struct{}),
	}
	createTopic(t, ctx, r.addr, r.topic, partitions)
	go func() {
		defer close(r.doneP)
		for i := 0; i < 600; i++ { // at most 60s of production
			select {
			case <-r.stopP:
				return
			default:
			}
			for p, o := range produceSpread(t, ctx, r.addr, r.topic, partitions, 40) {
				r.mu.Lock()
				r.ends[p] = max(r.ends[p], o)
				r.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go func() {
		defer close(r.doneW)
		last := map[int32]int64{}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stopW:
				return
			case <-tick.C:
			}
			offs, err := r.admin.FetchOffsets(ctx, r.group)
			if err != nil {
				continue
			}
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Err != nil {
					return
				}
				if o.At < last[o.Partition] {
					r.backed = append(r.backed, fmt.Sprintf("partition %d: %d after %d", o.Partition, o.At, last[o.Partition]))
				}
				last[o.Partition] = max(last[o.Partition], o.At)
			})
		}
	}()
	return r
}

// finish stops producing, waits for every record to be consumed and
// committed, stops the members (stop is called for each), and checks the
// run.
func (r *migrationRun) finish(stop func()) {
	t := r.t
	close(r.stopP)
	<-r.doneP
	r.mu.Lock()
	ends := cloneEnds(r.ends)
	r.mu.Unlock()
	total := 0
	for _, o := range ends {
		total += int(o)
	}
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("every record consumed (%d)", total), func() bool { return r.log.distinct() == total })
	testutil.WaitFor(t, 30*time.Second, "offsets committed at the end", func() bool {
		offs, err := r.admin.FetchOffsets(r.ctx, r.group)
		if err != nil {
			return false
		}
		for p, end := range ends {
			if o, ok := offs.Lookup(r.topic, p); !ok || o.At != end {
				return false
			}
		}
		return true
	})
	stop()
	close(r.stopW)
	<-r.doneW
	if len(r.backed) > 0 {
		t.Errorf("committed offsets went backwards: %v", r.backed)
	}
	if r.log.dups != 0 {
		t.Errorf("%d records consumed twice (of %d)", r.log.dups, r.log.total)
	}
	t.Logf("%d records consumed by the rolling group", r.log.total)
}

func cloneEnds(m map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// groupType is the type ListGroups reports for the run's group ("" if
// not listed).
func (r *migrationRun) groupType() string {
	for _, typ := range []string{"classic", "consumer"} {
		listed, err := r.admin.ListGroupsByType(r.ctx, []string{typ})
		if err == nil && slices.Contains(listed.Groups(), r.group) {
			return typ
		}
	}
	return ""
}

// memberTypes counts the members ConsumerGroupDescribe shows by type
// (0 classic, 1 consumer) in a Stable consumer group; nil when the group
// is not a consumer group or not Stable.
func (r *migrationRun) memberTypes() map[int8]int {
	d, err := tryDescribeConsumerGroup(r.ctx, r.admin, r.group)
	if err != nil || d.State != "Stable" {
		return nil
	}
	n := map[int8]int{}
	for _, m := range d.Members {
		n[m.MemberType]++
	}
	return n
}

// waitMembers waits until the group is a Stable group of type typ with
// classic classic members and modern consumer-protocol members, as
// ConsumerGroupDescribe (consumer groups) or DescribeGroups (classic
// groups) shows it, and has consumed more records since: each step of a
// roll is taken with the group settled and consuming.
func (r *migrationRun) waitMembers(typ string, classic, modern int) {
	r.t.Helper()
	r.t.Logf("waiting for a %s group with %d classic and %d consumer members", typ, classic, modern)
	defer func() {
		from := r.log.distinct()
		testutil.WaitFor(r.t, 30*time.Second, "the group consuming", func() bool { return r.log.distinct() >= from+20 })
	}()
	testutil.WaitFor(r.t, 30*time.Second, fmt.Sprintf("a %s group with %d classic and %d consumer members", typ, classic, modern), func() bool {
		if r.groupType() != typ {
			return false
		}
		if typ == "classic" {
			d, err := r.admin.DescribeGroups(r.ctx, r.group)
			return err == nil && d[r.group].Err == nil && d[r.group].State == "Stable" && len(d[r.group].Members) == classic && modern == 0
		}
		n := r.memberTypes()
		return n != nil && n[0] == classic && n[1] == modern
	})
}

func migrationOptions(policy consumer.MigrationPolicy) agenttest.Options {
	opts := consumerProtocolOptions()
	base := opts.Config
	opts.Config = func(c *agent.Config) {
		base(c)
		c.Groups.Consumer.MigrationPolicy = policy
	}
	return opts
}

// TestGroupMigrationFranz: three franz-go classic members (an eager and
// a cooperative balancer) are replaced one by one by franz-go members of
// the consumer protocol, then back.
func TestGroupMigrationFranz(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer func() kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer},
		{"range", kgo.RangeBalancer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := agenttest.Start(t, migrationOptions(consumer.MigrateBidirectional))
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			r := startMigrationRun(t, ctx, a, "migrate-franz-"+tc.name, 8)
			classic := func() *groupMember {
				return startMember(t, r.addr, r.group, r.topic, r.log, kgo.Balancers(tc.balancer()))
			}
			modern := func() *groupMember {
				return consumerProtocolMember(t, r.addr, r.group, r.topic, r.log, tc.balancer())
			}
			members := []*groupMember{classic(), classic(), classic()}
			testutil.WaitFor(t, 30*time.Second, "the classic group consuming", func() bool { return r.log.distinct() > 0 })
			r.waitMembers("classic", 3, 0)

			// Upgrade: each classic member is replaced by a consumer one.
			for i := range members {
				next := modern()
				r.waitMembers("consumer", 3-i, i+1)
				members[i].stop()
				members[i] = next
				r.waitMembers("consumer", 2-i, i+1)
			}
			// Downgrade: back to classic members; the group is classic
			// again when the last consumer member leaves.
			for i := range members {
				next := classic()
				r.waitMembers("consumer", i+1, 3-i)
				members[i].stop()
				members[i] = next
				if i < 2 {
					r.waitMembers("consumer", i+1, 2-i)
				}
			}
			r.waitMembers("classic", 3, 0)
			r.finish(func() {
				for _, m := range members {
					m.stop()
				}
			})
		})
	}
}

// saramaMember is a sarama consumer-group member (classic only).
type saramaMember struct {
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once
}

func startSaramaMember(t *testing.T, r *migrationRun, name string) *saramaMember {
	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	cg, err := sarama.NewConsumerGroup([]string{r.addr}, r.group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	m := &saramaMember{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(m.stop) // its loop logs through t (see startMember)
	go func() {
		defer close(m.done)
		defer cg.Close()
		h := saramaCommitting{name: name, log: r.log}
		for i := 0; ctx.Err() == nil && i < 10_000; i++ {
			if err := cg.Consume(ctx, []string{r.topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				t.Logf("%s consume: %v", name, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return m
}

func (m *saramaMember) stop() {
	m.stopped.Do(func() {
		m.cancel()
		<-m.done
	})
}

// saramaCommitting marks and commits each record before taking the next,
// so that a partition it gives up has nothing consumed and uncommitted.
type saramaCommitting struct {
	name string
	log  *consumedLog
}

func (saramaCommitting) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaCommitting) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaCommitting) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.log.add(&kgo.Record{Partition: m.Partition, Offset: m.Offset})
		s.MarkMessage(m, "")
		s.Commit()
	}
	return nil
}

// TestGroupMigrationSarama: sarama speaks only the classic protocol; its
// members are replaced by franz-go members of the consumer protocol, and
// back.
func TestGroupMigrationSarama(t *testing.T) {
	a := agenttest.Start(t, migrationOptions(consumer.MigrateBidirectional))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	r := startMigrationRun(t, ctx, a, "migrate-sarama", 6)
	type stopper interface{ stop() }
	n := 0
	classic := func() stopper { n++; return startSaramaMember(t, r, fmt.Sprintf("sarama-%d", n)) }
	modern := func() stopper { return consumerProtocolMember(t, r.addr, r.group, r.topic, r.log, kgo.RangeBalancer()) }
	members := []stopper{classic(), classic()}
	testutil.WaitFor(t, 30*time.Second, "sarama consuming", func() bool { return r.log.distinct() > 0 })
	r.waitMembers("classic", 2, 0)
	for i := range members {
		next := modern()
		r.waitMembers("consumer", 2-i, i+1)
		members[i].stop()
		members[i] = next
		r.waitMembers("consumer", 1-i, i+1)
	}
	for i := range members {
		next := classic()
		r.waitMembers("consumer", i+1, 2-i)
		members[i].stop()
		members[i] = next
	}
	r.waitMembers("classic", 2, 0)
	r.finish(func() {
		for _, m := range members {
			m.stop()
		}
	})
}

// confluentMember is a confluent-kafka-go (librdkafka) consumer with
// group.protocol classic or consumer, committing every record it reads
// synchronously.
type confluentMember struct {
	stopc chan struct{}
	done  chan struct{}
}

func startConfluentMember(t *testing.T, r *migrationRun, protocol string) *confluentMember {
	conf := &ckafka.ConfigMap{
		"bootstrap.servers":  r.addr,
		"group.id":           r.group,
		"group.protocol":     protocol,
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
	}
	if protocol == "classic" {
		for k, v := range map[string]any{
			"session.timeout.ms": 6000, "heartbeat.interval.ms": 200,
			"partition.assignment.strategy": "cooperative-sticky",
		} {
			if err := conf.SetKey(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	c, err := ckafka.NewConsumer(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(r.topic, nil); err != nil {
		t.Fatal(err)
	}
	m := &confluentMember{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer c.Close()
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-m.stopc:
				return
			default:
			}
			switch e := c.Poll(50).(type) {
			case *ckafka.Message:
				if e.TopicPartition.Error != nil {
					continue
				}
				r.log.add(&kgo.Record{Partition: e.TopicPartition.Partition, Offset: int64(e.TopicPartition.Offset)})
				if _, err := c.CommitMessage(e); err != nil {
					t.Logf("confluent %s commit: %v", protocol, err)
				}
			case ckafka.Error:
				t.Logf("confluent %s: %v", protocol, e)
			}
		}
	}()
	return m
}

func (m *confluentMember) stop() {
	close(m.stopc)
	<-m.done
}

// TestGroupMigrationConfluent: librdkafka members move from
// group.protocol=classic to group.protocol=consumer one by one, and back.
func TestGroupMigrationConfluent(t *testing.T) {
	a := agenttest.Start(t, migrationOptions(consumer.MigrateBidirectional))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	r := startMigrationRun(t, ctx, a, "migrate-confluent", 6)
	type stopper interface{ stop() }
	classic := func() stopper { return startConfluentMember(t, r, "classic") }
	modern := func() stopper { return startConfluentMember(t, r, "consumer") }
	members := []stopper{classic(), classic()}
	testutil.WaitFor(t, 30*time.Second, "librdkafka consuming", func() bool { return r.log.distinct() > 0 })
	r.waitMembers("classic", 2, 0)
	for i := range members {
		next := modern()
		r.waitMembers("consumer", 2-i, i+1)
		members[i].stop()
		members[i] = next
		r.waitMembers("consumer", 1-i, i+1)
	}
	for i := range members {
		next := classic()
		r.waitMembers("consumer", i+1, 2-i)
		members[i].stop()
		members[i] = next
	}
	r.waitMembers("classic", 2, 0)
	r.finish(func() {
		for _, m := range members {
			m.stop()
		}
	})
}

// TestGroupMigrationDisabled: with --group-consumer-migration-policy
// disabled, a member of the consumer protocol cannot join a classic group
// with members: its ConsumerGroupHeartbeat is answered GROUP_ID_NOT_FOUND
// (Kafka's answer), and the classic members carry on.
func TestGroupMigrationDisabled(t *testing.T) {
	a := agenttest.Start(t, migrationOptions(consumer.MigrateDisabled))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startMigrationRun(t, ctx, a, "migrate-disabled", 4)
	m := startMember(t, r.addr, r.group, r.topic, r.log, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	testutil.WaitFor(t, 30*time.Second, "the classic member consuming", func() bool { return r.log.distinct() > 0 })
	r.waitMembers("classic", 1, 0)

	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.RebalanceTimeoutMillis = r.group, "modern-1", 10000
	req.SubscribedTopicNames, req.Topics = []string{r.topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	var resp *kmsg.ConsumerGroupHeartbeatResponse
	testutil.WaitFor(t, 10*time.Second, "a ConsumerGroupHeartbeat answered by the coordinator", func() bool {
		co := r.admin.FindGroupCoordinators(ctx, r.group)[r.group]
		if co.Err != nil {
			return false
		}
		var err error
		resp, err = req.RequestWith(ctx, cl.Broker(int(co.NodeID)))
		return err == nil && resp.ErrorCode != kerr.NotCoordinator.Code && resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code
	})
	if resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupHeartbeat into a classic group with the policy disabled: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp.ErrorMessage == nil || *resp.ErrorMessage == "" {
		t.Error("no error message")
	} else {
		t.Logf("answered %s: %s", kerr.ErrorForCode(resp.ErrorCode), *resp.ErrorMessage)
	}
	r.waitMembers("classic", 1, 0)
	r.finish(m.stop)
}
