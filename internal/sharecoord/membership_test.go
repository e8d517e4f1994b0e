package sharecoord_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharegroup"
)

// TestMembershipHandover: two coordinators over one store, as two agents.
// Members join on the first; the group then moves to the second (the
// first died, or the agent set changed): members heartbeating at their
// epochs continue there, unfenced and at the same epochs and
// assignments, the group epoch goes on from where it was, and a member
// that never comes back is removed a session timeout after the takeover.
// When the group moves back, the first coordinator does not answer from
// its stale copy.
func TestMembershipHandover(t *testing.T) {
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var owner atomic.Int32 // which coordinator owns the group: 0 or 1
	coords := make([]*sharecoord.Coordinator, 2)
	for i := range coords {
		coords[i] = sharecoord.New(store, sharecoord.Options{Now: clk.Now, Owns: func(string) bool { return owner.Load() == int32(i) }})
	}
	img := consumer.NewImage([]consumer.Topic{{ID: consumer.TopicID(topic.ID), Name: "t", Partitions: 2}})
	hb := func(c *sharecoord.Coordinator, member string, epoch int32) sharegroup.HeartbeatResponse {
		t.Helper()
		r := sharegroup.HeartbeatRequest{MemberID: member, MemberEpoch: epoch}
		if epoch == 0 {
			r.SubscribedTopicNames = []string{"t"}
		}
		return c.Heartbeat("g", img, r)
	}
	epochs := map[string]int32{}
	for _, m := range []string{"a", "b", "gone"} {
		resp := hb(coords[0], m, 0)
		if resp.Err != 0 {
			t.Fatalf("join %s: %+v", m, resp)
		}
		epochs[m] = resp.MemberEpoch
	}
	// Everyone hears of the last assignment.
	for _, m := range []string{"a", "b", "gone"} {
		resp := hb(coords[0], m, epochs[m])
		if resp.Err != 0 {
			t.Fatalf("heartbeat %s: %+v", m, resp)
		}
		epochs[m] = resp.MemberEpoch
	}
	before, code := coords[0].Describe("g", img)
	if code != 0 || len(before.Members) != 3 {
		t.Fatalf("describe on the first coordinator: %+v %d", before, code)
	}

	// The group moves to the second coordinator 30 s later.
	owner.Store(1)
	clk.now = clk.now.Add(30 * time.Second)
	if resp := hb(coords[0], "a", epochs["a"]); resp.Err != kerr.NotCoordinator.Code {
		t.Fatalf("the first coordinator after the move: %+v, want NOT_COORDINATOR", resp)
	}
	for _, m := range []string{"a", "b"} {
		resp := hb(coords[1], m, epochs[m])
		if resp.Err != 0 || resp.MemberEpoch != epochs[m] || resp.Assignment != nil {
			t.Fatalf("member %s at epoch %d on the new coordinator: %+v; want OK at the same epoch, nothing new", m, epochs[m], resp)
		}
	}
	after, code := coords[1].Describe("g", img)
	if code != 0 || after.GroupEpoch != before.GroupEpoch || len(after.Members) != 3 {
		t.Fatalf("describe on the new coordinator: %+v %d; want group epoch %d, 3 members", after, code, before.GroupEpoch)
	}
	for i := range after.Members {
		if b, a := before.Members[i], after.Members[i]; a.MemberID != b.MemberID || a.MemberEpoch != b.MemberEpoch || a.Assignment.Len() != b.Assignment.Len() {
			t.Fatalf("member %d before %+v, after %+v", i, b, a)
		}
	}

	// "gone" last heartbeated 30 s before the takeover; it is removed 45 s
	// after the takeover, not 15 s after it.
	takeover := clk.now
	for _, elapsed := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 44 * time.Second, 45 * time.Second} {
		clk.now = takeover.Add(elapsed)
		for _, m := range []string{"a", "b"} {
			resp := hb(coords[1], m, epochs[m])
			if resp.Err != 0 {
				t.Fatalf("member %s: %+v", m, resp)
			}
			epochs[m] = resp.MemberEpoch
		}
		d, _ := coords[1].Describe("g", img)
		want := 3
		if elapsed >= 45*time.Second {
			want = 2
		}
		if len(d.Members) != want {
			t.Fatalf("%d members %v after the takeover; want %d", len(d.Members), elapsed, want)
		}
	}
	// Two members over two partitions: a and b keep theirs, nobody moves.
	if d, _ := coords[1].Describe("g", img); d.GroupEpoch != before.GroupEpoch || epochs["a"] != before.Members[0].MemberEpoch {
		t.Fatalf("after removing gone: %+v", d)
	}

	// Back to the first: it reloads, so it knows the removal.
	owner.Store(0)
	if resp := hb(coords[1], "a", epochs["a"]); resp.Err != kerr.NotCoordinator.Code {
		t.Fatalf("the second coordinator after the move back: %+v", resp)
	}
	if resp := hb(coords[0], "gone", epochs["gone"]); resp.Err != kerr.UnknownMemberID.Code {
		t.Fatalf("the removed member on the first coordinator again: %+v, want UNKNOWN_MEMBER_ID", resp)
	}
	for _, m := range []string{"a", "b"} {
		if resp := hb(coords[0], m, epochs[m]); resp.Err != 0 || resp.MemberEpoch != epochs[m] {
			t.Fatalf("member %s back on the first coordinator: %+v, want OK at %d", m, resp, epochs[m])
		}
	}
}

