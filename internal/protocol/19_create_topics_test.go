package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newTopic is one topic of a CreateTopics request; configs are name,
// value pairs.
func newTopic(name string, partitions int32, replication int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, replication
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func TestCreateTopics(t *testing.T) {
	f := start(t)
	f.createTopic("exists", 1)
	assigned := newTopic("assigned", -1, -1)
	assignment := []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}, {Partition: 1, Replicas: []int32{1}}}
	assigned.ReplicaAssignment = assignment
	assignedWithCount := newTopic("assigned2", 2, -1)
	assignedWithCount.ReplicaAssignment = assignment
	assignedWithFactor := newTopic("assigned3", -1, 1)
	assignedWithFactor.ReplicaAssignment = assignment

	type want struct {
		code       int16
		partitions int32 // when created (or validated)
	}
	for _, tc := range []struct {
		name         string
		version      int16
		validateOnly bool
		topics       []kmsg.CreateTopicsRequestTopic
		want         []want // per topic, in order
		created      []string
	}{
		{name: "three partitions", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("a", 3, -1)},
			want: []want{{partitions: 3}}, created: []string{"a"}},
		{name: "v0", version: 0, topics: []kmsg.CreateTopicsRequestTopic{newTopic("v0", 2, 1)},
			want: []want{{partitions: 2}}, created: []string{"v0"}},
		{name: "default partitions", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("b", -1, -1)},
			want: []want{{partitions: 1}}, created: []string{"b"}},
		// Any replication factor is accepted: the bucket keeps the data.
		{name: "replication factor 3", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("rf3", 1, 3)},
			want: []want{{partitions: 1}}, created: []string{"rf3"}},
		{name: "with configs", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("c", 1, -1, "retention.ms", "1000", "cleanup.policy", "compact")},
			want: []want{{partitions: 1}}, created: []string{"c"}},
		{name: "replica assignment gives the count", version: 7, topics: []kmsg.CreateTopicsRequestTopic{assigned},
			want: []want{{partitions: 2}}, created: []string{"assigned"}},
		{name: "replica assignment and a count", version: 7, topics: []kmsg.CreateTopicsRequestTopic{assignedWithCount},
			want: []want{{code: kerr.InvalidRequest.Code}}},
		{name: "replica assignment and a factor", version: 7, topics: []kmsg.CreateTopicsRequestTopic{assignedWithFactor},
			want: []want{{code: kerr.InvalidRequest.Code}}},
		{name: "already exists", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("exists", 1, -1)},
			want: []want{{code: kerr.TopicAlreadyExists.Code}}},
		{name: "zero partitions", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("p0", 0, -1)},
			want: []want{{code: kerr.InvalidPartitions.Code}}},
		{name: "negative partitions", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("pneg", -5, -1)},
			want: []want{{code: kerr.InvalidPartitions.Code}}},
		{name: "replication factor 0", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("rf0", 1, 0)},
			want: []want{{code: kerr.InvalidReplicationFactor.Code}}},
		{name: "invalid names", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("bad name", 1, -1), newTopic("", 1, -1), newTopic("..", 1, -1)},
			want: []want{{code: kerr.InvalidTopicException.Code}, {code: kerr.InvalidTopicException.Code}, {code: kerr.InvalidTopicException.Code}}},
		{name: "bad config value", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("badcfg", 1, -1, "retention.ms", "soon")},
			want: []want{{code: kerr.InvalidConfig.Code}}},
		{name: "unknown config", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("unknowncfg", 1, -1, "no.such.config", "1")},
			want: []want{{code: kerr.InvalidConfig.Code}}},
		{name: "name given twice", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("twice", 1, -1), newTopic("twice", 2, -1)},
			want: []want{{code: kerr.InvalidRequest.Code}, {code: kerr.InvalidRequest.Code}}},
		{name: "validate only", version: 7, validateOnly: true, topics: []kmsg.CreateTopicsRequestTopic{newTopic("vo", 4, -1)},
			want: []want{{partitions: 4}}},
		{name: "validate only an existing topic", version: 7, validateOnly: true, topics: []kmsg.CreateTopicsRequestTopic{newTopic("exists", 1, -1)},
			want: []want{{code: kerr.TopicAlreadyExists.Code}}},
		{name: "validate only bad partitions", version: 1, validateOnly: true, topics: []kmsg.CreateTopicsRequestTopic{newTopic("vo", 0, -1)},
			want: []want{{code: kerr.InvalidPartitions.Code}}},
		{name: "one good, one bad", version: 7, topics: []kmsg.CreateTopicsRequestTopic{newTopic("good", 1, -1), newTopic("exists", 1, -1)},
			want: []want{{partitions: 1}, {code: kerr.TopicAlreadyExists.Code}}, created: []string{"good"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis, req.ValidateOnly, req.Topics = 10_000, tc.validateOnly, tc.topics
			resp := do[*kmsg.CreateTopicsResponse](f, tc.version, req)
			if len(resp.Topics) != len(tc.want) {
				t.Fatalf("%d topics answered, want %d", len(resp.Topics), len(tc.want))
			}
			for i, w := range tc.want {
				rt := resp.Topics[i]
				expectCode(t, "topic "+rt.Topic, rt.ErrorCode, w.code)
				if tc.version < 5 {
					continue // no description of the topic before v5
				}
				wantPartitions, wantRF := w.partitions, int16(1)
				if w.code != 0 {
					wantPartitions, wantRF = -1, -1
				}
				if rt.NumPartitions != wantPartitions || rt.ReplicationFactor != wantRF {
					t.Errorf("topic %s: %d partitions, replication factor %d; want %d, %d", rt.Topic, rt.NumPartitions, rt.ReplicationFactor, wantPartitions, wantRF)
				}
				if w.code == 0 && !tc.validateOnly && (rt.TopicID == [16]byte{} || len(rt.Configs) == 0) {
					t.Errorf("topic %s: topic id %x, %d configs; want an id and the configs", rt.Topic, rt.TopicID, len(rt.Configs))
				}
			}
			for _, name := range tc.created {
				if code := f.metadata(12, false, name).Topics[0].ErrorCode; code != 0 {
					t.Errorf("created topic %s: metadata answers %s", name, codeName(code))
				}
			}
		})
	}
	// Validation created nothing.
	for _, name := range []string{"vo", "p0", "rf0", "badcfg", "twice", "assigned2", "assigned3"} {
		expectCode(t, "metadata for "+name, f.metadata(12, false, name).Topics[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	}
}

func TestCreateTopicsReportsConfigs(t *testing.T) {
	f := start(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{newTopic("c", 1, -1, "retention.ms", "1000")}
	rt := do[*kmsg.CreateTopicsResponse](f, 7, req).Topics[0]
	expectCode(t, "create", rt.ErrorCode, 0)
	found := false
	for _, c := range rt.Configs {
		if c.Name == "retention.ms" {
			found = true
			if c.Value == nil || *c.Value != "1000" || c.Source != 1 { // DYNAMIC_TOPIC_CONFIG
				t.Errorf("retention.ms: value %v, source %d; want 1000, 1", c.Value, c.Source)
			}
		}
	}
	if !found {
		t.Error("retention.ms not among the created topic's configs")
	}
}

// TestKafkaTopicConfigsAccepted: configs tools set that make no sense
// without local disks or replicas, and the deprecated ones Kafka 3.x still
// accepts, are accepted and described back.
func TestKafkaTopicConfigsAccepted(t *testing.T) {
	f := start(t)
	set := []string{
		"preallocate", "true", "index.interval.bytes", "8192", "segment.index.bytes", "1048576",
		"segment.jitter.ms", "1000", "message.format.version", "2.8", "message.downconversion.enable", "false",
		"message.timestamp.difference.max.ms", "60000", "message.timestamp.before.max.ms", "60000",
		"message.timestamp.after.max.ms", "60000", "local.retention.ms", "-2", "remote.storage.enable", "false",
		"compression.zstd.level", "5", "leader.replication.throttled.replicas", "*",
	}
	f.createTopic("tooled", 1, set...)
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "tooled"
	req.Resources = append(req.Resources, rr)
	got := map[string]string{}
	for _, c := range do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0].Configs {
		if c.Value != nil {
			got[c.Name] = *c.Value
		}
	}
	for i := 0; i < len(set); i += 2 {
		if got[set[i]] != set[i+1] {
			t.Errorf("%s described as %q, set to %q", set[i], got[set[i]], set[i+1])
		}
	}
}
