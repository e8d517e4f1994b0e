package compat

// Handover of share partitions: the agent leading them stops, the other
// agent on the same store loads their states and carries on without
// delivering an acknowledged record again.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

func TestShareGroupHandover(t *testing.T) {
	opts := shareAgentOptions(30*time.Second, 5)
	first := agenttest.Start(t, opts)
	second := agenttest.StartPeer(t, first, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic, group, partitions = "share-handover", "sg-handover", 4
	createTopic(t, ctx, first.Addr(), topic, partitions)
	seeds := kgo.SeedBrokers(first.Addr(), second.Addr())
	leaders := map[int32]int{}
	var lead0 int32
	testutil.WaitFor(t, 10*time.Second, "both agents live", func() bool {
		cl, err := kgo.NewClient(kgo.SeedBrokers(first.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = []kmsg.MetadataRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Brokers) != 2 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != partitions {
			return false
		}
		clear(leaders)
		for _, p := range resp.Topics[0].Partitions {
			leaders[p.Leader]++
			if p.Partition == 0 {
				lead0 = p.Leader
			}
		}
		return true
	})
	// The agent leading partition 0 (and perhaps others) is the one that
	// stops.
	victim, survivor := first, second
	if lead0 == second.NodeID() {
		victim, survivor = second, first
	}
	t.Logf("partitions per leader: %v; node %d stops", leaders, victim.NodeID())

	var (
		mu      sync.Mutex
		ackErrs []error
	)
	consumer := func(addr string) *kgo.Client {
		return shareConsumer(t, addr, group, topic, seeds, kgo.MetadataMaxAge(time.Second), kgo.MetadataMinAge(100*time.Millisecond),
			kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range rs {
					if r.Err != nil {
						ackErrs = append(ackErrs, fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, r.Err))
					}
				}
			}))
	}
	// Every record of the first half, accepted and flushed.
	const half = 200
	produceSpread(t, ctx, victim.Addr(), topic, partitions, half)
	c1 := consumer(victim.Addr())
	d := newShareDeliveries()
	for i := 0; i < 60 && d.distinct() < half; i++ {
		pollShare(t, ctx, c1, d, kgo.AckAccept)
	}
	if err := c1.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if d.distinct() != half || len(ackErrs) > 0 {
		t.Fatalf("before the handover: %d of %d records, ack errors %v", d.distinct(), half, ackErrs)
	}
	mu.Unlock()
	c1.Close()

	// The agent leading partition 0 (and maybe the group) stops; the
	// second half is produced to the survivor.
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(survivor.Addr()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := half; i < 2*half; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c2 := shareConsumer(t, survivor.Addr(), group, topic, kgo.SeedBrokers(survivor.Addr()))
	after := newShareDeliveries()
	for i := 0; i < 60 && after.distinct() < half; i++ {
		pollShare(t, ctx, c2, after, kgo.AckAccept)
	}
	for v := range after.counts {
		var n int
		fmt.Sscanf(v, "v%d", &n)
		if n < half {
			t.Errorf("record %s, acknowledged before the handover, delivered again", v)
		}
	}
	if after.distinct() != half {
		t.Fatalf("after the handover: %d of %d new records", after.distinct(), half)
	}
}

// TestShareGroupListedFromStore: a share group whose coordinator stops is
// listed by the agent that takes it over (ListGroups, type share) before
// any request of the group reaches that agent: it is listed from the
// store, not only once touched there.
func TestShareGroupListedFromStore(t *testing.T) {
	opts := shareAgentOptions(30*time.Second, 5)
	first := agenttest.Start(t, opts)
	second := agenttest.StartPeer(t, first, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group = "share-listed", "sg-listed"
	createTopic(t, ctx, first.Addr(), topic, 2)
	admin, err := kgo.NewClient(kgo.SeedBrokers(first.Addr(), second.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// The group's coordinator, once both agents see each other.
	var coordinator int32 = -1
	testutil.WaitFor(t, 10*time.Second, "both agents coordinate", func() bool {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = []string{group}
		resp, err := req.RequestWith(ctx, admin)
		if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
			return false
		}
		meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, admin)
		if err != nil || len(meta.Brokers) != 2 {
			return false
		}
		coordinator = resp.Coordinators[0].NodeID
		return true
	})
	victim, survivor := first, second
	if coordinator == second.NodeID() {
		victim, survivor = second, first
	}
	// A member joins, reads a record and leaves: the membership is stored
	// on the coordinator, which then stops.
	produceSpread(t, ctx, victim.Addr(), topic, 2, 2)
	c := shareConsumer(t, victim.Addr(), group, topic, kgo.SeedBrokers(victim.Addr()))
	d := newShareDeliveries()
	for i := 0; i < 30 && d.distinct() == 0; i++ {
		pollShare(t, ctx, c, d, kgo.AckAccept)
	}
	if d.distinct() == 0 {
		t.Fatal("the member received nothing")
	}
	c.Close()
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(survivor.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	listed := ""
	testutil.WaitFor(t, 20*time.Second, "the survivor lists the share group", func() bool {
		req := kmsg.NewPtrListGroupsRequest()
		req.TypesFilter = []string{"share"}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			return false
		}
		listed = fmt.Sprint(resp.Groups)
		for _, g := range resp.Groups {
			if g.Group == group && g.GroupType == "share" && g.ProtocolType == "share" {
				return true
			}
		}
		return false
	})
	// No heartbeat of the group reached the survivor (the member
	// heartbeated to the victim, and left before it stopped): it listed
	// the group from the store.
	t.Logf("listed: %s", listed)
}
