package compat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// The admin APIs that describe and move partitions, through the clients
// that send them.

// TestDescribeTopicPartitionsPaged walks every partition of the cluster
// with DescribeTopicPartitions through franz-go, page by page, as the
// Java admin client's describeTopics does: asking for more partitions
// than an answer may hold, it gets pages of 2000 and follows the
// cursor. No Go client has a call for this API; kgo negotiates the
// version from ApiVersions and sends the raw request.
func TestDescribeTopicPartitionsPaged(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createTopic(t, ctx, a.Addr(), "dtp-big", 4500)
	createTopic(t, ctx, a.Addr(), "dtp-small", 3)
	cl := newClient(t, a.Addr())
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{}
	for _, mt := range md.Topics {
		for _, p := range mt.Partitions {
			want[fmt.Sprintf("%s/%d", *mt.Topic, p.Partition)] = p.Leader
		}
	}

	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = 10_000
	seen := map[string]bool{}
	pages := 0
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		n := 0
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 {
				t.Fatalf("%s: error %d", *rt.Topic, rt.ErrorCode)
			}
			for _, p := range rt.Partitions {
				key := fmt.Sprintf("%s/%d", *rt.Topic, p.Partition)
				if seen[key] {
					t.Fatalf("%s described twice", key)
				}
				seen[key] = true
				if leader, ok := want[key]; !ok || leader != p.LeaderID {
					t.Fatalf("%s: leader %d, Metadata says %d (known: %v)", key, p.LeaderID, leader, ok)
				}
				n++
			}
		}
		if n > 2000 {
			t.Fatalf("page %d holds %d partitions, more than 2000", pages, n)
		}
		if resp.NextCursor == nil {
			break
		}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	if len(seen) != len(want) || pages != 3 {
		t.Fatalf("%d partitions in %d pages, want %d in 3", len(seen), pages, len(want))
	}
}

