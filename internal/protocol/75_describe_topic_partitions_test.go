package protocol_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// startPair starts two agents on one metadata store and bucket and
// returns a fixture on the first once it lists both, so that partitions
// spread over two leaders.
func startPair(t *testing.T) (f *fixture, peer *agenttest.Agent) {
	t.Helper()
	f = start(t)
	peer = agenttest.StartPeer(t, f.a, agenttest.Options{})
	deadline := time.Now().Add(within)
	for len(f.metadata(12, false).Brokers) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the first agent never listed the second")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return f, peer
}

// describeTopicPartitions asks for topics (all if none) from a cursor
// (none if topic is ""), at most limit partitions.
func (f *fixture) describeTopicPartitions(limit int32, cursorTopic string, cursorPartition int32, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
	f.t.Helper()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = limit
	for _, name := range topics {
		req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
	}
	if cursorTopic != "" {
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: cursorTopic, Partition: cursorPartition}
	}
	return do[*kmsg.DescribeTopicPartitionsResponse](f, 0, req)
}

// page summarises an answer: "topic:error:first-last" per topic (or
// "topic:error:-" without partitions), then "→ topic/partition" for the
// next cursor.
func page(resp *kmsg.DescribeTopicPartitionsResponse) string {
	var parts []string
	for _, rt := range resp.Topics {
		span := "-"
		if n := len(rt.Partitions); n > 0 {
			span = fmt.Sprintf("%d-%d", rt.Partitions[0].Partition, rt.Partitions[n-1].Partition)
			for i, p := range rt.Partitions {
				if p.Partition != rt.Partitions[0].Partition+int32(i) {
					span += " (not consecutive)"
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%s:%s:%s", *rt.Topic, shortCode(rt.ErrorCode), span))
	}
	if c := resp.NextCursor; c != nil {
		parts = append(parts, fmt.Sprintf("→ %s/%d", c.Topic, c.Partition))
	}
	return strings.Join(parts, " ")
}

// shortCode names a Kafka error code as Kafka does (NONE for 0).
func shortCode(code int16) string {
	var e *kerr.Error
	if code == 0 || !errors.As(kerr.ErrorForCode(code), &e) {
		return codeName(code)
	}
	return e.Message
}

func TestDescribeTopicPartitions(t *testing.T) {
	f := start(t)
	f.createTopic("dtp-a", 3)
	f.createTopic("dtp-b", 2)
	f.createTopic("dtp-c", 1)
	for _, tc := range []struct {
		name            string
		limit           int32
		cursor          string
		cursorPartition int32
		topics          []string
		want            string
	}{
		{name: "all in one page", limit: 2000, want: "dtp-a:NONE:0-2 dtp-b:NONE:0-1 dtp-c:NONE:0-0"},
		{name: "page ends inside a topic", limit: 4, want: "dtp-a:NONE:0-2 dtp-b:NONE:0-0 → dtp-b/1"},
		{name: "from that cursor", limit: 4, cursor: "dtp-b", cursorPartition: 1, want: "dtp-b:NONE:1-1 dtp-c:NONE:0-0"},
		// A page filled at a topic's end points at the next topic.
		{name: "page ends between topics", limit: 3, want: "dtp-a:NONE:0-2 → dtp-b/0"},
		{name: "a limit below 1 is 1", limit: 0, want: "dtp-a:NONE:0-0 → dtp-a/1"},
		{name: "negative limit", limit: -5, cursor: "dtp-c", want: "dtp-c:NONE:0-0"},
		{name: "cursor past the partitions", limit: 10, cursor: "dtp-a", cursorPartition: 7, want: "dtp-a:NONE:- dtp-b:NONE:0-1 dtp-c:NONE:0-0"},
		{name: "cursor at an unknown topic", limit: 10, cursor: "dtp-aa", want: "dtp-b:NONE:0-1 dtp-c:NONE:0-0"},
		{
			name: "named, sorted and deduplicated", limit: 10, topics: []string{"dtp-c", "missing", "bad/name", "dtp-a", "dtp-c"},
			want: "bad/name:INVALID_TOPIC_EXCEPTION:- dtp-a:NONE:0-2 dtp-c:NONE:0-0 missing:UNKNOWN_TOPIC_OR_PARTITION:-",
		},
		{name: "named, before the cursor dropped", limit: 10, cursor: "dtp-b", topics: []string{"dtp-a", "dtp-b"}, want: "dtp-b:NONE:0-1"},
		// An unknown topic takes no room on the page, but the cursor
		// may point at one.
		{name: "named, cursor at an unknown topic", limit: 3, topics: []string{"dtp-a", "dtp-zz"}, want: "dtp-a:NONE:0-2 → dtp-zz/0"},
		{
			name: "named without the cursor's topic", limit: 10, cursor: "dtp-b", topics: []string{"dtp-a", "dtp-c"},
			want: "dtp-a:INVALID_REQUEST:- dtp-c:INVALID_REQUEST:-",
		},
		{name: "negative cursor partition", limit: 10, cursor: "dtp-a", cursorPartition: -1, topics: []string{"dtp-a"}, want: "dtp-a:INVALID_REQUEST:-"},
		{name: "all, negative cursor partition", limit: 10, cursor: "dtp-a", cursorPartition: -1, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.describeTopicPartitions(tc.limit, tc.cursor, tc.cursorPartition, tc.topics...)
			if got := page(resp); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}

	// The pages of a walk cover every partition once, however small.
	var walked []string
	cursor, cursorPartition := "", int32(0)
	for range 10 {
		resp := f.describeTopicPartitions(2, cursor, cursorPartition)
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				walked = append(walked, fmt.Sprintf("%s/%d", *rt.Topic, p.Partition))
			}
		}
		if resp.NextCursor == nil {
			break
		}
		cursor, cursorPartition = resp.NextCursor.Topic, resp.NextCursor.Partition
	}
	if want := []string{"dtp-a/0", "dtp-a/1", "dtp-a/2", "dtp-b/0", "dtp-b/1", "dtp-c/0"}; !slices.Equal(walked, want) {
		t.Errorf("walked %v, want %v", walked, want)
	}

	// Without an authorizer every topic operation is allowed.
	const topicOps = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	resp := f.describeTopicPartitions(10, "", 0, "dtp-a", "missing")
	if ops := resp.Topics[0].AuthorizedOperations; ops != topicOps {
		t.Errorf("authorized operations %b, want %b", ops, topicOps)
	}
	if resp.Topics[1].TopicID != [16]byte{} || resp.Topics[0].IsInternal {
		t.Errorf("unknown topic with id %x, or internal topic", resp.Topics[1].TopicID)
	}
}

// TestDescribeTopicPartitionsAsMetadata: ids, leaders, replicas and ISR
// are Metadata's, with two agents sharing the partitions.
func TestDescribeTopicPartitionsAsMetadata(t *testing.T) {
	f, _ := startPair(t)
	f.createTopic("dtp-spread", 24)
	md := f.metadata(12, false, "dtp-spread").Topics[0]
	resp := f.describeTopicPartitions(2000, "", 0, "dtp-spread")
	rt := resp.Topics[0]
	if rt.ErrorCode != 0 || rt.TopicID != md.TopicID || len(rt.Partitions) != len(md.Partitions) {
		t.Fatalf("topic %s id %x with %d partitions, want id %x with %d", codeName(rt.ErrorCode), rt.TopicID, len(rt.Partitions), md.TopicID, len(md.Partitions))
	}
	leaders := map[int32]bool{}
	for i, p := range rt.Partitions {
		mp := md.Partitions[i]
		leaders[p.LeaderID] = true
		if p.Partition != mp.Partition || p.LeaderID != mp.Leader || p.LeaderEpoch != mp.LeaderEpoch ||
			!slices.Equal(p.Replicas, mp.Replicas) || !slices.Equal(p.ISR, mp.ISR) || len(p.OfflineReplicas) != 0 || len(p.EligibleLeaderReplicas) != 0 {
			t.Errorf("partition %d: leader %d epoch %d replicas %v isr %v offline %v, Metadata says leader %d epoch %d replicas %v isr %v",
				p.Partition, p.LeaderID, p.LeaderEpoch, p.Replicas, p.ISR, p.OfflineReplicas, mp.Leader, mp.LeaderEpoch, mp.Replicas, mp.ISR)
		}
	}
	if len(leaders) != 2 {
		t.Errorf("24 partitions led by %v, want both agents", leaders)
	}
}

// TestDescribeTopicPartitionsUnauthorized: topics the principal may not
// DESCRIBE are left out of all topics, and answered
// TOPIC_AUTHORIZATION_FAILED without an id, after the others, when named,
// whether they exist or not.
func TestDescribeTopicPartitionsUnauthorized(t *testing.T) {
	admin, mallory := aclFixtures(t, acl.Options{})
	admin.createTopic("a-secret", 2)
	admin.createTopic("b-public", 1)
	admin.allow("User:mallory", kmsg.ACLResourceTypeTopic, "b-public", kmsg.ACLOperationDescribe)

	if got, want := page(mallory.describeTopicPartitions(10, "", 0)), "b-public:NONE:0-0"; got != want {
		t.Errorf("all topics: %s, want %s", got, want)
	}
	resp := mallory.describeTopicPartitions(10, "", 0, "a-secret", "b-public", "c-missing")
	if got, want := page(resp), "b-public:NONE:0-0 a-secret:TOPIC_AUTHORIZATION_FAILED:- c-missing:TOPIC_AUTHORIZATION_FAILED:-"; got != want {
		t.Errorf("named: %s, want %s", got, want)
	}
	if denied := resp.Topics[1]; denied.TopicID != [16]byte{} || denied.AuthorizedOperations != -2147483648 {
		t.Errorf("denied topic with id %x and operations %d", denied.TopicID, denied.AuthorizedOperations)
	}
	if ops := resp.Topics[0].AuthorizedOperations; ops != 1<<8 {
		t.Errorf("authorized operations %b, want DESCRIBE alone", ops)
	}
	if got := page(admin.describeTopicPartitions(10, "", 0)); got != "a-secret:NONE:0-1 b-public:NONE:0-0" {
		t.Errorf("super user: %s", got)
	}
}

// allow gives principal op on a resource, through CreateAcls (which
// reloads the agent's ACLs at once).
func (f *fixture) allow(principal string, rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) {
	f.t.Helper()
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = []kmsg.CreateACLsRequestCreation{binding(principal, rt, name, acl.Literal, op, acl.Allow)}
	if code := do[*kmsg.CreateACLsResponse](f, 3, req).Results[0].ErrorCode; code != 0 {
		f.t.Fatalf("create acl: %s", codeName(code))
	}
}
