package coordinator_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/testutil"
)

// subscription is a ConsumerProtocol subscription to topics.
func subscription(topics ...string) []byte {
	s := kmsg.NewConsumerMemberMetadata()
	s.Version = 1
	s.Topics = topics
	return s.AppendTo(nil)
}

// assignmentOf encodes a ConsumerProtocol assignment of topic's partitions.
func assignmentOf(topic string, partitions ...int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: topic, Partitions: partitions}}
	return a.AppendTo(nil)
}

func partitionsIn(t *testing.T, b []byte) []int32 {
	t.Helper()
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		t.Fatalf("assignment: %v", err)
	}
	var ps []int32
	for _, at := range a.Topics {
		ps = append(ps, at.Partitions...)
	}
	slices.Sort(ps)
	return ps
}

type migrateStore interface {
	coordinator.Store
	CreateTopic(context.Context, metastore.TopicSpec) (metastore.Topic, error)
}

// migrationStores are the metadata backends the migration must survive a
// restart on: the embedded store, and PostgreSQL when scripts/services
// runs one.
func migrationStores(t *testing.T) map[string]func(t *testing.T) migrateStore {
	return map[string]func(t *testing.T) migrateStore{
		"embedded": func(t *testing.T) migrateStore { return openStore(t) },
		"postgres": func(t *testing.T) migrateStore {
			db := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_migrate_")
			s, err := postgres.Open(t.Context(), db, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// A classic group is upgraded by a joining consumer-protocol member, its
// coordinator stops mid-migration (the classic members still at the old
// generation), and a new coordinator on the same store carries on:
// classic members are told to rejoin, are served inside the consumer
// group, commit with their generation; when the consumer member leaves
// the group is classic again and rebalances, across another restart.
func TestOnlineMigrationSurvivesRestart(t *testing.T) {
	for name, open := range migrationStores(t) {
		t.Run(name, func(t *testing.T) { testOnlineMigration(t, open(t)) })
	}
}

func testOnlineMigration(t *testing.T, s migrateStore) {
	ctx := context.Background()
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	opts := coordinator.Options{Groups: groups.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second}}
	start := func() *coordinator.Coordinator {
		c := coordinator.New(s, opts)
		t.Cleanup(c.Close)
		return c
	}
	classicJoin := func(c *coordinator.Coordinator, member string) groups.JoinResponse {
		return c.Join(ctx, "g", groups.JoinRequest{
			Version: 9, MemberID: member, ClientID: "c", SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
			ProtocolType: "consumer", Protocols: []groups.Protocol{{Name: "range", Metadata: subscription("t")}},
		})(ctx)
	}

	// A stable classic group: c1 leads and assigns 0,1 to itself, 2,3
	// to c2.
	first := start()
	j1 := classicJoin(first, "")
	j1 = classicJoin(first, j1.MemberID)
	c1 := j1.MemberID
	if j1.Err != 0 {
		t.Fatalf("c1 joins: %v", kerr.ErrorForCode(j1.Err))
	}
	s1 := first.Sync(ctx, "g", groups.SyncRequest{MemberID: c1, Generation: j1.Generation,
		Assignments: map[string][]byte{c1: assignmentOf("t", 0, 1, 2, 3)}})(ctx)
	if s1.Err != 0 {
		t.Fatalf("c1 syncs: %v", kerr.ErrorForCode(s1.Err))
	}
	gen := j1.Generation

	// The consumer member joins: the group is upgraded.
	a := consumerJoin(first, "g", "a", "t")
	if a.Err != 0 || a.MemberEpoch != gen+1 {
		t.Fatalf("a joins the classic group: %+v (%s)", a, kerr.ErrorForCode(a.Err))
	}
	if list, _ := first.List(ctx); len(list) != 1 || list[0].Type != coordinator.TypeConsumer {
		t.Fatalf("listed after the upgrade: %+v", list)
	}
	d, code := first.DescribeConsumer(ctx, "g")
	if code != 0 || len(d.Members) != 2 || !d.Members[slices.IndexFunc(d.Members, func(m consumer.MemberDescription) bool { return m.ID == c1 })].Classic {
		t.Fatalf("described after the upgrade: %+v %v", d, code)
	}

	// A restart mid-migration: a new coordinator on the same store.
	first.Close()
	second := start()
	if code := second.Heartbeat(ctx, "g", c1, "", gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("c1's heartbeat after the restart: %v", kerr.ErrorForCode(code))
	}
	// An eager member rejoins owning nothing: it keeps what its target
	// leaves it.
	j1 = classicJoin(second, c1)
	if j1.Err != 0 || j1.Generation != gen+1 || j1.Leader != "" || j1.Protocol != "range" {
		t.Fatalf("c1 rejoins inside the consumer group: %+v", j1)
	}
	s1 = second.Sync(ctx, "g", groups.SyncRequest{MemberID: c1, Generation: j1.Generation})(ctx)
	kept := partitionsIn(t, s1.Assignment)
	if s1.Err != 0 || len(kept) != 2 {
		t.Fatalf("c1 syncs inside the consumer group: %v %v", kerr.ErrorForCode(s1.Err), kept)
	}
	code, codes := second.CommitOffsets(ctx, "g", c1, "", j1.Generation, 7,
		[]metastore.CommittedOffset{{TopicID: topic.ID, Partition: kept[0], Offset: 5, LeaderEpoch: -1}}, nil)
	if code != 0 || codes[0] != 0 {
		t.Fatalf("c1 commits with its generation: %v %v", kerr.ErrorForCode(code), codes)
	}
	a = consumerBeat(second, "g", "a", a.MemberEpoch, consumer.Assignment{})
	if a.Err != 0 || a.Assignment.Len() != 2 {
		t.Fatalf("a gets the released partitions: %+v", a)
	}
	if code := second.Heartbeat(ctx, "g", c1, "", j1.Generation); code != 0 {
		t.Fatalf("c1 is stable: %v", kerr.ErrorForCode(code))
	}

	// a leaves: only a classic member remains, the group is classic
	// again (bidirectional), in a rebalance.
	if r := consumerBeat(second, "g", "a", -1, nil); r.Err != 0 {
		t.Fatalf("a leaves: %v", kerr.ErrorForCode(r.Err))
	}
	desc, _ := second.Describe(ctx, "g")
	if desc.Type != coordinator.TypeClassic || desc.State != "PreparingRebalance" {
		t.Fatalf("after the downgrade: %+v", desc)
	}
	second.Close()
	third := start()
	if code := third.Heartbeat(ctx, "g", c1, "", j1.Generation); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("c1's heartbeat after the downgrade and a restart: %v", kerr.ErrorForCode(code))
	}
	j1 = classicJoin(third, c1)
	if j1.Err != 0 || j1.Leader != c1 || j1.Generation <= gen+1 {
		t.Fatalf("c1 rejoins the classic group: %+v", j1)
	}
	offs, err := s.FetchOffsets(ctx, "g")
	if err != nil || len(offs) != 1 || offs[0].Offset != 5 {
		t.Fatalf("offsets kept across the migrations: %+v %v", offs, err)
	}
}

// With group.consumer.migration.policy=disabled, a consumer member
// cannot join a classic group with members (GROUP_ID_NOT_FOUND), and a
// consumer group keeps its classic members when its last consumer member
// leaves (no downgrade) under upgrade.
func TestMigrationPolicies(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	newC := func(p consumer.MigrationPolicy) *coordinator.Coordinator {
		c := coordinator.New(s, coordinator.Options{
			Groups:   groups.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second},
			Consumer: consumer.Config{MigrationPolicy: p},
		})
		t.Cleanup(c.Close)
		return c
	}
	classic := func(c *coordinator.Coordinator, group string) string {
		req := groups.JoinRequest{Version: 3, ClientID: "c", SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
			ProtocolType: "consumer", Protocols: []groups.Protocol{{Name: "range", Metadata: subscription("t")}}}
		j := c.Join(ctx, group, req)(ctx)
		if s := c.Sync(ctx, group, groups.SyncRequest{MemberID: j.MemberID, Generation: j.Generation,
			Assignments: map[string][]byte{j.MemberID: assignmentOf("t", 0, 1)}})(ctx); j.Err != 0 || s.Err != 0 {
			t.Fatalf("classic member: %v %v", kerr.ErrorForCode(j.Err), kerr.ErrorForCode(s.Err))
		}
		return j.MemberID
	}

	disabled := newC(consumer.MigrateDisabled)
	classic(disabled, "g1")
	if r := consumerJoin(disabled, "g1", "a", "t"); r.Err != kerr.GroupIDNotFound.Code {
		t.Fatalf("disabled: consumer member into a classic group: %v", kerr.ErrorForCode(r.Err))
	}
	downgradeOnly := newC(consumer.MigrateDowngrade)
	classic(downgradeOnly, "g2")
	if r := consumerJoin(downgradeOnly, "g2", "a", "t"); r.Err != kerr.GroupIDNotFound.Code {
		t.Fatalf("downgrade: consumer member into a classic group: %v", kerr.ErrorForCode(r.Err))
	}

	upgradeOnly := newC(consumer.MigrateUpgrade)
	classic(upgradeOnly, "g3")
	if r := consumerJoin(upgradeOnly, "g3", "a", "t"); r.Err != 0 {
		t.Fatalf("upgrade: %v", kerr.ErrorForCode(r.Err))
	}
	if r := consumerBeat(upgradeOnly, "g3", "a", -1, nil); r.Err != 0 {
		t.Fatalf("a leaves: %v", kerr.ErrorForCode(r.Err))
	}
	d, code := upgradeOnly.DescribeConsumer(ctx, "g3")
	if code != 0 || len(d.Members) != 1 || !d.Members[0].Classic {
		t.Fatalf("upgrade only: the consumer group keeps its classic member: %+v %v", d, code)
	}
}
