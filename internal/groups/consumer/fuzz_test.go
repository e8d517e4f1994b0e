package consumer

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// FuzzGroup drives a group with arbitrary sequences of joins, heartbeats
// (some of whose responses are lost), leaves, timeouts, topic changes and
// handovers (snapshot and restore), with members that behave as clients
// do. After every step, no partition is held by two members, every client
// the group still counts as a member holds only partitions the group
// thinks it holds (so no two clients consume a partition at once, zombies
// apart), the owner index matches the members, and a snapshot restores
// to the same state.
func FuzzGroup(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 1, 1, 2, 0, 2, 1, 4, 0, 6, 0, 2, 2})
	f.Add([]byte{0, 0, 0, 1, 0, 2, 2, 0, 2, 1, 5, 3, 2, 0, 7, 1, 2, 1, 3, 0, 2, 1, 4, 9, 2, 2})
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 3, 1, 0, 1, 1, 1, 2, 1, 3, 2, 0, 2, 1, 2, 2, 2, 3, 6, 0, 3, 1, 2, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		runOps(t, ops)
	})
}

// client is what a member's client believes.
type client struct {
	id     string
	epoch  int32
	owned  Assignment
	joined bool
}

func runOps(t *testing.T, ops []byte) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := Config{SessionTimeout: 45 * time.Second, HeartbeatInterval: time.Second, MaxSize: 3}
	ids := 0
	newID := func() string { ids++; return fmt.Sprintf("gen-%d", ids) }
	g := New("g", cfg, newID)
	partitions := []int32{3, 2}
	image := func() Image {
		return NewImage([]Topic{{ID: topicID("a"), Name: "a", Partitions: partitions[0]}, {ID: topicID("b"), Name: "b", Partitions: partitions[1]}})
	}
	clients := make([]*client, 4)
	for i := range clients {
		clients[i] = &client{id: fmt.Sprintf("m%d", i)}
	}
	// A client that left or was forgotten comes back as a new member id,
	// as franz-go does (a static one replaces its old member).
	renew := func(c *client) { c.id = fmt.Sprintf("%s.%d", c.id[:2], ids); ids++ }
	var instance = []string{"", "i1", "", "i3"}
	for len(ops) >= 2 {
		op, arg := ops[0]%8, int(ops[1])
		ops = ops[2:]
		c := clients[arg%len(clients)]
		r := HeartbeatRequest{Version: 1, MemberID: c.id, MemberEpoch: c.epoch, RebalanceTimeout: -1}
		if instance[arg%len(clients)] != "" {
			inst := instance[arg%len(clients)]
			r.InstanceID = &inst
		}
		lost := false
		switch op {
		case 0: // join
			r.MemberEpoch, r.RebalanceTimeout, r.Owned = 0, 30*time.Second, Assignment{}
			r.SubscribedTopicNames = []string{"a", "b"}[:1+arg%2]
			c.owned = Assignment{}
		case 1: // keepalive
		case 2: // full heartbeat
			r.Owned = c.owned
			if r.Owned == nil {
				r.Owned = Assignment{}
			}
		case 3: // leave
			r.MemberEpoch = LeaveEpoch
			if r.InstanceID != nil && arg%2 == 0 {
				r.MemberEpoch = StaticLeaveEpoch
			}
		case 4: // time passes
			now = now.Add(time.Duration(arg%60) * time.Second)
			g.Tick(now)
			check(t, g, clients)
			continue
		case 5: // a topic grows
			partitions[arg%2]++
			continue
		case 6: // handover
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
			check(t, g, clients)
			continue
		case 7: // a full heartbeat whose response is lost
			r.Owned = c.owned
			if r.Owned == nil {
				r.Owned = Assignment{}
			}
			lost = true
		}
		if !c.joined && op != 0 {
			continue
		}
		resp, _ := g.Heartbeat(now, image(), r)
		if lost {
			check(t, g, clients)
			continue
		}
		switch {
		case resp.Err == 0 && r.MemberEpoch < 0:
			c.joined, c.epoch, c.owned = false, 0, nil
			renew(c)
		case resp.Err == 0:
			c.joined, c.epoch = true, resp.MemberEpoch
			if resp.Assignment != nil {
				// Clients give up what is no longer assigned at once
				// and report it in their next full heartbeat.
				c.owned = resp.Assignment
			}
		case resp.Err == kerr.FencedMemberEpoch.Code:
			c.joined, c.epoch, c.owned = false, 0, nil
		case resp.Err == kerr.UnknownMemberID.Code:
			c.joined, c.epoch, c.owned = false, 0, nil
			renew(c)
		}
		check(t, g, clients)
	}
}

// check verifies the group's invariants.
func check(t *testing.T, g *Group, clients []*client) {
	t.Helper()
	for _, c := range clients {
		m := g.members[c.id]
		if !c.joined || m == nil {
			continue // not in the group, or a zombie the group fences
		}
		for id, ps := range c.owned {
			for _, p := range ps {
				tp := TP{id, p}
				_, assigned := m.assigned[tp]
				_, pending := m.pending[tp]
				if !assigned && !pending {
					t.Fatalf("client %s consumes %v, which the group does not count as its", c.id, tp)
				}
			}
		}
	}
	holder := map[TP]string{}
	for id, m := range g.members {
		for _, set := range []map[TP]int32{m.assigned, m.pending} {
			for tp := range set {
				if other, ok := holder[tp]; ok && other != id {
					t.Fatalf("%v held by %s and %s", tp, other, id)
				}
				holder[tp] = id
			}
		}
		if m.instanceID != "" && g.static[m.instanceID] != id {
			t.Fatalf("instance %s maps to %q, not %s", m.instanceID, g.static[m.instanceID], id)
		}
	}
	if len(holder) != len(g.owner) {
		t.Fatalf("owner index has %d partitions, members hold %d", len(g.owner), len(holder))
	}
	for tp, id := range holder {
		if g.owner[tp] != id {
			t.Fatalf("owner index says %v is %q's, held by %s", tp, g.owner[tp], id)
		}
	}
	a, err := g.Snapshot().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := UnmarshalSnapshot(a)
	r, err := Restore("g", g.cfg, g.newMemberID, s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := r.Snapshot().Marshal(); !bytes.Equal(a, b) {
		t.Fatalf("snapshot does not restore:\n%s\n%s", a, b)
	}
}

// TestRandomGroups runs many pseudo-random operation sequences through
// the fuzz driver.
func TestRandomGroups(t *testing.T) {
	seed := uint64(1)
	for range 60 {
		ops := make([]byte, 200)
		for i := range ops {
			seed = seed*6364136223846793005 + 1442695040888963407
			ops[i] = byte(seed >> 56)
		}
		runOps(t, ops)
	}
}
