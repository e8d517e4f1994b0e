package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
)

func consumerJoin(c *coordinator.Coordinator, group, member string, topics ...string) consumer.HeartbeatResponse {
	return c.ConsumerHeartbeat(context.Background(), group, consumer.HeartbeatRequest{
		Version: 1, MemberID: member, RebalanceTimeout: 10 * time.Second,
		SubscribedTopicNames: topics, Owned: consumer.Assignment{}, ClientID: "c",
	})
}

func consumerBeat(c *coordinator.Coordinator, group, member string, epoch int32, owned consumer.Assignment) consumer.HeartbeatResponse {
	return c.ConsumerHeartbeat(context.Background(), group, consumer.HeartbeatRequest{
		Version: 1, MemberID: member, MemberEpoch: epoch, RebalanceTimeout: -1, Owned: owned,
	})
}

// A consumer-protocol group moves to a second coordinator on the same
// store mid-reconciliation: members keep their epochs and partitions, the
// reconciliation carries on there, and the first coordinator is fenced
// once the second has saved.
func TestConsumerGroupHandover(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	id := consumer.TopicID(topic.ID)
	first, second := newCoordinator(t, s, nil), newCoordinator(t, s, nil)

	a := consumerJoin(first, "g", "a", "t")
	if a.Err != 0 || a.MemberEpoch != 1 || a.Assignment.Len() != 4 {
		t.Fatalf("a joins: %+v", a)
	}
	b := consumerJoin(first, "g", "b", "t")
	if b.Err != 0 || b.MemberEpoch != 2 || b.Assignment.Len() != 0 {
		t.Fatalf("b joins: %+v", b)
	}
	// a is told to give two partitions up.
	a = consumerBeat(first, "g", "a", 1, nil)
	if a.Err != 0 || a.MemberEpoch != 1 || a.Assignment.Len() != 2 {
		t.Fatalf("a revokes: %+v", a)
	}
	kept := a.Assignment

	// The second coordinator carries on from the store: a acknowledges
	// there and moves to epoch 2; b then gets the released partitions.
	a = consumerBeat(second, "g", "a", 1, kept)
	if a.Err != 0 || a.MemberEpoch != 2 {
		t.Fatalf("a on the new coordinator: %+v (%s)", a, kerr.ErrorForCode(a.Err))
	}
	b = consumerBeat(second, "g", "b", 2, nil)
	if b.Err != 0 || b.MemberEpoch != 2 || b.Assignment.Len() != 2 {
		t.Fatalf("b on the new coordinator: %+v (%s)", b, kerr.ErrorForCode(b.Err))
	}
	d, code := second.DescribeConsumer(ctx, "g")
	if code != 0 || d.State != consumer.Stable || d.Epoch != 2 || len(d.Members) != 2 {
		t.Fatalf("taken over: %+v", d)
	}
	// Commits check member epochs on the new coordinator.
	commit := func(c *coordinator.Coordinator, member string, epoch int32, partition int32) int16 {
		code, codes := c.CommitOffsets(ctx, "g", member, "", epoch, 9,
			[]metastore.CommittedOffset{{TopicID: topic.ID, Partition: partition, Offset: 7, LeaderEpoch: -1}}, nil)
		if code == 0 {
			code = codes[0]
		}
		return code
	}
	p := b.Assignment[id][0]
	if code := commit(second, "b", 2, p); code != 0 {
		t.Fatalf("b commits: %v", kerr.ErrorForCode(code))
	}
	if code := commit(second, "b", 3, p); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit ahead of the member epoch: %v", kerr.ErrorForCode(code))
	}
	if code := commit(second, "a", 2, p); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit of a partition a gave up: %v", kerr.ErrorForCode(code))
	}
	// The first coordinator still holds the old state: its next save
	// fails, and it gives the group up.
	if r := consumerJoin(first, "g", "c", "t"); r.Err != kerr.NotCoordinator.Code {
		t.Fatalf("stale coordinator's join: %+v", r)
	}
	// A classic join into the consumer group whose subscription is not
	// the consumer protocol's is refused while it has members (a
	// well-formed one joins as a classic member: migrate_test.go).
	if j := join(t, second, "g", ""); j.Err != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join into a consumer group: %v", kerr.ErrorForCode(j.Err))
	}
	if list, _ := second.List(ctx); len(list) != 1 || list[0].Type != coordinator.TypeConsumer || list[0].State != "Stable" {
		t.Fatalf("listed: %+v", list)
	}
	// A third coordinator lists the group from the store alone.
	if list, _ := newCoordinator(t, s, nil).List(ctx); len(list) != 1 || list[0].Type != coordinator.TypeConsumer {
		t.Fatalf("listed from the store: %+v", list)
	}
}

// Members whose heartbeats stop are removed after
// group.consumer.session.timeout.ms; an empty consumer group becomes a
// classic group when a classic member joins, and back.
func TestConsumerGroupSessionTimeoutAndConversion(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	c := coordinator.New(s, coordinator.Options{
		Groups:   groups.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second},
		Consumer: consumer.Config{SessionTimeout: 200 * time.Millisecond},
	})
	t.Cleanup(c.Close)
	if r := consumerJoin(c, "g", "a", "t"); r.Err != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(r.Err))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, _ := c.DescribeConsumer(ctx, "g")
		if d.State == consumer.Empty {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not removed after its session timeout: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if j := join(t, c, "g", ""); j.Err != 0 {
		t.Fatalf("classic join into an empty consumer group: %v", kerr.ErrorForCode(j.Err))
	}
	// The classic member's subscription is not the consumer protocol's:
	// the group cannot be upgraded (Kafka answers the same).
	if r := consumerJoin(c, "g", "b", "t"); r.Err != kerr.GroupIDNotFound.Code {
		t.Fatalf("consumer heartbeat into a classic group with a malformed subscription: %v", kerr.ErrorForCode(r.Err))
	}
	if _, code := c.DescribeConsumer(ctx, "g"); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe of a classic group: %v", kerr.ErrorForCode(code))
	}
}
