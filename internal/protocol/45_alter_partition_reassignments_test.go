package protocol_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
)

// reassign asks for one partition's replicas (null: a cancellation) and
// returns "CODE: message".
func (f *fixture) reassign(version int16, allowFactorChange bool, topic string, partition int32, replicas []int32) string {
	f.t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.AllowReplicationFactorChange = allowFactorChange
	req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: partition, Replicas: replicas}}}}
	resp := do[*kmsg.AlterPartitionAssignmentsResponse](f, version, req)
	if resp.ErrorCode != 0 {
		return "request: " + shortCode(resp.ErrorCode)
	}
	if version >= 1 && resp.AllowReplicationFactorChange != allowFactorChange {
		f.t.Errorf("AllowReplicationFactorChange %v echoed as %v", allowFactorChange, resp.AllowReplicationFactorChange)
	}
	p := resp.Topics[0].Partitions[0]
	out := shortCode(p.ErrorCode)
	if p.ErrorMessage != nil {
		out += ": " + *p.ErrorMessage
	}
	return out
}

func TestAlterPartitionReassignments(t *testing.T) {
	f, _ := startPair(t)
	f.createTopic("apr", 4)
	var ids []int32
	for _, b := range f.metadata(12, false).Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	a, b := ids[0], ids[1]
	absent := b + 10
	before := leadersOf(f.metadata(12, false, "apr").Topics[0])
	for _, tc := range []struct {
		name      string
		version   int16
		allow     bool
		topic     string
		partition int32
		replicas  []int32
		want      string
	}{
		{name: "to the other agent", version: 0, topic: "apr", replicas: []int32{b}, want: "NONE"},
		{name: "to both agents", version: 1, allow: true, topic: "apr", partition: 3, replicas: []int32{b, a}, want: "NONE"},
		{name: "cancel", version: 0, topic: "apr", replicas: nil, want: "NO_REASSIGNMENT_IN_PROGRESS: No partition reassignment is in progress."},
		{name: "unknown topic", version: 1, allow: true, topic: "nope", replicas: []int32{a}, want: "UNKNOWN_TOPIC_OR_PARTITION: Unable to find a topic named nope."},
		{name: "unknown partition", version: 0, topic: "apr", partition: 4, replicas: []int32{a}, want: "UNKNOWN_TOPIC_OR_PARTITION: Unable to find partition apr:4."},
		{name: "unknown partition, cancel", version: 0, topic: "apr", partition: -1, replicas: nil, want: "UNKNOWN_TOPIC_OR_PARTITION: Unable to find partition apr:-1."},
		{name: "no replica", version: 0, topic: "apr", replicas: []int32{}, want: "INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes an empty replica list."},
		{
			name: "not an agent", version: 0, topic: "apr", replicas: []int32{a, absent},
			want: fmt.Sprintf("INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes broker %d, but no such broker is registered.", absent),
		},
		{
			name: "an agent twice", version: 0, topic: "apr", replicas: []int32{b, a, b},
			want: fmt.Sprintf("INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes the broker %d more than once.", b),
		},
		// Kafka goes through the ids in order: the smaller fault first.
		{
			name: "twice, then not an agent", version: 0, topic: "apr", replicas: []int32{absent, a, a},
			want: fmt.Sprintf("INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes the broker %d more than once.", a),
		},
		{
			name: "not an agent, twice", version: 0, topic: "apr", replicas: []int32{-1, -1},
			want: "INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes broker -1, but no such broker is registered.",
		},
		{name: "factor kept", version: 1, allow: false, topic: "apr", replicas: []int32{b}, want: "NONE"},
		{name: "factor changed", version: 1, allow: false, topic: "apr", replicas: []int32{a, b}, want: "INVALID_REPLICATION_FACTOR: The replication factor is changed from 1 to 2"},
		// v0 has no such option: the factor may change.
		{name: "factor changed at v0", version: 0, allow: false, topic: "apr", replicas: []int32{a, b}, want: "NONE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			if got := f.reassign(tc.version, tc.allow, tc.topic, tc.partition, tc.replicas); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	f.t = t

	// Nothing moved, nothing in progress.
	md := f.metadata(12, false, "apr").Topics[0]
	if after := leadersOf(md); !slices.Equal(before, after) {
		t.Errorf("leaders %v before the reassignments, %v after", before, after)
	}
	for _, p := range md.Partitions {
		if len(p.Replicas) != 1 || p.Replicas[0] != p.Leader {
			t.Errorf("partition %d: replicas %v after a reassignment, want its leader %d alone", p.Partition, p.Replicas, p.Leader)
		}
	}
	for _, topics := range [][]kmsg.ListPartitionReassignmentsRequestTopic{
		nil,
		{{Topic: "apr", Partitions: []int32{0, 1, 2, 3, 9}}, {Topic: "nope", Partitions: []int32{0}}},
	} {
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		req.Topics = topics
		resp := do[*kmsg.ListPartitionReassignmentsResponse](f, 0, req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 0 {
			t.Errorf("list reassignments of %v: %s %+v, want none", topics, shortCode(resp.ErrorCode), resp.Topics)
		}
	}
}

func leadersOf(mt kmsg.MetadataResponseTopic) []int32 {
	var out []int32
	for _, p := range mt.Partitions {
		out = append(out, p.Leader)
	}
	return out
}

// TestReassignmentsUnauthorized: without ALTER (DESCRIBE for the list)
// on the cluster, Kafka's error answer: the error for the request and,
// echoed, for every named partition.
func TestReassignmentsUnauthorized(t *testing.T) {
	_, mallory := aclFixtures(t, acl.Options{})
	if got := mallory.reassign(1, true, "t", 0, []int32{0}); got != "request: CLUSTER_AUTHORIZATION_FAILED" {
		t.Errorf("alter: %s", got)
	}
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0}, {Partition: 1, Replicas: []int32{0}}}}}
	resp := do[*kmsg.AlterPartitionAssignmentsResponse](mallory, 0, req)
	for _, p := range resp.Topics[0].Partitions {
		if shortCode(p.ErrorCode) != "CLUSTER_AUTHORIZATION_FAILED" || p.ErrorMessage == nil {
			t.Errorf("partition %d: %s", p.Partition, shortCode(p.ErrorCode))
		}
	}
	list := kmsg.NewPtrListPartitionReassignmentsRequest()
	list.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	lresp := do[*kmsg.ListPartitionReassignmentsResponse](mallory, 0, list)
	if shortCode(lresp.ErrorCode) != "CLUSTER_AUTHORIZATION_FAILED" || len(lresp.Topics) != 1 || len(lresp.Topics[0].Partitions) != 2 {
		t.Errorf("list: %s %+v", shortCode(lresp.ErrorCode), lresp.Topics)
	}
}
