package sharegroup

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
)

// TestSnapshotRoundTrip drives a group through seeded random heartbeats
// (joins, heartbeats at current, previous and stale epochs, leaves,
// subscription and topic changes); after every step a copy restored from
// the last snapshot a coordinator would have stored (after steps that
// left the group dirty) must describe the same group and then answer the
// next steps exactly as the original does.
func TestSnapshotRoundTrip(t *testing.T) {
	images := []consumer.Image{
		consumer.NewImage([]consumer.Topic{{ID: topicID("a"), Name: "a", Partitions: 3}, {ID: topicID("b"), Name: "b", Partitions: 1}}),
		consumer.NewImage([]consumer.Topic{{ID: topicID("a"), Name: "a", Partitions: 5}, {ID: topicID("b"), Name: "b", Partitions: 1}, {ID: topicID("c"), Name: "c", Partitions: 2}}),
	}
	members := []string{"m1", "m2", "m3", "m4", "m5"}
	subs := [][]string{{"a"}, {"a", "b"}, {"b", "c"}, {"c"}}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		type step struct {
			img int
			r   HeartbeatRequest
		}
		// Epochs are chosen from what the original answered, so most
		// heartbeats are accepted and some are fenced.
		epochs := map[string]int32{}
		var steps []step
		g := New("g", Config{})
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		const n = 40 // 500 ms apart: no session (45 s) expires
		for range n {
			id := members[rng.IntN(len(members))]
			r := HeartbeatRequest{MemberID: id, ClientID: "c-" + id, ClientHost: "/127.0.0.1"}
			e, known := epochs[id]
			switch k := rng.IntN(10); {
			case !known || k == 0:
				r.MemberEpoch = 0
				r.SubscribedTopicNames = subs[rng.IntN(len(subs))]
				rack := "r" + id
				r.RackID = &rack
			case k == 1:
				r.MemberEpoch = -1
			case k == 2:
				r.MemberEpoch = max(e-1, 1)
			case k == 3:
				r.MemberEpoch = e
				r.SubscribedTopicNames = subs[rng.IntN(len(subs))]
			default:
				r.MemberEpoch = e
			}
			s := step{img: min(rng.IntN(8), 1), r: r}
			steps = append(steps, s)
			resp, _ := g.Heartbeat(now, images[s.img], r)
			switch {
			case resp.Err == 0 && resp.MemberEpoch > 0:
				epochs[id] = resp.MemberEpoch
			case resp.Err == 0 && resp.MemberEpoch == -1, resp.Err == kerr.UnknownMemberID.Code:
				delete(epochs, id)
			}
			now = now.Add(500 * time.Millisecond)
		}
		// Replay: after step k, restore a copy and run steps k+1.. on both.
		for k := range n {
			// As a coordinator does, the snapshot is stored only after
			// steps that leave the group dirty: the restored copy must
			// still decide as the original.
			orig := New("g", Config{})
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			data, err := orig.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps[:k+1] {
				orig.Heartbeat(now, images[s.img], s.r)
				if orig.TakeDirty() {
					if data, err = orig.Snapshot(); err != nil {
						t.Fatal(err)
					}
				}
				now = now.Add(500 * time.Millisecond)
			}
			restored, err := Restore("g", Config{}, data, now)
			if err != nil {
				t.Fatalf("seed %d step %d: Restore: %v", seed, k, err)
			}
			if a, b := orig.Describe(), restored.Describe(); !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d step %d: restored group differs:\n%+v\n%+v", seed, k, a, b)
			}
			for i, s := range steps[k+1:] {
				a, ca := orig.Heartbeat(now, images[s.img], s.r)
				b, cb := restored.Heartbeat(now, images[s.img], s.r)
				if !reflect.DeepEqual(a, b) || ca != cb {
					t.Fatalf("seed %d: restored after step %d answers step %d (%+v) differently:\n%+v %v\n%+v %v", seed, k, k+1+i, s.r, a, ca, b, cb)
				}
				now = now.Add(500 * time.Millisecond)
			}
			if a, b := orig.Describe(), restored.Describe(); !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d step %d: groups differ at the end:\n%+v\n%+v", seed, k, a, b)
			}
		}
	}
}

