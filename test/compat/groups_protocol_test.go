package compat

// The classic consumer-group error codes, request by request, against
// Apache Kafka's documented behaviour (the protocol guide and KIPs 345,
// 394, 429, 848 and 1043). KIP-848's consumer protocol has its own table
// in groups_848_protocol_test.go.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// proto drives one group over a raw connection.
type proto struct {
	t     *testing.T
	c     *testutil.RawClient
	group string
}

func (p proto) join(version int16, member, instance string, session time.Duration, protoType, protocol string, metadata []byte) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupRequest()
	r.SetVersion(version)
	r.Group, r.MemberID, r.ProtocolType = p.group, member, protoType
	if instance != "" {
		r.InstanceID = &instance
	}
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = int32(session.Milliseconds()), 10000
	pr := kmsg.NewJoinGroupRequestProtocol()
	pr.Name, pr.Metadata = protocol, metadata
	r.Protocols = append(r.Protocols, pr)
	return p.c.Do(r).(*kmsg.JoinGroupResponse)
}

// member joins (answering MEMBER_ID_REQUIRED) and syncs as sole member,
// returning its id and generation.
func (p proto) member(instance string, metadata []byte) (string, int32) {
	j := p.join(9, "", instance, 6*time.Second, "consumer", "range", metadata)
	if j.ErrorCode == kerr.MemberIDRequired.Code {
		j = p.join(9, j.MemberID, instance, 6*time.Second, "consumer", "range", metadata)
	}
	if j.ErrorCode != 0 {
		p.t.Fatalf("join: %v", kerr.ErrorForCode(j.ErrorCode))
	}
	if s := p.sync(j.MemberID, instance, j.Generation, map[string][]byte{j.MemberID: []byte("assignment")}); s.ErrorCode != 0 {
		p.t.Fatalf("sync: %v", kerr.ErrorForCode(s.ErrorCode))
	}
	return j.MemberID, j.Generation
}

func (p proto) sync(member, instance string, gen int32, assign map[string][]byte) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupRequest()
	r.SetVersion(5)
	r.Group, r.MemberID, r.Generation = p.group, member, gen
	r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	if instance != "" {
		r.InstanceID = &instance
	}
	for m, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: a})
	}
	return p.c.Do(r).(*kmsg.SyncGroupResponse)
}

func (p proto) heartbeat(member, instance string, gen int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.SetVersion(4)
	r.Group, r.MemberID, r.Generation = p.group, member, gen
	if instance != "" {
		r.InstanceID = &instance
	}
	return p.c.Do(r).(*kmsg.HeartbeatResponse).ErrorCode
}

