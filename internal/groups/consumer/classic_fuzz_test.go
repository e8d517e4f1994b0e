package consumer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/groups"
)

// FuzzMixedGroup drives a group upgraded from a classic group, holding
// classic members (eager and cooperative clients, driving JoinGroup,
// SyncGroup, Heartbeat and LeaveGroup as clients do) and members of the
// consumer protocol, with timeouts, lost responses and handovers. After
// every step the invariants of FuzzGroup hold (no partition held by two
// members, every client consumes only what the group counts as its), and
// a downgrade, when the group asks for one, gives a classic group that
// restores.
func FuzzMixedGroup(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 2, 2, 3, 2, 4, 0, 5, 0, 6, 1, 2, 3, 0, 2, 8, 0, 5, 1, 9, 4})
	f.Add([]byte{1, 2, 2, 2, 3, 2, 4, 2, 0, 1, 2, 1, 3, 1, 6, 0, 7, 0, 3, 0, 4, 0, 8, 1, 8, 3})
	f.Fuzz(func(t *testing.T, ops []byte) { runMixedOps(t, ops) })
}

// classicClient is what a classic member's client believes.
type classicClient struct {
	client
	cooperative bool
	synced      bool
}

func (h *mixedHarness) subscription(owned Assignment) []byte {
	s := kmsg.NewConsumerMemberMetadata()
	s.Version = 1
	s.Topics = []string{"a", "b"}
	for _, id := range owned.TopicIDs() {
		s.OwnedPartitions = append(s.OwnedPartitions, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: h.names[id], Partitions: owned[id]})
	}
	return s.AppendTo(nil)
}

type mixedHarness struct {
	names map[TopicID]string
	img   Image
}

func decodeOwned(t *testing.T, img Image, b []byte) Assignment {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		t.Fatalf("sync assignment: %v", err)
	}
	out := Assignment{}
	for _, at := range a.Topics {
		tp, ok := img.Topic(at.Topic)
		if !ok {
			t.Fatalf("sync assignment names unknown topic %q", at.Topic)
		}
		out[tp.ID] = slices.Clone(at.Partitions)
	}
	return out
}

