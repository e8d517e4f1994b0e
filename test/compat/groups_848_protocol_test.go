package compat

// The KIP-848 consumer group protocol's error codes, request by request,
// with raw requests, against KIP-848 and Apache Kafka's group coordinator
// (KIP-1251 for offset commits).

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// cgp drives one consumer-protocol group over a raw connection.
type cgp struct {
	t     *testing.T
	c     *testutil.RawClient
	group string
}

// request is a first heartbeat (epoch 0, v1) for member, subscribing to
// topics; callers adjust it.
func (p cgp) request(member string, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.SetVersion(1)
	r.Group, r.MemberID, r.RebalanceTimeoutMillis = p.group, member, 10000
	r.SubscribedTopicNames = append([]string{}, topics...)
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	return r
}

func (p cgp) do(r *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	return p.c.Do(r).(*kmsg.ConsumerGroupHeartbeatResponse)
}

// join joins member, failing the test on an error.
func (p cgp) join(member string, topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	p.t.Helper()
	resp := p.do(p.request(member, topics...))
	if resp.ErrorCode != 0 {
		p.t.Fatalf("join %s: %v", member, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

// beat sends a heartbeat at epoch; owned nil is a keepalive.
func (p cgp) beat(member string, epoch int32, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) *kmsg.ConsumerGroupHeartbeatResponse {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.SetVersion(1)
	r.Group, r.MemberID, r.MemberEpoch, r.Topics = p.group, member, epoch, owned
	return p.do(r)
}

func owned(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if a != nil {
		for _, t := range a.Topics {
			out = append(out, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
	return out
}

func partitionsOf(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) []int32 {
	var ps []int32
	if a != nil {
		for _, t := range a.Topics {
			ps = append(ps, t.Partitions...)
		}
	}
	return ps
}

// rebalanced joins a then b on topic t (2 partitions) and completes the
// reconciliation: a holds one partition and b the other, both at epoch 2.
func (p cgp) rebalanced() (aParts, bParts []int32) {
	p.t.Helper()
	p.join("a", "t")
	p.join("b", "t")
	revoke := p.beat("a", 1, nil) // a is told to give one up
	if a := p.beat("a", 1, owned(revoke.Assignment)); a.ErrorCode != 0 || a.MemberEpoch != 2 {
		p.t.Fatalf("a acknowledges: %v epoch %d", kerr.ErrorForCode(a.ErrorCode), a.MemberEpoch)
	}
	b := p.beat("b", 2, nil)
	if b.ErrorCode != 0 || len(partitionsOf(b.Assignment)) != 1 || len(partitionsOf(revoke.Assignment)) != 1 {
		p.t.Fatalf("b gets its partition: %v %+v", kerr.ErrorForCode(b.ErrorCode), b.Assignment)
	}
	return partitionsOf(revoke.Assignment), partitionsOf(b.Assignment)
}

func (p cgp) commit(version int16, member string, epoch int32, partition int32) int16 {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.SetVersion(version)
	r.Group, r.MemberID, r.Generation = p.group, member, epoch
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: partition, Offset: 1, LeaderEpoch: -1}}}}
	return p.c.Do(r).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func (p cgp) fetch(member *string, epoch int32) int16 {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.SetVersion(9)
	r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: p.group, MemberID: member, MemberEpoch: epoch,
		Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
	return p.c.Do(r).(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode
}

func (p cgp) describe() kmsg.ConsumerGroupDescribeResponseGroup {
	r := kmsg.NewPtrConsumerGroupDescribeRequest()
	r.SetVersion(1)
	r.Groups = []string{p.group}
	return p.c.Do(r).(*kmsg.ConsumerGroupDescribeResponse).Groups[0]
}

func TestConsumerProtocolErrors(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 20 * time.Millisecond
		c.Groups.Groups.MinSessionTimeout = time.Second
		c.Groups.Consumer.HeartbeatInterval = 250 * time.Millisecond
		c.Groups.Consumer.MaxSize = 3
	}})
	c := testutil.Dial(t, a.Addr())
	createTopicRaw(t, c, "t", 2)
	n := 0
	newGroup := func() cgp {
		n++
		return cgp{t: t, c: c, group: fmt.Sprintf("cg%d", n)}
	}
	code := func(e *kerr.Error) int16 {
		if e == nil {
			return 0
		}
		return e.Code
	}
	str := kmsg.StringPtr

	for _, tc := range []struct {
		name string
		ref  string // where Kafka documents the behaviour
		run  func(p cgp) int16
		want *kerr.Error
	}{
		{"APIs advertised: ConsumerGroupHeartbeat and ConsumerGroupDescribe v0-v1", "KIP-848", func(p cgp) int16 {
			r := kmsg.NewPtrApiVersionsRequest()
			r.SetVersion(3)
			r.ClientSoftwareName, r.ClientSoftwareVersion = "floe-test", "1"
			found := 0
			for _, k := range p.c.Do(r).(*kmsg.ApiVersionsResponse).ApiKeys {
				if (k.ApiKey == 68 || k.ApiKey == 69) && k.MinVersion == 0 && k.MaxVersion == 1 {
					found++
				}
			}
			if found != 2 {
				return kerr.UnsupportedVersion.Code
			}
			return 0
		}, nil},
		{"join: every partition, epoch 1, the configured heartbeat interval", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			if r.MemberEpoch != 1 || len(partitionsOf(r.Assignment)) != 2 || r.HeartbeatIntervalMillis != 250 || r.MemberID == nil || *r.MemberID != "a" {
				t.Errorf("join: %+v", r)
			}
			return r.ErrorCode
		}, nil},
		{"v0: the coordinator chooses the member id", "KIP-848", func(p cgp) int16 {
			r := p.request("", "t")
			r.SetVersion(0)
			resp := p.do(r)
			if resp.MemberID == nil || *resp.MemberID == "" {
				t.Errorf("no member id: %+v", resp)
			}
			return resp.ErrorCode
		}, nil},
		{"v1: first heartbeat without member id", "KIP-848", func(p cgp) int16 {
			return p.do(p.request("", "t")).ErrorCode
		}, kerr.InvalidRequest},
		{"empty group id", "KIP-848", func(p cgp) int16 {
			p.group = ""
			return p.do(p.request("a", "t")).ErrorCode
		}, kerr.InvalidRequest},
		{"first heartbeat owning partitions", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
			return p.do(r).ErrorCode
		}, kerr.InvalidRequest},
		{"first heartbeat without owned partitions (null)", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.Topics = nil
			return p.do(r).ErrorCode
		}, kerr.InvalidRequest},
		{"first heartbeat without rebalance timeout", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.RebalanceTimeoutMillis = -1
			return p.do(r).ErrorCode
		}, kerr.InvalidRequest},
		{"first heartbeat without subscription", "KIP-848", func(p cgp) int16 {
			r := p.request("a")
			r.SubscribedTopicNames = nil
			return p.do(r).ErrorCode
		}, kerr.InvalidRequest},
		{"empty instance id", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.InstanceID = str("")
			return p.do(r).ErrorCode
		}, kerr.InvalidRequest},
		{"member epoch below -2", "KIP-848", func(p cgp) int16 {
			return p.beat("a", -3, nil).ErrorCode
		}, kerr.InvalidRequest},
		{"unknown server assignor", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.ServerAssignor = str("sticky")
			return p.do(r).ErrorCode
		}, kerr.UnsupportedAssignor},
		{"invalid subscription regex", "KIP-848", func(p cgp) int16 {
			r := p.request("a")
			r.SubscribedTopicNames, r.SubscribedTopicRegex = nil, str("t(")
			return p.do(r).ErrorCode
		}, kerr.InvalidRegularExpression},
		{"subscription regex matches whole topic names", "KIP-848", func(p cgp) int16 {
			r := p.request("a")
			r.SubscribedTopicNames, r.SubscribedTopicRegex = nil, str("t|u.*")
			resp := p.do(r)
			if len(partitionsOf(resp.Assignment)) != 2 {
				t.Errorf("regex t|u.* assigned %+v", resp.Assignment)
			}
			return resp.ErrorCode
		}, nil},
		{"heartbeat of an unknown member", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return p.beat("nobody", 1, nil).ErrorCode
		}, kerr.UnknownMemberID},
		{"member epoch ahead of the coordinator", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return p.beat("a", 2, nil).ErrorCode
		}, kerr.FencedMemberEpoch},
		{"previous epoch without owned partitions", "KIP-848", func(p cgp) int16 {
			p.rebalanced()
			return p.beat("a", 1, nil).ErrorCode
		}, kerr.FencedMemberEpoch},
		{"previous epoch with a subset of the assignment (lost response)", "KIP-848", func(p cgp) int16 {
			aParts, _ := p.rebalanced()
			resp := p.beat("a", 1, []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicIDOf(t, p), Partitions: aParts}})
			if resp.MemberEpoch != 2 {
				t.Errorf("epoch %d, want 2", resp.MemberEpoch)
			}
			return resp.ErrorCode
		}, nil},
		{"a partition moves only after its revocation", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			b := p.join("b", "t")
			if len(partitionsOf(b.Assignment)) != 0 {
				t.Errorf("b got %v before a revoked", partitionsOf(b.Assignment))
			}
			a := p.beat("a", 1, nil)
			a = p.beat("a", 1, []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicIDOf(t, p), Partitions: []int32{0, 1}}})
			if b = p.beat("b", 2, nil); b.Assignment != nil {
				t.Errorf("b got %v while a still holds it", partitionsOf(b.Assignment))
			}
			return a.ErrorCode
		}, nil},
		{"second process with a static member's instance id", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.InstanceID = str("i1")
			p.do(r)
			r = p.request("a2", "t")
			r.InstanceID = str("i1")
			return p.do(r).ErrorCode
		}, kerr.UnreleasedInstanceID},
		{"heartbeat with another member's instance id", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.InstanceID = str("i1")
			p.do(r)
			p.join("b", "t")
			hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			hb.SetVersion(1)
			hb.Group, hb.MemberID, hb.MemberEpoch, hb.InstanceID = p.group, "b", 2, str("i1")
			return p.do(hb).ErrorCode
		}, kerr.FencedInstanceID},
		{"static member leaves (-2) and its successor takes its partitions", "KIP-848", func(p cgp) int16 {
			r := p.request("a", "t")
			r.InstanceID = str("i1")
			first := p.do(r)
			leave := p.beat("a", -2, nil)
			if leave.ErrorCode != 0 || leave.MemberEpoch != -2 {
				t.Errorf("static leave: %v epoch %d", kerr.ErrorForCode(leave.ErrorCode), leave.MemberEpoch)
			}
			r = p.request("a2", "t")
			r.InstanceID = str("i1")
			next := p.do(r)
			if next.MemberEpoch != first.MemberEpoch || fmt.Sprint(partitionsOf(next.Assignment)) != fmt.Sprint(partitionsOf(first.Assignment)) {
				t.Errorf("successor: epoch %d %v, was %d %v", next.MemberEpoch, partitionsOf(next.Assignment), first.MemberEpoch, partitionsOf(first.Assignment))
			}
			return next.ErrorCode
		}, nil},
		{"heartbeat after leaving (-1)", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			if r := p.beat("a", -1, nil); r.ErrorCode != 0 || r.MemberEpoch != -1 {
				t.Errorf("leave: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
			}
			return p.beat("a", 1, nil).ErrorCode
		}, kerr.UnknownMemberID},
		{"group.consumer.max.size", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			p.join("b", "t")
			p.join("c", "t")
			p.join("a", "t") // a rejoin is not a new member
			return p.do(p.request("d", "t")).ErrorCode
		}, kerr.GroupMaxSizeReached},
		{"consumer heartbeat into a classic group whose subscription is not the consumer protocol's", "KIP-848", func(p cgp) int16 {
			proto{t: t, c: p.c, group: p.group}.member("", nil)
			return p.do(p.request("a", "t")).ErrorCode
		}, kerr.GroupIDNotFound},
		{"classic JoinGroup with a malformed subscription into a consumer group with members", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return proto{t: t, c: p.c, group: p.group}.join(9, "", "", 6*time.Second, "consumer", "range", nil).ErrorCode
		}, kerr.InconsistentGroupProtocol},
		{"consumer heartbeat into a classic group upgrades it", "KIP-848", func(p cgp) int16 {
			classic := proto{t: t, c: p.c, group: p.group}
			j := classic.join(9, "", "", 6*time.Second, "consumer", "range", migrationSubscription("t"))
			j = classic.join(9, j.MemberID, "", 6*time.Second, "consumer", "range", migrationSubscription("t"))
			id, gen := j.MemberID, j.Generation
			all := kmsg.NewConsumerMemberAssignment()
			all.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{0, 1}}}
			if s := classic.sync(id, "", gen, map[string][]byte{id: all.AppendTo(nil)}); j.ErrorCode != 0 || s.ErrorCode != 0 {
				t.Fatalf("classic member: %v %v", kerr.ErrorForCode(j.ErrorCode), kerr.ErrorForCode(s.ErrorCode))
			}
			r := p.do(p.request("a", "t"))
			if r.ErrorCode == 0 && r.MemberEpoch != gen+1 {
				t.Errorf("epoch %d after generation %d", r.MemberEpoch, gen)
			}
			// The classic member is told to rejoin, and joins as a
			// classic member of the consumer group.
			if code := classic.heartbeat(id, "", gen); code != kerr.RebalanceInProgress.Code {
				t.Errorf("classic heartbeat: %v", kerr.ErrorForCode(code))
			}
			j = classic.join(9, id, "", 6*time.Second, "consumer", "range", migrationSubscription("t"))
			if j.ErrorCode != 0 || j.Generation != r.MemberEpoch || j.LeaderID != "" || j.Protocol == nil || *j.Protocol != "range" {
				t.Errorf("classic rejoin: %v generation %d leader %q", kerr.ErrorForCode(j.ErrorCode), j.Generation, j.LeaderID)
			}
			sync := classic.sync(id, "", j.Generation, nil)
			var a kmsg.ConsumerMemberAssignment
			if sync.ErrorCode != 0 || a.ReadFrom(sync.MemberAssignment) != nil {
				t.Errorf("classic sync: %v %x", kerr.ErrorForCode(sync.ErrorCode), sync.MemberAssignment)
			}
			if d := p.describe(); len(d.Members) != 2 || d.Members[0].MemberType+d.Members[1].MemberType != 1 {
				t.Errorf("described: %+v", d.Members)
			}
			return r.ErrorCode
		}, nil},
		{"classic JoinGroup into a consumer group with members", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			classic := proto{t: t, c: p.c, group: p.group}
			j := classic.join(9, "", "", 6*time.Second, "consumer", "range", migrationSubscription("t"))
			if j.ErrorCode != kerr.MemberIDRequired.Code {
				t.Errorf("first join: %v", kerr.ErrorForCode(j.ErrorCode))
			}
			return classic.join(9, j.MemberID, "", 6*time.Second, "consumer", "range", migrationSubscription("t")).ErrorCode
		}, nil},
		{"classic JoinGroup of another protocol type into a consumer group", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return proto{t: t, c: p.c, group: p.group}.join(9, "x", "", 6*time.Second, "connect", "range", migrationSubscription("t")).ErrorCode
		}, kerr.InconsistentGroupProtocol},
		{"classic JoinGroup into an empty consumer group converts it", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			p.beat("a", -1, nil)
			return proto{t: t, c: p.c, group: p.group}.join(9, "", "", 6*time.Second, "consumer", "range", nil).ErrorCode
		}, kerr.MemberIDRequired},
		{"classic Heartbeat into a consumer group", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			return proto{t: t, c: p.c, group: p.group}.heartbeat("a", "", r.MemberEpoch)
		}, kerr.UnknownMemberID},
		{"commit at the member epoch", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			return p.commit(9, "a", r.MemberEpoch, 0)
		}, nil},
		{"commit with an epoch ahead of the member's", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			return p.commit(9, "a", r.MemberEpoch+1, 0)
		}, kerr.StaleMemberEpoch},
		{"commit with an epoch older than the partition's assignment", "KIP-1251", func(p cgp) int16 {
			_, bParts := p.rebalanced()
			return p.commit(9, "b", 1, bParts[0])
		}, kerr.StaleMemberEpoch},
		{"commit of a partition the member gave up", "KIP-1251", func(p cgp) int16 {
			_, bParts := p.rebalanced()
			return p.commit(9, "a", 2, bParts[0])
		}, kerr.StaleMemberEpoch},
		{"commit with an older epoch racing a heartbeat", "KIP-1251", func(p cgp) int16 {
			aParts, _ := p.rebalanced()
			return p.commit(9, "a", 1, aParts[0]) // a held it since epoch 1
		}, nil},
		{"member commit before OffsetCommit v9", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			return p.commit(8, "a", r.MemberEpoch, 0)
		}, kerr.UnsupportedVersion},
		{"commit by an unknown member", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return p.commit(9, "nobody", 1, 0)
		}, kerr.UnknownMemberID},
		{"admin commit (epoch -1) into a group with members", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return p.commit(9, "", -1, 0)
		}, kerr.UnknownMemberID},
		{"admin commit (epoch -1) into an empty consumer group", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			p.beat("a", -1, nil)
			return p.commit(9, "", -1, 0)
		}, nil},
		{"offset fetch with a stale member epoch", "KIP-848", func(p cgp) int16 {
			p.rebalanced()
			return p.fetch(str("a"), 1)
		}, kerr.StaleMemberEpoch},
		{"offset fetch by an unknown member", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return p.fetch(str("nobody"), 1)
		}, kerr.UnknownMemberID},
		{"offset fetch at the member epoch", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			return p.fetch(str("a"), r.MemberEpoch)
		}, nil},
		{"offset fetch without member (admin)", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			return p.fetch(nil, -1)
		}, nil},
		{"ConsumerGroupDescribe: epochs, assignments, targets", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			p.join("b", "t")
			g := p.describe()
			if g.State != "Reconciling" || g.Epoch != 2 || g.AssignmentEpoch != 2 || g.AssignorName != "uniform" || len(g.Members) != 2 {
				t.Errorf("described %+v", g)
				return g.ErrorCode
			}
			a, b := g.Members[0], g.Members[1]
			if a.MemberID != "a" || a.MemberEpoch != 1 || len(a.Assignment.TopicPartitions) != 1 ||
				len(a.Assignment.TopicPartitions[0].Partitions) != 2 || len(a.TargetAssignment.TopicPartitions[0].Partitions) != 1 ||
				a.Assignment.TopicPartitions[0].Topic != "t" || a.MemberType != 1 {
				t.Errorf("member a: %+v", a)
			}
			if b.MemberID != "b" || b.MemberEpoch != 2 || len(b.Assignment.TopicPartitions) != 0 || len(b.TargetAssignment.TopicPartitions) != 1 {
				t.Errorf("member b: %+v", b)
			}
			return g.ErrorCode
		}, nil},
		{"ConsumerGroupDescribe of a classic group", "KIP-848", func(p cgp) int16 {
			proto{t: t, c: p.c, group: p.group}.member("", nil)
			return p.describe().ErrorCode
		}, kerr.GroupIDNotFound},
		{"ConsumerGroupDescribe of an unknown group", "KIP-848", func(p cgp) int16 {
			return p.describe().ErrorCode
		}, kerr.GroupIDNotFound},
		{"ListGroups v5: type consumer", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			r := kmsg.NewPtrListGroupsRequest()
			r.SetVersion(5)
			r.TypesFilter = []string{"consumer"}
			resp := p.c.Do(r).(*kmsg.ListGroupsResponse)
			for _, g := range resp.Groups {
				if g.Group == p.group && g.GroupType == "consumer" && g.ProtocolType == "consumer" && g.GroupState == "Stable" {
					return resp.ErrorCode
				}
			}
			t.Errorf("not listed: %+v", resp.Groups)
			return resp.ErrorCode
		}, nil},
		{"DescribeGroups shows a consumer group", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.SetVersion(5)
			r.Groups = []string{p.group}
			g := p.c.Do(r).(*kmsg.DescribeGroupsResponse).Groups[0]
			var assigned kmsg.ConsumerMemberAssignment
			if g.ProtocolType != "consumer" || g.State != "Stable" || g.Protocol != "uniform" || len(g.Members) != 1 ||
				assigned.ReadFrom(g.Members[0].MemberAssignment) != nil || len(assigned.Topics) != 1 || len(assigned.Topics[0].Partitions) != 2 {
				t.Errorf("described %+v", g)
			}
			return g.ErrorCode
		}, nil},
		{"DeleteGroups of a consumer group with members", "KIP-848", func(p cgp) int16 {
			p.join("a", "t")
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.SetVersion(2)
			r.Groups = []string{p.group}
			return p.c.Do(r).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
		}, kerr.NonEmptyGroup},
		{"OffsetDelete of a subscribed topic", "KIP-848", func(p cgp) int16 {
			r := p.join("a", "t")
			p.commit(9, "a", r.MemberEpoch, 0)
			d := kmsg.NewPtrOffsetDeleteRequest()
			d.Group = p.group
			d.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			return p.c.Do(d).(*kmsg.OffsetDeleteResponse).Topics[0].Partitions[0].ErrorCode
		}, kerr.GroupSubscribedToTopic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run(newGroup()); got != code(tc.want) {
				t.Errorf("%s: got %v, want %v", tc.ref, kerr.ErrorForCode(got), tc.want)
			}
		})
	}
}

// topicIDOf returns topic t's id, learnt from a fresh member's assignment.
func topicIDOf(t *testing.T, p cgp) [16]byte {
	t.Helper()
	probe := cgp{t: t, c: p.c, group: p.group + "-probe"}
	r := probe.join("probe", "t")
	probe.beat("probe", -1, nil)
	if r.Assignment == nil || len(r.Assignment.Topics) == 0 {
		t.Fatal("no assignment to learn the topic id from")
	}
	return r.Assignment.Topics[0].TopicID
}

// migrationSubscription is a ConsumerProtocol subscription to topics.
func migrationSubscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 1
	m.Topics = topics
	return m.AppendTo(nil)
}