// TestRestoreSessions: a restored member heartbeating at its epoch
// continues without being fenced or told its assignment again; one that
// never comes back is removed a session timeout after the takeover,
// however long ago it last heartbeated to the old coordinator.
func TestRestoreSessions(t *testing.T) {
	img := consumer.NewImage([]consumer.Topic{{ID: topicID("a"), Name: "a", Partitions: 4}})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := New("g", Config{SessionTimeout: 45 * time.Second})
	var epochs [2]int32
	for i, id := range []string{"stays", "gone"} {
		resp, _ := g.Heartbeat(now, img, HeartbeatRequest{MemberID: id, SubscribedTopicNames: []string{"a"}})
		epochs[i] = resp.MemberEpoch
	}
	// "stays" hears of the second join's assignment.
	resp, _ := g.Heartbeat(now, img, HeartbeatRequest{MemberID: "stays", MemberEpoch: epochs[0]})
	if resp.Err != 0 || resp.Assignment == nil {
		t.Fatalf("heartbeat before the takeover: %+v", resp)
	}
	epochs[0] = resp.MemberEpoch
	data, err := g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The takeover is 40 s later: "gone" last heartbeated 40 s before it.
	takeover := now.Add(40 * time.Second)
	r, err := Restore("g", Config{SessionTimeout: 45 * time.Second}, data, takeover)
	if err != nil {
		t.Fatal(err)
	}
	if gone := r.Tick(takeover.Add(44*time.Second), img); len(gone) != 0 {
		t.Fatalf("removed %v before a session timeout from the takeover", gone)
	}
	resp, changed := r.Heartbeat(takeover.Add(44*time.Second), img, HeartbeatRequest{MemberID: "stays", MemberEpoch: epochs[0]})
	if resp.Err != 0 || resp.MemberEpoch != epochs[0] || resp.Assignment != nil || changed {
		t.Fatalf("heartbeat at the epoch after the takeover: %+v changed=%v; want OK at %d, nothing new", resp, changed, epochs[0])
	}
	// The first heartbeat at the new epoch records that the member is at
	// it (a write); the next ones change nothing to store.
	r.TakeDirty()
	if resp, _ := r.Heartbeat(takeover.Add(44*time.Second), img, HeartbeatRequest{MemberID: "stays", MemberEpoch: epochs[0]}); resp.Err != 0 || r.TakeDirty() {
		t.Fatalf("a steady heartbeat: %+v, dirty", resp)
	}
	gone := r.Tick(takeover.Add(45*time.Second), img)
	if fmt.Sprint(gone) != "[gone]" {
		t.Fatalf("removed %v a session timeout after the takeover; want [gone]", gone)
	}
	if d := r.Describe(); len(d.Members) != 1 || d.Members[0].Assignment.Len() != 4 || d.GroupEpoch <= g.Epoch() {
		t.Fatalf("after removing gone: %+v (group epoch before %d)", d, g.Epoch())
	}
}

// TestRestoreHostile: a record that is not a snapshot is an error.
func TestRestoreHostile(t *testing.T) {
	for _, data := range []string{
		``, `{`, `[]`, `{"v":2}`, `{"v":1,"epoch":-1}`,
		`{"v":1,"epoch":1,"members":[{"id":"","subscribed":["a"],"epoch":1}]}`,
		`{"v":1,"epoch":1,"members":[{"id":"m","subscribed":[],"epoch":1}]}`,
		`{"v":1,"epoch":1,"members":[{"id":"m","subscribed":["a"],"epoch":2}]}`,
		`{"v":1,"epoch":1,"members":[{"id":"m","subscribed":["a"],"epoch":1},{"id":"m","subscribed":["a"],"epoch":1}]}`,
		`{"v":1,"epoch":1,"members":[{"id":"m","subscribed":["a"],"epoch":1,"assignment":{"zz":[0]}}]}`,
		`{"v":1,"epoch":1,"members":[{"id":"m","subscribed":["a"],"epoch":1,"assignment":{"61000000000000000000000000000000":[-1]}}]}`,
		`{"v":1,"epoch":1,"members":[{"id":"` + strings.Repeat("x", MaxMemberIDLength+1) + `","subscribed":["a"],"epoch":1}]}`,
	} {
		if _, err := Restore("g", Config{}, []byte(data), time.Now()); err == nil {
			t.Errorf("Restore(%.60q) succeeded", data)
		}
	}
}
