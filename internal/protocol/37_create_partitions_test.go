package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreatePartitions(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	// The cases run in order on the same topic.
	for _, tc := range []struct {
		name         string
		topic        string
		count        int32
		validateOnly bool
		wantCode     int16
		wantCount    int // partitions afterwards (unknown topic: not checked)
	}{
		{name: "validate only", topic: "t", count: 5, validateOnly: true, wantCount: 1},
		{name: "raise to 3", topic: "t", count: 3, wantCount: 3},
		{name: "same count", topic: "t", count: 3, wantCode: kerr.InvalidPartitions.Code, wantCount: 3},
		{name: "fewer", topic: "t", count: 2, wantCode: kerr.InvalidPartitions.Code, wantCount: 3},
		{name: "fewer, validate only", topic: "t", count: 2, validateOnly: true, wantCode: kerr.InvalidPartitions.Code, wantCount: 3},
		{name: "unknown topic", topic: "nope", count: 2, wantCode: kerr.UnknownTopicOrPartition.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.TimeoutMillis, req.ValidateOnly = 10_000, tc.validateOnly
			req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: tc.topic, Count: tc.count}}
			rt := do[*kmsg.CreatePartitionsResponse](f, 3, req).Topics[0]
			expectCode(t, "create partitions", rt.ErrorCode, tc.wantCode)
			if tc.wantCount > 0 {
				if n := len(f.metadata(12, false, tc.topic).Topics[0].Partitions); n != tc.wantCount {
					t.Errorf("%d partitions afterwards, want %d", n, tc.wantCount)
				}
			}
		})
	}
	// A new partition is writable at once.
	if off := f.produce("t", 2, 1, 1000); off != 0 {
		t.Errorf("first offset of a new partition %d, want 0", off)
	}
}

// TestCreatePartitionsAssignments: assignments decide nothing in Floe but
// are checked as Kafka checks them.
func TestCreatePartitionsAssignments(t *testing.T) {
	f := start(t)
	f.createTopic("a", 1)
	self := f.a.NodeID()
	for _, tc := range []struct {
		name       string
		count      int32
		assignment [][]int32
		want       int16
	}{
		{"too few", 3, [][]int32{{self}}, kerr.InvalidReplicaAssignment.Code},
		{"unknown broker", 2, [][]int32{{self + 100}}, kerr.InvalidReplicaAssignment.Code},
		{"broker twice", 2, [][]int32{{self, self}}, kerr.InvalidReplicaAssignment.Code},
		{"empty", 2, [][]int32{{}}, kerr.InvalidReplicaAssignment.Code},
		{"valid", 3, [][]int32{{self}, {self}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "a", tc.count
			for _, r := range tc.assignment {
				rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
			}
			req.Topics = append(req.Topics, rt)
			expectCode(t, "topic", do[*kmsg.CreatePartitionsResponse](f, 3, req).Topics[0].ErrorCode, tc.want)
		})
	}
}
