package compat

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestConsumerProtocolRackAware: an agent in zone az-a, and three
// franz-go members of a consumer-protocol group over 5 partitions, one in
// az-a (kgo.Rack, sent as RackId) and two in az-x, where no agent runs.
// The group stays balanced (2, 2, 1) and the member in az-a, in the rack
// every partition can be read in, holds one of the two larger shares; the
// member alone in its zone never gets more than it.
func TestConsumerProtocolRackAware(t *testing.T) {
	opts := consumerProtocolOptions()
	base := opts.Config
	opts.Config = func(c *agent.Config) {
		base(c)
		c.Zone = "az-a"
	}
	a := agenttest.Start(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	const topic, group, partitions = "rack848", "rack848-group", 5
	createTopic(t, ctx, a.Addr(), topic, partitions)
	log := newConsumedLog()
	// The members out of rack join first, so that without rack awareness
	// (members by id, ties to the first) the member in rack could get 1.
	for i, rack := range []string{"az-x", "az-x", "az-a"} {
		consumerProtocolMember(t, a.Addr(), group, topic, log, kgo.CooperativeStickyBalancer(), kgo.Rack(rack))
		if i < 2 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	var d kadm.DescribedConsumerGroup
	testutil.WaitFor(t, 20*time.Second, "the assignment converged", func() bool {
		var err error
		d, err = tryDescribeConsumerGroup(ctx, admin, group)
		return err == nil && converged(d, 3, topic, partitions)
	})
	var inRack int
	var outOfRack []int
	for _, m := range d.Members {
		n := len(m.Assignment[topic])
		switch {
		case m.RackID == nil:
			t.Fatalf("member %s: no rack described", m.MemberID)
		case *m.RackID == "az-a":
			inRack = n
		default:
			outOfRack = append(outOfRack, n)
		}
	}
	if inRack != 2 || len(outOfRack) != 2 || outOfRack[0]+outOfRack[1] != 3 {
		t.Errorf("member in rack holds %d partitions, members out of rack %v; want 2 and a 2/1 split", inRack, outOfRack)
	}
}
