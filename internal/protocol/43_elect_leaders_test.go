package protocol_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
)

// elect asks for an election of the named partitions ("topic/N"; none:
// null topics) and summarises the answer: the request's error, then
// "topic/N:CODE" per partition and "topic:-" for a topic without any.
func (f *fixture) elect(version int16, electionType int8, partitions ...string) []string {
	f.t.Helper()
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = electionType
	if len(partitions) > 0 {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
	}
	for _, tp := range partitions {
		i := strings.LastIndexByte(tp, '/')
		topic := tp[:i]
		var p int32
		fmt.Sscan(tp[i+1:], &p)
		req.Topics = append(req.Topics, kmsg.ElectLeadersRequestTopic{Topic: topic, Partitions: []int32{p}})
	}
	resp := do[*kmsg.ElectLeadersResponse](f, version, req)
	out := []string{"request:" + shortCode(resp.ErrorCode)}
	for _, rt := range resp.Topics {
		if len(rt.Partitions) == 0 {
			out = append(out, rt.Topic+":-")
		}
		for _, p := range rt.Partitions {
			out = append(out, fmt.Sprintf("%s/%d:%s", rt.Topic, p.Partition, shortCode(p.ErrorCode)))
			if p.ErrorCode != 0 && p.ErrorMessage == nil {
				f.t.Errorf("%s/%d: error without a message", rt.Topic, p.Partition)
			}
		}
	}
	return out
}

func TestElectLeaders(t *testing.T) {
	f, _ := startPair(t)
	f.createTopic("el-a", 3)
	f.createTopic("el-b", 1)
	before := leadersOf(f.metadata(12, false, "el-a").Topics[0])
	for _, tc := range []struct {
		name         string
		version      int16
		electionType int8
		partitions   []string
		want         []string
	}{
		{name: "preferred, v0", version: 0, partitions: []string{"el-a/0", "el-a/2"}, want: []string{"request:NONE", "el-a/0:ELECTION_NOT_NEEDED", "el-a/2:ELECTION_NOT_NEEDED"}},
		{name: "preferred", version: 2, electionType: 0, partitions: []string{"el-b/0"}, want: []string{"request:NONE", "el-b/0:ELECTION_NOT_NEEDED"}},
		{name: "unclean", version: 1, electionType: 1, partitions: []string{"el-a/1"}, want: []string{"request:NONE", "el-a/1:ELECTION_NOT_NEEDED"}},
		{
			name: "unknown", version: 2, partitions: []string{"el-a/3", "nope/0", "el-a/-1"},
			want: []string{"request:NONE", "el-a/3:UNKNOWN_TOPIC_OR_PARTITION", "nope/0:UNKNOWN_TOPIC_OR_PARTITION", "el-a/-1:UNKNOWN_TOPIC_OR_PARTITION"},
		},
		// Every partition: those that needed no election are left out.
		{name: "all", version: 2, electionType: 1, want: []string{"request:NONE", "el-a:-", "el-b:-"}},
		{name: "unknown election type", version: 2, electionType: 2, partitions: []string{"el-a/0"}, want: []string{"request:INVALID_REQUEST", "el-a/0:INVALID_REQUEST"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			if got := f.elect(tc.version, tc.electionType, tc.partitions...); !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
	f.t = t
	if after := leadersOf(f.metadata(12, false, "el-a").Topics[0]); !slices.Equal(before, after) {
		t.Errorf("leaders %v before the elections, %v after", before, after)
	}
}

func TestElectLeadersUnauthorized(t *testing.T) {
	_, mallory := aclFixtures(t, acl.Options{})
	want := []string{"request:CLUSTER_AUTHORIZATION_FAILED", "t/0:CLUSTER_AUTHORIZATION_FAILED"}
	if got := mallory.elect(2, 0, "t/0"); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// v0 has no error for the request: the partitions carry it.
	if got := mallory.elect(0, 0, "t/0"); !slices.Equal(got, []string{"request:NONE", "t/0:CLUSTER_AUTHORIZATION_FAILED"}) {
		t.Errorf("v0: got %v", got)
	}
}
