package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetDelete(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.createTopic("other", 1)
	f.commit(9, "empty", -1, "", "t", 0, 5)
	f.commit(9, "empty", -1, "", "t", 1, 6)
	member, gen := f.stableGroup("busy") // subscribed to t
	f.commit(9, "busy", gen, member, "t", 0, 1)
	f.commit(9, "busy", gen, member, "other", 0, 2)

	for _, tc := range []struct {
		name      string
		group     string
		topic     string
		wantGroup int16
		wantPart  int16
	}{
		{name: "group without members", group: "empty", topic: "t"},
		{name: "topic a member subscribes to", group: "busy", topic: "t", wantPart: kerr.GroupSubscribedToTopic.Code},
		{name: "topic no member subscribes to", group: "busy", topic: "other"},
		{name: "unknown group", group: "nope", topic: "t", wantGroup: kerr.GroupIDNotFound.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = tc.group
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: tc.topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			r := do[*kmsg.OffsetDeleteResponse](f, 0, req)
			expectCode(t, "group", r.ErrorCode, tc.wantGroup)
			if tc.wantGroup != 0 {
				return
			}
			expectCode(t, "partition", r.Topics[0].Partitions[0].ErrorCode, tc.wantPart)
		})
	}
	for _, tc := range []struct {
		group, topic string
		partition    int32
		want         int64
	}{{"empty", "t", 0, -1}, {"empty", "t", 1, 6}, {"busy", "t", 0, 1}, {"busy", "other", 0, -1}} {
		if got := f.fetchOffset(tc.group, tc.topic, tc.partition).Offset; got != tc.want {
			t.Errorf("%s %s/%d: offset %d after the deletes, want %d", tc.group, tc.topic, tc.partition, got, tc.want)
		}
	}
}
