package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestConsumerGroupDescribe(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	if r := f.consumerHeartbeat(1, "g", "m1", 0, "t"); r.ErrorCode != 0 {
		t.Fatalf("join: %s", codeName(r.ErrorCode))
	}
	f.stableGroup("classic")

	for _, tc := range []struct {
		name        string
		version     int16
		group       string
		wantCode    int16
		wantMembers int
	}{
		{name: "consumer group", version: 1, group: "g", wantMembers: 1},
		{name: "v0", version: 0, group: "g", wantMembers: 1},
		{name: "classic group", version: 1, group: "classic", wantCode: kerr.GroupIDNotFound.Code},
		{name: "unknown group", version: 1, group: "nope", wantCode: kerr.GroupIDNotFound.Code},
		{name: "empty group id", version: 1, group: "", wantCode: kerr.InvalidGroupID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{tc.group}
			req.IncludeAuthorizedOperations = true
			g := do[*kmsg.ConsumerGroupDescribeResponse](f, tc.version, req).Groups[0]
			expectCode(t, "describe", g.ErrorCode, tc.wantCode)
			if g.Group != tc.group || len(g.Members) != tc.wantMembers {
				t.Errorf("group %q with %d members, want %q with %d", g.Group, len(g.Members), tc.group, tc.wantMembers)
			}
			if tc.wantMembers == 0 {
				return
			}
			m := g.Members[0]
			if m.MemberID != "m1" || len(m.SubscribedTopics) != 1 || m.SubscribedTopics[0] != "t" || g.Epoch < 1 || g.AssignorName == "" {
				t.Errorf("group epoch %d assignor %q, member %+v", g.Epoch, g.AssignorName, m)
			}
			if len(m.Assignment.TopicPartitions) != 1 || len(m.Assignment.TopicPartitions[0].Partitions) != 2 || m.Assignment.TopicPartitions[0].Topic != "t" {
				t.Errorf("assignment %+v, want both partitions of t", m.Assignment)
			}
			if g.AuthorizedOperations <= 0 {
				t.Errorf("authorized operations %d, asked for them", g.AuthorizedOperations)
			}
		})
	}
}