// twoAgents starts two agents of one cluster and waits until the first
// lists both, so that partitions spread over two leaders.
func twoAgents(t *testing.T, ctx context.Context) (a, b *agenttest.Agent) {
	t.Helper()
	a = agenttest.Start(t, agenttest.Options{})
	b = agenttest.StartPeer(t, a, agenttest.Options{})
	// A raw connection: franz-go's clients would cache the first answer.
	c := testutil.Dial(t, a.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	for len(c.Do(req).(*kmsg.MetadataResponse).Brokers) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the first agent never listed the second")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return a, b
}

// leadersOf returns each partition's leader as Metadata reports it.
func leadersOf(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) map[int32]int32 {
	t.Helper()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int32{}
	for p, pd := range md.Topics[topic].Partitions {
		out[p] = pd.Leader
	}
	return out
}

// TestLogDirs describes the agents' log dirs with kadm and sarama, which
// ask every broker, and moves partitions between dirs with kadm: each
// agent reports its one virtual dir with the partitions it leads, sized
// as stored, and a move succeeds only to where the data is.
func TestLogDirs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, _ := twoAgents(t, ctx)
	const topic, partitions = "logdirs", 8
	createTopic(t, ctx, a.Addr(), topic, partitions)
	cl := newClient(t, a.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(partitions) {
		for i := range int(p) + 1 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "record %d of %d", i, p)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	id, err := a.Store.Topic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	usage, err := a.Store.PartitionUsage(ctx, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, a.Addr())
	leaders := leadersOf(t, ctx, adm, topic)

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("log dirs of %d brokers, want 2", len(all))
	}
	seen := map[int32]bool{}
	all.Each(func(d kadm.DescribedLogDir) {
		if d.Dir != "bucket://floe" || d.Err != nil {
			t.Errorf("broker %d: dir %q error %v", d.Broker, d.Dir, d.Err)
		}
		for _, p := range d.Topics.Sorted() {
			if seen[p.Partition] || leaders[p.Partition] != d.Broker || p.Size != usage[p.Partition].Bytes || p.Size == 0 {
				t.Errorf("broker %d lists %s/%d with %d bytes (leader %d, %d bytes stored, seen %v)",
					d.Broker, p.Topic, p.Partition, p.Size, leaders[p.Partition], usage[p.Partition].Bytes, seen[p.Partition])
			}
			seen[p.Partition] = true
		}
	})
	if len(seen) != partitions {
		t.Errorf("%d partitions listed, want %d", len(seen), partitions)
	}

	// sarama asks each broker at v4 with null topics.
	sadm, err := sarama.NewClusterAdmin([]string{a.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sadm.Close()
	var ids []int32
	for id := range all {
		ids = append(ids, id)
	}
	byBroker, err := sadm.DescribeLogDirs(ids)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for broker, dirs := range byBroker {
		if len(dirs) != 1 || dirs[0].Path != "bucket://floe" || dirs[0].TotalBytes != -1 || dirs[0].UsableBytes != -1 {
			t.Fatalf("broker %d: dirs %+v, want the virtual one, of unknown volume size", broker, dirs)
		}
		for _, rt := range dirs[0].Topics {
			for _, p := range rt.Partitions {
				if leaders[p.PartitionID] != broker || p.Size != usage[p.PartitionID].Bytes {
					t.Errorf("sarama: broker %d lists %d with %d bytes", broker, p.PartitionID, p.Size)
				}
				n++
			}
		}
	}
	if n != partitions {
		t.Errorf("sarama: %d partitions listed, want %d", n, partitions)
	}

	// Moves: to the virtual dir, a no-op on the partition's leader and
	// REPLICA_NOT_AVAILABLE elsewhere; to any other dir,
	// LOG_DIR_NOT_FOUND.
	var move kadm.AlterReplicaLogDirsReq
	move.Add("bucket://floe", kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}, 3: {}}})
	move.Add("/var/lib/kafka/data", kadm.TopicsSet{topic: {4: {}}})
	moved, err := adm.AlterAllReplicaLogDirs(ctx, move)
	if err != nil {
		t.Fatal(err)
	}
	moved.Each(func(r kadm.AlterReplicaLogDirsResponse) {
		var want error
		switch {
		case r.Partition == 4:
			want = kerr.LogDirNotFound
		case leaders[r.Partition] != r.Broker:
			want = kerr.ReplicaNotAvailable
		}
		if !errors.Is(r.Err, want) || (want == nil && r.Err != nil) {
			t.Errorf("move %d to %s on broker %d: %v, want %v", r.Partition, r.Dir, r.Broker, r.Err, want)
		}
	})
}