// TestMembershipConflict: a coordinator that still believes it owns the
// group after another wrote it is refused at its next change and
// answers NOT_COORDINATOR; its next request loads the group again.
func TestMembershipConflict(t *testing.T) {
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := sharecoord.New(store, sharecoord.Options{Now: clk.Now})
	b := sharecoord.New(store, sharecoord.Options{Now: clk.Now})
	img := consumer.NewImage([]consumer.Topic{{ID: consumer.TopicID(topic.ID), Name: "t", Partitions: 2}})
	join := func(c *sharecoord.Coordinator, m string) sharegroup.HeartbeatResponse {
		return c.Heartbeat("g", img, sharegroup.HeartbeatRequest{MemberID: m, SubscribedTopicNames: []string{"t"}})
	}
	if r := join(a, "m1"); r.Err != 0 {
		t.Fatal(r)
	}
	if r := join(b, "m2"); r.Err != 0 { // b loads m1 and adds m2
		t.Fatal(r)
	}
	if r := join(a, "m3"); r.Err != kerr.NotCoordinator.Code {
		t.Fatalf("a stale coordinator's change: %+v, want NOT_COORDINATOR", r)
	}
	if r := join(a, "m3"); r.Err != 0 {
		t.Fatalf("again, after reloading: %+v", r)
	}
	if d, _ := a.Describe("g", img); len(d.Members) != 3 {
		t.Fatalf("members after reloading: %+v", d.Members)
	}
}

// TestListStoredGroups: a coordinator lists the share groups it
// coordinates that are only in the store (here: run by another agent
// before), not only those a request touched here: one with stored
// members as Stable, one with only share-partition states as Empty; and
// none that another agent coordinates.
func TestListStoredGroups(t *testing.T) {
	store, topic := setup(t)
	img := consumer.NewImage([]consumer.Topic{{ID: consumer.TopicID(topic.ID), Name: "t", Partitions: 2}})
	first := sharecoord.New(store, sharecoord.Options{})
	if resp := first.Heartbeat("members", img, sharegroup.HeartbeatRequest{MemberID: "m", SubscribedTopicNames: []string{"t"}}); resp.Err != 0 {
		t.Fatalf("join: %+v", resp)
	}
	tp := sharecoord.TP{Topic: topic.ID}
	for _, g := range []string{"states-only", "elsewhere"} {
		if _, code := first.Acquire(t.Context(), g, "m", tp, 1, sharecoord.Offsets{End: 3}, readAll(3)); code != 0 {
			t.Fatalf("acquire %s: %d", g, code)
		}
	}
	second := sharecoord.New(store, sharecoord.Options{Owns: func(g string) bool { return g != "elsewhere" }})
	if got := second.Groups(); len(got) != 0 {
		t.Fatalf("in memory before anything touched them: %v", got)
	}
	got := fmt.Sprint(second.ListGroups(t.Context()))
	if want := "[[members Stable] [states-only Empty]]"; got != want {
		t.Fatalf("ListGroups = %s, want %s", got, want)
	}
	// Listing loaded the group with members, as its next request would.
	if got := fmt.Sprint(second.Groups()); got != "[[members Stable]]" {
		t.Fatalf("in memory after listing: %s", got)
	}
	if got := fmt.Sprint(second.ListGroups(t.Context())); got != "[[members Stable] [states-only Empty]]" {
		t.Fatalf("listed again: %s", got)
	}
	// Past MaxListLoads stored groups, the others are listed unloaded,
	// as Unknown.
	third := sharecoord.New(store, sharecoord.Options{MaxListLoads: 1})
	if got, want := fmt.Sprint(third.ListGroups(t.Context())), "[[elsewhere Empty] [members Unknown] [states-only Unknown]]"; got != want {
		t.Fatalf("with one load: %s, want %s", got, want)
	}
}
