package protocol_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadata asks for topics by name (nil: all topics).
func (f *fixture) metadata(version int16, allowAuto bool, topics ...string) *kmsg.MetadataResponse {
	f.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = allowAuto
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return do[*kmsg.MetadataResponse](f, version, req)
}

func TestMetadata(t *testing.T) {
	f := start(t)
	f.createTopic("t", 3)
	tID := f.metadata(12, false, "t").Topics[0].TopicID

	type topicWant struct {
		code       int16
		partitions int
	}
	for _, tc := range []struct {
		name    string
		version int16
		req     func() *kmsg.MetadataRequest
		want    map[string]topicWant // by topic name ("" for one asked by id); exactly these
	}{
		// The cases listing all topics come before those auto-creating some.
		{name: "all topics", version: 12, req: func() *kmsg.MetadataRequest { return kmsg.NewPtrMetadataRequest() },
			want: map[string]topicWant{"t": {partitions: 3}}},
		{name: "no topics", version: 1, req: func() *kmsg.MetadataRequest {
			r := kmsg.NewPtrMetadataRequest()
			r.Topics = []kmsg.MetadataRequestTopic{}
			return r
		}, want: map[string]topicWant{}},
		{name: "v0 empty list is all topics", version: 0, req: func() *kmsg.MetadataRequest {
			r := kmsg.NewPtrMetadataRequest()
			r.Topics = []kmsg.MetadataRequestTopic{}
			return r
		}, want: map[string]topicWant{"t": {partitions: 3}}},
		{name: "by name", version: 12, req: byNames(false, "t"), want: map[string]topicWant{"t": {partitions: 3}}},
		{name: "unknown without auto-creation", version: 12, req: byNames(false, "nope"),
			want: map[string]topicWant{"nope": {code: kerr.UnknownTopicOrPartition.Code}}},
		// Kafka answers a topic it has just auto-created LEADER_NOT_AVAILABLE
		// until its partitions have leaders; in Floe it is usable at once.
		{name: "auto-created", version: 12, req: byNames(true, "auto1"), want: map[string]topicWant{"auto1": {partitions: 1}}},
		{name: "auto-creation implied before v4", version: 3, req: byNames(false, "auto2"), want: map[string]topicWant{"auto2": {partitions: 1}}},
		{name: "invalid name not auto-created", version: 12, req: byNames(true, "bad name"),
			want: map[string]topicWant{"bad name": {code: kerr.InvalidTopicException.Code}}},
		{name: "known and unknown", version: 9, req: byNames(false, "t", "nope"),
			want: map[string]topicWant{"t": {partitions: 3}, "nope": {code: kerr.UnknownTopicOrPartition.Code}}},
		{name: "by id", version: 12, req: func() *kmsg.MetadataRequest {
			r := kmsg.NewPtrMetadataRequest()
			r.Topics = []kmsg.MetadataRequestTopic{{TopicID: tID}}
			return r
		}, want: map[string]topicWant{"t": {partitions: 3}}},
		{name: "unknown id", version: 12, req: func() *kmsg.MetadataRequest {
			r := kmsg.NewPtrMetadataRequest()
			r.Topics = []kmsg.MetadataRequestTopic{{TopicID: [16]byte{1, 2, 3}}}
			return r
		}, want: map[string]topicWant{"": {code: kerr.UnknownTopicID.Code}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do[*kmsg.MetadataResponse](f, tc.version, tc.req())
			got := map[string]kmsg.MetadataResponseTopic{}
			for _, rt := range resp.Topics {
				name := ""
				if rt.Topic != nil {
					name = *rt.Topic
				}
				got[name] = rt
			}
			for name, w := range tc.want {
				rt, ok := got[name]
				if !ok {
					t.Errorf("topic %q missing from %d topics", name, len(resp.Topics))
					continue
				}
				expectCode(t, "topic "+name, rt.ErrorCode, w.code)
				if len(rt.Partitions) != w.partitions {
					t.Errorf("topic %q: %d partitions, want %d", name, len(rt.Partitions), w.partitions)
				}
				if w.code == 0 && tc.version >= 10 && rt.TopicID == [16]byte{} {
					t.Errorf("topic %q: no topic id", name)
				}
			}
			for name := range got {
				if _, ok := tc.want[name]; !ok {
					t.Errorf("unexpected topic %q", name)
				}
			}
		})
	}
}

func byNames(allowAuto bool, names ...string) func() *kmsg.MetadataRequest {
	return func() *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		r.AllowAutoTopicCreation = allowAuto
		r.Topics = []kmsg.MetadataRequestTopic{}
		for _, n := range names {
			r.Topics = append(r.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(n)})
		}
		return r
	}
}

// TestMetadataBrokers: one agent is the only broker, the controller, and
// every partition's leader and only replica, at leader epoch 0.
func TestMetadataBrokers(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	host, portText, err := net.SplitHostPort(f.a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	resp := f.metadata(12, false, "t")
	if len(resp.Brokers) != 1 {
		t.Fatalf("%d brokers, want 1", len(resp.Brokers))
	}
	b := resp.Brokers[0]
	if b.Host != host || b.Port != int32(port) {
		t.Errorf("broker %s:%d, want %s:%d", b.Host, b.Port, host, port)
	}
	if resp.ControllerID != b.NodeID {
		t.Errorf("controller %d, want the broker %d", resp.ControllerID, b.NodeID)
	}
	if resp.ClusterID == nil || *resp.ClusterID == "" {
		t.Error("no cluster id")
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.Leader != b.NodeID || p.LeaderEpoch != 0 ||
			len(p.Replicas) != 1 || p.Replicas[0] != b.NodeID || len(p.ISR) != 1 || p.ISR[0] != b.NodeID {
			t.Errorf("partition %d: %+v", p.Partition, p)
		}
	}
}