func runMixedOps(t *testing.T, ops []byte) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := Config{SessionTimeout: 45 * time.Second, HeartbeatInterval: time.Second, MaxSize: 5}
	ids := 0
	newID := func() string { ids++; return fmt.Sprintf("gen-%d", ids) }
	h := &mixedHarness{names: map[TopicID]string{topicID("a"): "a", topicID("b"): "b"}}
	h.img = NewImage([]Topic{{ID: topicID("a"), Name: "a", Partitions: 4}, {ID: topicID("b"), Name: "b", Partitions: 2}})

	// A stable classic group: c0 holds a:0,1 b:0, c1 holds a:2,3 b:1.
	classics := []*classicClient{
		{client: client{id: "c0", joined: true, epoch: 3, owned: Assignment{topicID("a"): {0, 1}, topicID("b"): {0}}}},
		{client: client{id: "c1", joined: true, epoch: 3, owned: Assignment{topicID("a"): {2, 3}, topicID("b"): {1}}}, cooperative: true},
		{client: client{id: "c2"}, cooperative: true},
	}
	snap := groups.Snapshot{State: "Stable", Generation: 3, ProtocolType: Type, Protocol: "range"}
	for _, c := range classics[:2] {
		c.synced = true
		asg := kmsg.NewConsumerMemberAssignment()
		for _, id := range c.owned.TopicIDs() {
			asg.Topics = append(asg.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: h.names[id], Partitions: c.owned[id]})
		}
		snap.Members = append(snap.Members, groups.SnapshotMember{ID: c.id, SessionTimeoutMs: 10000, RebalanceTimeoutMs: 20000,
			Protocols: []groups.Protocol{{Name: "range", Metadata: h.subscription(nil)}}, Assignment: asg.AppendTo(nil)})
	}
	g, err := FromClassic("g", cfg, newID, snap, h.img, now)
	if err != nil {
		t.Fatal(err)
	}
	modern := []*client{{id: "m0"}, {id: "m1"}}
	all := func() []*client {
		out := []*client{&classics[0].client, &classics[1].client, &classics[2].client}
		return append(out, modern...)
	}
	check(t, g, all())
	renew := func(c *client) { c.id = fmt.Sprintf("%s.%d", c.id[:2], ids); ids++ }

	for len(ops) >= 2 {
		op, arg := ops[0]%10, int(ops[1])
		ops = ops[2:]
		// A client whose member was removed is a zombie until its next
		// request fails; the checks skip it (as FuzzGroup's do), and it
		// must not carry its partitions into a member later created with
		// the same id, which the group knows nothing of.
		for _, c := range all() {
			if c.joined && g.members[c.id] == nil {
				c.joined, c.owned = false, nil
			}
		}
		var eff Effects
		switch op {
		case 0, 1, 2, 3: // a classic client: join, sync, heartbeat, leave
			c := classics[arg%len(classics)]
			switch op {
			case 0:
				owned := Assignment{}
				if c.cooperative && c.owned != nil {
					owned = c.owned
				}
				if !c.cooperative {
					c.owned = Assignment{} // eager: revoke all before joining
				}
				resp, e := g.ClassicJoin(now, h.img, groups.JoinRequest{Version: 5, MemberID: c.id,
					SessionTimeout: 10 * time.Second, RebalanceTimeout: 20 * time.Second, ProtocolType: Type,
					Protocols: []groups.Protocol{{Name: "range", Metadata: h.subscription(owned)}}})
				eff = e
				switch resp.Err {
				case 0:
					c.joined, c.synced, c.epoch = true, false, resp.Generation
				default:
					c.joined, c.owned = false, nil
				}
			case 1:
				if !c.joined || c.synced {
					continue
				}
				resp := g.ClassicSync(now, groups.SyncRequest{MemberID: c.id, Generation: c.epoch, ProtocolType: Type, Protocol: "range"})
				if resp.Err == 0 {
					// Cooperative or eager, the client now holds what it
					// was given (it revokes what it lost).
					c.owned, c.synced = decodeOwned(t, h.img, resp.Assignment), true
				} else {
					c.joined, c.owned = false, nil
				}
			case 2:
				if !c.joined {
					continue
				}
				switch code := g.ClassicHeartbeat(now, c.id, "", c.epoch); code {
				case 0:
				case kerr.RebalanceInProgress.Code:
					if !c.cooperative {
						c.owned = Assignment{}
					}
				default:
					c.joined, c.owned = false, nil
				}
			case 3:
				if !c.joined {
					continue
				}
				_, eff = g.ClassicLeave([]groups.LeaveMember{{MemberID: c.id}})
				c.joined, c.owned, c.epoch = false, nil, 0
				renew(&c.client)
			}
		case 4, 5, 6: // a consumer-protocol client: join, full heartbeat, leave
			c := modern[arg%len(modern)]
			r := HeartbeatRequest{Version: 1, MemberID: c.id, MemberEpoch: c.epoch, RebalanceTimeout: -1, Owned: c.owned}
			switch op {
			case 4:
				r.MemberEpoch, r.RebalanceTimeout, r.Owned = 0, 30*time.Second, Assignment{}
				r.SubscribedTopicNames = []string{"a", "b"}
				c.owned = Assignment{}
			case 5:
				if !c.joined {
					continue
				}
				if r.Owned == nil {
					r.Owned = Assignment{}
				}
			case 6:
				if !c.joined {
					continue
				}
				r.MemberEpoch = LeaveEpoch
			}
			resp, e := g.Heartbeat(now, h.img, r)
			eff = e
			switch {
			case resp.Err == 0 && r.MemberEpoch < 0:
				c.joined, c.epoch, c.owned = false, 0, nil
				renew(c)
			case resp.Err == 0:
				c.joined, c.epoch = true, resp.MemberEpoch
				if resp.Assignment != nil {
					c.owned = resp.Assignment
				}
			default:
				c.joined, c.epoch, c.owned = false, 0, nil
			}
		case 7: // time passes
			now = now.Add(time.Duration(arg%40) * time.Second)
			eff = g.Tick(now)
		case 8: // handover
			b, err := g.Snapshot().Marshal()
			if err != nil {
				t.Fatal(err)
			}
			s, err := UnmarshalSnapshot(b)
			if err != nil {
				t.Fatal(err)
			}
			if g, err = Restore("g", cfg, newID, s, now); err != nil {
				t.Fatal(err)
			}
		case 9: // a classic client forgets it holds anything (its process restarted)
			c := classics[arg%len(classics)]
			c.joined, c.owned, c.synced = false, nil, false
		}
		check(t, g, all())
		if eff.Downgrade {
			s := g.ToClassic()
			if len(s.Members) == 0 || len(s.Members) != g.Len() {
				t.Fatalf("downgrade of %d members gives %d", g.Len(), len(s.Members))
			}
			if _, err := groups.Restore("g", groups.Config{}, func(string) string { return "x" }, s, now); err != nil {
				t.Fatalf("downgraded group does not restore: %v", err)
			}
			return
		}
	}
}

// TestRandomMixedGroups runs many pseudo-random operation sequences
// through the mixed driver.
func TestRandomMixedGroups(t *testing.T) {
	seed := uint64(7)
	for range 200 {
		ops := make([]byte, 300)
		for i := range ops {
			seed = seed*6364136223846793005 + 1442695040888963407
			ops[i] = byte(seed >> 56)
		}
		runMixedOps(t, ops)
	}
}
