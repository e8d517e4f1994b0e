package compat

// Coordinator handover of a KIP-848 consumer group: the agent
// coordinating the group stops while franz-go members consume; the other
// agent on the same store loads the group's durable state, and members
// carry on with the same member ids and epochs, without a rebalance.

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

func TestConsumerProtocolFailover(t *testing.T) {
	const session = 6 * time.Second
	opts := consumerProtocolOptions()
	base := opts.Config
	opts.Config = func(c *agent.Config) {
		base(c)
		c.Groups.Consumer.SessionTimeout = session
	}
	first := agenttest.Start(t, opts)
	second := agenttest.StartPeer(t, first, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, partitions = "failover848", 6
	createTopic(t, ctx, first.Addr(), topic, partitions)
	seeds := kgo.SeedBrokers(first.Addr(), second.Addr())

	testutil.WaitFor(t, 10*time.Second, "both agents live", func() bool {
		for _, addr := range []string{first.Addr(), second.Addr()} {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			cl.Close()
			if err != nil || len(resp.Brokers) != 2 {
				return false
			}
		}
		return true
	})
	adminClient, err := kgo.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer adminClient.Close()
	admin := kadm.NewClient(adminClient)
	var group string
	for i := 0; group == "" && i < 1000; i++ {
		name := fmt.Sprintf("failover848-%d", i)
		if c := admin.FindGroupCoordinators(ctx, name)[name]; c.Err == nil && c.NodeID == first.NodeID() {
			group = name
		}
	}

	ends := produceSpread(t, ctx, first.Addr(), topic, partitions, 600)
	log := newConsumedLog()
	var members []*groupMember
	for range 2 {
		// A short metadata age: franz-go keeps dialing a stopped
		// coordinator until its metadata drops it.
		members = append(members, consumerProtocolMember(t, first.Addr(), group, topic, log, kgo.CooperativeStickyBalancer(),
			seeds, kgo.RetryTimeout(30*time.Second), kgo.MetadataMaxAge(time.Second), kgo.MetadataMinAge(100*time.Millisecond)))
	}
	var before kadm.DescribedConsumerGroup
	testutil.WaitFor(t, 20*time.Second, "a converged group consuming", func() bool {
		var err error
		before, err = tryDescribeConsumerGroup(ctx, admin, group)
		return err == nil && converged(before, 2, topic, partitions) && log.distinct() == 600
	})
	ids := func(g kadm.DescribedConsumerGroup) map[string]int32 {
		out := map[string]int32{}
		for _, m := range g.Members {
			out[m.MemberID] = m.MemberEpoch
		}
		return out
	}
	stopped := time.Now()
	first.Close()
	t.Logf("coordinator %s stopped at group epoch %d; %s takes over", first.Addr(), before.Epoch, second.Addr())

	// The surviving agent names itself coordinator once its view of the
	// live agents drops the stopped one (one membership heartbeat); a new
	// admin client then, as franz-go keeps a coordinator it cannot dial
	// cached.
	testutil.WaitFor(t, 10*time.Second, "the surviving agent coordinating the group", func() bool {
		cl, err := kgo.NewClient(kgo.SeedBrokers(second.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = group
		resp, err := fc.RequestWith(ctx, cl)
		return err == nil && resp.NodeID == second.NodeID()
	})
	admin = newAdmin(t, second.Addr())
	describe := func() (kadm.DescribedConsumerGroup, bool) {
		g, err := tryDescribeConsumerGroup(ctx, admin, group)
		return g, err == nil && g.Coordinator.NodeID == second.NodeID()
	}
	// The first answer from the surviving agent comes after it loaded
	// the group, which started every member's session timeout afresh.
	testutil.WaitFor(t, 15*time.Second, "the group described by the surviving agent", func() bool {
		_, ok := describe()
		return ok
	})
	loaded := time.Now()
	t.Logf("group loaded by %s %v after the stop", second.Addr(), loaded.Sub(stopped).Round(time.Millisecond))
	// Records keep coming through the surviving agent.
	for p, o := range produceSpread(t, ctx, second.Addr(), topic, partitions, 600) {
		ends[p] = max(ends[p], o)
	}
	testutil.WaitFor(t, 30*time.Second, "every record consumed", func() bool { return log.distinct() == 1200 })
	t.Logf("all records consumed %v after the stop", time.Since(stopped).Round(time.Millisecond))

	// Past a session timeout since the load, the members are still there
	// with their ids and epochs: they heartbeat the new coordinator with
	// the epochs the old one gave them, and nothing was reassigned.
	time.Sleep(time.Until(loaded.Add(session + 500*time.Millisecond)))
	after, ok := describe()
	if !ok || !converged(after, 2, topic, partitions) || after.Epoch != before.Epoch || !maps.Equal(ids(after), ids(before)) {
		t.Errorf("group changed across the handover: %s epoch %d, members %v; before: epoch %d, members %v",
			after.State, after.Epoch, ids(after), before.Epoch, ids(before))
	}
	testutil.WaitFor(t, 15*time.Second, "offsets committed at the end", func() bool {
		offs, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p, end := range ends {
			if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
				return false
			}
		}
		return true
	})
	for _, m := range members {
		m.stop()
	}
	if log.dups != 0 {
		t.Errorf("%d records consumed twice (of %d)", log.dups, log.total)
	}
}