// TestReassignmentsAndElections drives partition reassignment and leader
// election with kadm, sarama's ClusterAdmin and kafka-go's Client, as
// kafka-reassign-partitions.sh and kafka-leader-election.sh would: valid
// targets are accepted and nothing moves, invalid ones get Kafka's
// errors, none is ever in progress, and no election is needed.
func TestReassignmentsAndElections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := twoAgents(t, ctx)
	const topic = "reassign"
	createTopic(t, ctx, a.Addr(), topic, 4)
	adm := newAdmin(t, a.Addr())
	before := leadersOf(t, ctx, adm, topic)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil || len(md.Brokers) != 2 {
		t.Fatalf("brokers %v: %v", md.Brokers, err)
	}
	one, two := md.Brokers[0].NodeID, md.Brokers[1].NodeID

	// kadm: a move, a cancellation, an unknown broker, an unknown
	// partition; with the replication factor forbidden to change.
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, []int32{two})
	req.CancelAssign(topic, 1)
	req.Assign(topic, 2, []int32{one, 99})
	req.Assign(topic, 7, []int32{one})
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]error{0: nil, 1: kerr.NoReassignmentInProgress, 2: kerr.InvalidReplicaAssignment, 7: kerr.UnknownTopicOrPartition}
	resps.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
		if !errors.Is(r.Err, want[r.Partition]) || (want[r.Partition] == nil && r.Err != nil) {
			t.Errorf("kadm: reassign %d: %v %s, want %v", r.Partition, r.Err, r.ErrMessage, want[r.Partition])
		}
	})
	var grow kadm.AlterPartitionAssignmentsReq
	grow.Assign(topic, 3, []int32{one, two})
	resps, err = adm.AlterPartitionAssignments(kadm.ForbidAlterRf(ctx), grow)
	if err != nil || !errors.Is(resps[topic][3].Err, kerr.InvalidReplicationFactor) {
		t.Errorf("kadm: growing the replication factor when forbidden: %v %+v", err, resps)
	}
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil || len(listed) != 0 {
		t.Errorf("kadm: reassignments in progress %+v, %v; want none", listed, err)
	}
	elected, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {0: {}, 3: {}}, "nope": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for tn, ps := range map[string]map[int32]error{topic: {0: kerr.ElectionNotNeeded, 3: kerr.ElectionNotNeeded}, "nope": {0: kerr.UnknownTopicOrPartition}} {
		for p, wantErr := range ps {
			if got := elected[tn][p]; !errors.Is(got.Err, wantErr) {
				t.Errorf("kadm: elect %s/%d: %v, want %v", tn, p, got.Err, wantErr)
			}
		}
	}
	if all, err := adm.ElectLeaders(ctx, kadm.ElectLiveReplica, nil); err != nil || len(all[topic]) != 0 {
		t.Errorf("kadm: unclean election of everything: %+v %v, want nothing elected", all, err)
	}

	// sarama's ClusterAdmin.
	sadm, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sadm.Close()
	if err := sadm.AlterPartitionReassignments(topic, [][]int32{{two}, {one}, {two}, {one}}); err != nil {
		t.Errorf("sarama: reassign every partition: %v", err)
	}
	if err := sadm.AlterPartitionReassignments(topic, [][]int32{{one, one}}); !errors.Is(err, sarama.ErrInvalidReplicaAssignment) {
		t.Errorf("sarama: a broker twice: %v, want %v", err, sarama.ErrInvalidReplicaAssignment)
	}
	status, err := sadm.ListPartitionReassignments(topic, []int32{0, 1, 2, 3})
	if err != nil || len(status) != 0 {
		t.Errorf("sarama: reassignments in progress %v, %v; want none", status, err)
	}
	results, err := sadm.ElectLeaders(sarama.PreferredElection, map[string][]int32{topic: {1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range results[topic] {
		if !errors.Is(r.ErrorCode, sarama.ErrElectionNotNeeded) {
			t.Errorf("sarama: elect %d: %v", p, r.ErrorCode)
		}
	}

	// kafka-go's Client.
	kc := &kafkago.Client{Addr: kafkago.TCP(a.Addr()), Timeout: 10 * time.Second}
	alter, err := kc.AlterPartitionReassignments(ctx, &kafkago.AlterPartitionReassignmentsRequest{
		Topic:       topic,
		Assignments: []kafkago.AlterPartitionReassignmentsRequestAssignment{{PartitionID: 0, BrokerIDs: []int{int(one)}}, {PartitionID: 1, BrokerIDs: []int{int(two) + 100}}},
	})
	if err != nil || alter.Error != nil {
		t.Fatalf("kafka-go: reassign: %v %v", err, alter)
	}
	for _, r := range alter.PartitionResults {
		if wantErr := map[int]error{0: nil, 1: kafkago.InvalidReplicaAssignment}[r.PartitionID]; !errors.Is(r.Error, wantErr) || (wantErr == nil && r.Error != nil) {
			t.Errorf("kafka-go: reassign %d: %v, want %v", r.PartitionID, r.Error, wantErr)
		}
	}
	list, err := kc.ListPartitionReassignments(ctx, &kafkago.ListPartitionReassignmentsRequest{
		Topics: map[string]kafkago.ListPartitionReassignmentsRequestTopic{topic: {PartitionIndexes: []int{0, 1}}},
	})
	if err != nil || list.Error != nil || len(list.Topics) != 0 {
		t.Errorf("kafka-go: reassignments in progress %+v, %v", list, err)
	}
	elect, err := kc.ElectLeaders(ctx, &kafkago.ElectLeadersRequest{Topic: topic, Partitions: []int{0, 1, 2, 3}})
	if err != nil || elect.Error != nil || len(elect.PartitionResults) != 4 {
		t.Fatalf("kafka-go: elect: %v %+v", err, elect)
	}
	for _, r := range elect.PartitionResults {
		if !errors.Is(r.Error, kafkago.ElectionNotNeeded) {
			t.Errorf("kafka-go: elect %d: %v", r.Partition, r.Error)
		}
	}

	// After all that, leadership is where it was.
	if after := leadersOf(t, ctx, newAdmin(t, a.Addr()), topic); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("leaders %v, were %v", after, before)
	}
}

// TestListConfigResources lists config resources with kadm, as
// kafka-configs.sh --describe --entity-type does on Kafka 4.1: every
// topic, every agent, and the groups with dynamic configs (set with
// IncrementalAlterConfigs through a kgo client: kadm has no helper for
// GROUP configs), and nothing of the kinds Floe has no configs for.
func TestListConfigResources(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createTopic(t, ctx, a.Addr(), "lcr-one", 1)
	createTopic(t, ctx, a.Addr(), "lcr-two", 1)
	adm := newAdmin(t, a.Addr())
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := adm.ListConfigResources(ctx)
	if err != nil || all.Err != nil {
		t.Fatalf("list: %v %v", err, all.Err)
	}
	got := map[string]bool{}
	for _, r := range all.Resources {
		got[fmt.Sprintf("%v/%s", r.Type, r.Name)] = true
	}
	want := map[string]bool{
		fmt.Sprintf("%v/lcr-one", kadm.ConfigResourceType(2)):                  true,
		fmt.Sprintf("%v/lcr-two", kadm.ConfigResourceType(2)):                  true,
		fmt.Sprintf("%v/%d", kadm.ConfigResourceType(4), md.Brokers[0].NodeID): true,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed %v, want %v", got, want)
	}
	listGroups := func() []string {
		t.Helper()
		groups, err := adm.ListConfigResources(ctx, kadm.ConfigResourceType(32))
		if err != nil || groups.Err != nil {
			t.Fatalf("list groups: %v %v", err, groups.Err)
		}
		for _, r := range groups.Resources {
			if r.Type != kadm.ConfigResourceType(32) {
				t.Errorf("asked for groups, listed %v/%s", r.Type, r.Name)
			}
		}
		return groups.Names()
	}
	if got := listGroups(); len(got) != 0 {
		t.Errorf("groups with configs: %v, want none", got)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	alter := func(op kmsg.IncrementalAlterConfigOp, value *string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "lcr-group"
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "share.delivery.count.limit", op, value
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("IncrementalAlterConfigs %v: %+v %v", op, resp, err)
		}
	}
	alter(kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3"))
	if got := listGroups(); fmt.Sprint(got) != "[lcr-group]" {
		t.Errorf("groups with configs: %v, want [lcr-group]", got)
	}
	all, err = adm.ListConfigResources(ctx)
	if err != nil || all.Err != nil || len(all.FilterTypes(kadm.ConfigResourceType(32))) != 1 || len(all.Resources) != 4 {
		t.Errorf("every type: %+v %v, want the topics, the agent and lcr-group", all, err)
	}
	alter(kmsg.IncrementalAlterConfigOpDelete, nil)
	if got := listGroups(); len(got) != 0 {
		t.Errorf("after deleting the config: %v, want none", got)
	}
}