func (p proto) commit(version int16, member string, gen int32, topic string, metadata string) int16 {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.SetVersion(version)
	r.Group, r.MemberID, r.Generation = p.group, member, gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	pt := kmsg.NewOffsetCommitRequestTopicPartition()
	pt.Offset, pt.Metadata = 1, &metadata
	t.Partitions = append(t.Partitions, pt)
	r.Topics = append(r.Topics, t)
	return p.c.Do(r).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func (p proto) leave(members ...kmsg.LeaveGroupRequestMember) *kmsg.LeaveGroupResponse {
	r := kmsg.NewPtrLeaveGroupRequest()
	r.SetVersion(5)
	r.Group, r.Members = p.group, members
	return p.c.Do(r).(*kmsg.LeaveGroupResponse)
}

func leaving(member, instance string) kmsg.LeaveGroupRequestMember {
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	if instance != "" {
		m.InstanceID = &instance
	}
	return m
}

func consumerMetadata(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func TestGroupProtocolErrors(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 20 * time.Millisecond
		c.Groups.Groups.MinSessionTimeout = time.Second
	}})
	c := testutil.Dial(t, a.Addr())
	createTopicRaw(t, c, "t", 2)
	n := 0
	newGroup := func() proto {
		n++
		return proto{t: t, c: c, group: fmt.Sprintf("g%d", n)}
	}
	code := func(e *kerr.Error) int16 {
		if e == nil {
			return 0
		}
		return e.Code
	}

	for _, tc := range []struct {
		name string
		ref  string // where Kafka documents the behaviour
		run  func(p proto) int16
		want *kerr.Error
	}{
		{"first join v4+ without member id", "KIP-394", func(p proto) int16 {
			j := p.join(4, "", "", 6*time.Second, "consumer", "range", nil)
			if j.MemberID == "" {
				t.Error("MEMBER_ID_REQUIRED without a member id")
			}
			return j.ErrorCode
		}, kerr.MemberIDRequired},
		{"first join v3 joins at once", "KIP-394", func(p proto) int16 {
			return p.join(3, "", "", 6*time.Second, "consumer", "range", nil).ErrorCode
		}, nil},
		{"static member needs no member id", "KIP-345", func(p proto) int16 {
			return p.join(5, "", "i1", 6*time.Second, "consumer", "range", nil).ErrorCode
		}, nil},
		{"session timeout below group.min.session.timeout.ms", "JoinGroup", func(p proto) int16 {
			return p.join(9, "", "", 100*time.Millisecond, "consumer", "range", nil).ErrorCode
		}, kerr.InvalidSessionTimeout},
		{"join with an unknown member id", "JoinGroup", func(p proto) int16 {
			return p.join(9, "nobody", "", 6*time.Second, "consumer", "range", nil).ErrorCode
		}, kerr.UnknownMemberID},
		{"join with another protocol type", "JoinGroup", func(p proto) int16 {
			p.member("", nil)
			return p.join(9, "", "", 6*time.Second, "connect", "range", nil).ErrorCode
		}, kerr.InconsistentGroupProtocol},
		{"join sharing no protocol with the members", "JoinGroup", func(p proto) int16 {
			p.member("", nil)
			return p.join(9, "", "", 6*time.Second, "consumer", "roundrobin", nil).ErrorCode
		}, kerr.InconsistentGroupProtocol},
		{"empty group id", "JoinGroup", func(p proto) int16 {
			p.group = ""
			return p.join(9, "", "", 6*time.Second, "consumer", "range", nil).ErrorCode
		}, kerr.InvalidGroupID},
		{"heartbeat of a stable member", "Heartbeat", func(p proto) int16 {
			m, g := p.member("", nil)
			return p.heartbeat(m, "", g)
		}, nil},
		{"heartbeat with an old generation", "Heartbeat", func(p proto) int16 {
			m, g := p.member("", nil)
			return p.heartbeat(m, "", g-1)
		}, kerr.IllegalGeneration},
		{"heartbeat of an unknown member", "Heartbeat", func(p proto) int16 {
			_, g := p.member("", nil)
			return p.heartbeat("nobody", "", g)
		}, kerr.UnknownMemberID},
		{"heartbeat while a rebalance is prepared", "Heartbeat", func(p proto) int16 {
			m, g := p.member("", nil)
			other := proto{t: t, c: testutil.Dial(t, a.Addr()), group: p.group}
			other.c.Send(func() kmsg.Request { // a second member's join waits for m
				r := kmsg.NewPtrJoinGroupRequest()
				r.SetVersion(3)
				r.Group, r.ProtocolType, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = p.group, "consumer", 6000, 10000
				r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
				return r
			}())
			time.Sleep(100 * time.Millisecond)
			return p.heartbeat(m, "", g)
		}, kerr.RebalanceInProgress},
		{"sync with an old generation", "SyncGroup", func(p proto) int16 {
			m, g := p.member("", nil)
			return p.sync(m, "", g+1, nil).ErrorCode
		}, kerr.IllegalGeneration},
		{"sync of an unknown member", "SyncGroup", func(p proto) int16 {
			_, g := p.member("", nil)
			return p.sync("nobody", "", g, nil).ErrorCode
		}, kerr.UnknownMemberID},
		{"restarted static member: stable, no rebalance", "KIP-345", func(p proto) int16 {
			_, g := p.member("i1", nil)
			j := p.join(9, "", "i1", 6*time.Second, "consumer", "range", nil)
			if j.Generation != g {
				t.Errorf("generation %d after a static restart, want %d", j.Generation, g)
			}
			return j.ErrorCode
		}, nil},
		{"static member's old id is fenced (heartbeat)", "KIP-345", func(p proto) int16 {
			old, g := p.member("i1", nil)
			p.join(9, "", "i1", 6*time.Second, "consumer", "range", nil)
			return p.heartbeat(old, "i1", g)
		}, kerr.FencedInstanceID},
		{"static member's old id is fenced (commit)", "KIP-345", func(p proto) int16 {
			old, g := p.member("i1", nil)
			p.join(9, "", "i1", 6*time.Second, "consumer", "range", nil)
			r := kmsg.NewPtrOffsetCommitRequest()
			r.SetVersion(7)
			r.Group, r.MemberID, r.Generation, r.InstanceID = p.group, old, g, kmsg.StringPtr("i1")
			r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
			return p.c.Do(r).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		}, kerr.FencedInstanceID},
		{"batched leave: instance id with another member id", "KIP-345", func(p proto) int16 {
			p.member("i1", nil)
			return p.leave(leaving("other", "i1")).Members[0].ErrorCode
		}, kerr.FencedInstanceID},
		{"batched leave: unknown instance id", "KIP-345", func(p proto) int16 {
			p.member("i1", nil)
			return p.leave(leaving("", "i9")).Members[0].ErrorCode
		}, kerr.UnknownMemberID},
		{"batched leave by instance id alone", "KIP-345", func(p proto) int16 {
			m, _ := p.member("i1", nil)
			r := p.leave(leaving("", "i1"))
			if r.Members[0].MemberID != m {
				t.Errorf("leave resolved member %q, want %q", r.Members[0].MemberID, m)
			}
			return r.Members[0].ErrorCode
		}, nil},
		{"cooperative metadata passes through untouched", "KIP-429", func(p proto) int16 {
			m := kmsg.NewConsumerMemberMetadata()
			m.Version, m.Topics, m.Generation = 3, []string{"t"}, 7
			m.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "t", Partitions: []int32{0, 1}}}
			meta := m.AppendTo(nil)
			j := p.join(3, "", "", 6*time.Second, "consumer", "cooperative-sticky", meta)
			if len(j.Members) != 1 || string(j.Members[0].ProtocolMetadata) != string(meta) {
				t.Errorf("leader got %+v", j.Members)
			}
			return j.ErrorCode
		}, nil},
		{"commit with an old generation", "OffsetCommit", func(p proto) int16 {
			m, g := p.member("", nil)
			return p.commit(8, m, g-1, "t", "")
		}, kerr.IllegalGeneration},
		{"commit by an unknown member", "OffsetCommit", func(p proto) int16 {
			_, g := p.member("", nil)
			return p.commit(8, "nobody", g, "t", "")
		}, kerr.UnknownMemberID},
		{"simple commit (generation -1) into an empty group", "OffsetCommit", func(p proto) int16 {
			return p.commit(8, "", -1, "t", "")
		}, nil},
		{"member commit into a group that does not exist (v8)", "OffsetCommit", func(p proto) int16 {
			return p.commit(8, "m", 1, "t", "")
		}, kerr.IllegalGeneration},
		{"member commit into a group that does not exist (v9)", "KIP-848", func(p proto) int16 {
			return p.commit(9, "m", 1, "t", "")
		}, kerr.GroupIDNotFound},
		{"commit for an unknown topic", "OffsetCommit", func(p proto) int16 {
			return p.commit(8, "", -1, "nope", "")
		}, kerr.UnknownTopicOrPartition},
		{"commit metadata over offset.metadata.max.bytes", "OffsetCommit", func(p proto) int16 {
			return p.commit(8, "", -1, "t", strings.Repeat("x", 4097))
		}, kerr.OffsetMetadataTooLarge},
		{"offset fetch of an unknown group: -1, no error", "OffsetFetch", func(p proto) int16 {
			r := kmsg.NewPtrOffsetFetchRequest()
			r.SetVersion(8)
			r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: p.group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
			g := p.c.Do(r).(*kmsg.OffsetFetchResponse).Groups[0]
			if o := g.Topics[0].Partitions[0].Offset; o != -1 {
				t.Errorf("offset %d, want -1", o)
			}
			return g.ErrorCode
		}, nil},
		{"committed leader epoch and metadata round-trip", "OffsetFetch", func(p proto) int16 {
			r := kmsg.NewPtrOffsetCommitRequest()
			r.SetVersion(8)
			r.Group, r.Generation = p.group, -1
			r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
				{Partition: 1, Offset: 42, LeaderEpoch: 7, Metadata: kmsg.StringPtr("where I was")}}}}
			if code := p.c.Do(r).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
				return code
			}
			f := kmsg.NewPtrOffsetFetchRequest()
			f.SetVersion(7)
			f.Group = p.group // null topics: every committed offset
			resp := p.c.Do(f).(*kmsg.OffsetFetchResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("fetched %+v", resp.Topics)
			}
			got := resp.Topics[0].Partitions[0]
			if got.Partition != 1 || got.Offset != 42 || got.LeaderEpoch != 7 || got.Metadata == nil || *got.Metadata != "where I was" {
				t.Errorf("fetched %+v", got)
			}
			return resp.ErrorCode
		}, nil},
		{"offsets of a deleted topic disappear", "OffsetFetch", func(p proto) int16 {
			createTopicRaw(t, p.c, "doomed-"+p.group, 1)
			if code := p.commit(8, "", -1, "doomed-"+p.group, ""); code != 0 {
				return code
			}
			d := kmsg.NewPtrDeleteTopicsRequest()
			d.SetVersion(4)
			d.TopicNames = []string{"doomed-" + p.group}
			p.c.Do(d)
			createTopicRaw(t, p.c, "doomed-"+p.group, 1) // a new incarnation starts without offsets
			f := kmsg.NewPtrOffsetFetchRequest()
			f.SetVersion(7)
			f.Group = p.group
			f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "doomed-" + p.group, Partitions: []int32{0}}}
			resp := p.c.Do(f).(*kmsg.OffsetFetchResponse)
			if o := resp.Topics[0].Partitions[0].Offset; o != -1 {
				t.Errorf("offset %d survived the topic's deletion", o)
			}
			return resp.ErrorCode
		}, nil},
		{"delete a group with members", "DeleteGroups", func(p proto) int16 {
			p.member("", nil)
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.SetVersion(2)
			r.Groups = []string{p.group}
			return p.c.Do(r).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
		}, kerr.NonEmptyGroup},
		{"delete an unknown group", "DeleteGroups", func(p proto) int16 {
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.SetVersion(2)
			r.Groups = []string{p.group}
			return p.c.Do(r).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
		}, kerr.GroupIDNotFound},
		{"delete offsets of a subscribed topic", "KIP-496", func(p proto) int16 {
			m, g := p.member("", consumerMetadata("t"))
			p.commit(8, m, g, "t", "")
			r := kmsg.NewPtrOffsetDeleteRequest()
			r.Group = p.group
			r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			return p.c.Do(r).(*kmsg.OffsetDeleteResponse).Topics[0].Partitions[0].ErrorCode
		}, kerr.GroupSubscribedToTopic},
		{"delete offsets of an unknown group", "KIP-496", func(p proto) int16 {
			r := kmsg.NewPtrOffsetDeleteRequest()
			r.Group = p.group
			return p.c.Do(r).(*kmsg.OffsetDeleteResponse).ErrorCode
		}, kerr.GroupIDNotFound},
		{"describe an unknown group (v5): Dead, no error", "DescribeGroups", func(p proto) int16 {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.SetVersion(5)
			r.Groups = []string{p.group}
			g := p.c.Do(r).(*kmsg.DescribeGroupsResponse).Groups[0]
			if g.State != "Dead" {
				t.Errorf("state %q", g.State)
			}
			return g.ErrorCode
		}, nil},
		{"describe an unknown group (v6)", "KIP-1043", func(p proto) int16 {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.SetVersion(6)
			r.Groups = []string{p.group}
			return p.c.Do(r).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode
		}, kerr.GroupIDNotFound},
		{"transaction coordinator", "FindCoordinator", func(p proto) int16 {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.SetVersion(4)
			r.CoordinatorType, r.CoordinatorKeys = 1, []string{"txn"}
			return p.c.Do(r).(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run(newGroup()); got != code(tc.want) {
				t.Errorf("%s: got %v, want %v", tc.ref, kerr.ErrorForCode(got), tc.want)
			}
		})
	}
}

func createTopicRaw(t *testing.T, c *testutil.RawClient, name string, partitions int32) {
	t.Helper()
	r := kmsg.NewPtrCreateTopicsRequest()
	r.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	r.Topics = append(r.Topics, rt)
	if code := c.Do(r).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic: %v", kerr.ErrorForCode(code))
	}
}
