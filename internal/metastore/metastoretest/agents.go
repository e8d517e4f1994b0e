package metastoretest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Expiry tests use short TTLs and poll for at most expiryWait, so that a
// slow machine makes them slower, not flaky.
const (
	shortTTL   = 200 * time.Millisecond
	longTTL    = time.Minute
	expiryWait = 5 * time.Second
)

func testAgents(t *testing.T, open func(t *testing.T) metastore.AgentRegistry) {
	t.Run("NodeIDsUniqueAndStable", func(t *testing.T) {
		s := open(t)
		ids := map[int32]string{}
		first := map[string]int32{}
		for i := range 5 {
			id := fmt.Sprintf("agent-%d", i)
			a := heartbeat(t, s, agent(id, -1), longTTL)
			if a.NodeID < 0 {
				t.Fatalf("%s: NodeID %d, want one assigned (>= 0)", id, a.NodeID)
			}
			if other, dup := ids[a.NodeID]; dup {
				t.Fatalf("%s got NodeID %d, already given to %s", id, a.NodeID, other)
			}
			ids[a.NodeID] = id
			first[id] = a.NodeID
		}
		// Later heartbeats keep the id, whether they send it back, ask for
		// a new one or name another; and they update the other fields.
		for id, node := range first {
			for _, sent := range []int32{-1, node, node + 1000} {
				a := agent(id, sent)
				a.Host, a.Port = "moved.example", 9999
				got := heartbeat(t, s, a, longTTL)
				if got.NodeID != node {
					t.Fatalf("%s heartbeat with NodeID %d: got %d, want %d", id, sent, got.NodeID, node)
				}
			}
		}
		live := liveAgents(t, s)
		if len(live) != len(first) {
			t.Fatalf("LiveAgents: %d agents, want %d", len(live), len(first))
		}
		for _, a := range live {
			if a.NodeID != first[a.ID] || a.Host != "moved.example" || a.Port != 9999 {
				t.Errorf("LiveAgents: %+v, want NodeID %d at moved.example:9999", a, first[a.ID])
			}
		}
	})

	t.Run("GivenNodeID", func(t *testing.T) {
		s := open(t)
		// An agent configured with a node id keeps it, and ids assigned
		// later never collide with it.
		if got := heartbeat(t, s, agent("fixed", 7), longTTL); got.NodeID != 7 {
			t.Fatalf("new agent with NodeID 7 got %d", got.NodeID)
		}
		seen := map[int32]bool{7: true}
		for i := range 10 {
			a := heartbeat(t, s, agent(fmt.Sprintf("auto-%d", i), -1), longTTL)
			if a.NodeID < 0 || seen[a.NodeID] {
				t.Fatalf("auto-%d got NodeID %d, already in use or negative", i, a.NodeID)
			}
			seen[a.NodeID] = true
		}
		if got := heartbeat(t, s, agent("fixed", -1), longTTL); got.NodeID != 7 {
			t.Fatalf("fixed agent's next heartbeat got NodeID %d, want 7", got.NodeID)
		}
	})

	t.Run("ConcurrentRegistration", func(t *testing.T) {
		const (
			goroutines = 8
			each       = 4
		)
		s := open(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				<-start
				for i := range each {
					a := agent(fmt.Sprintf("agent-%d-%d", g, i), -1)
					if _, err := s.Heartbeat(t.Context(), a, longTTL); err != nil {
						t.Errorf("Heartbeat(%s): %v", a.ID, err)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		live := liveAgents(t, s)
		if len(live) != goroutines*each {
			t.Fatalf("LiveAgents: %d agents, want %d", len(live), goroutines*each)
		}
		for i := 1; i < len(live); i++ {
			if live[i].NodeID <= live[i-1].NodeID {
				t.Fatalf("LiveAgents: NodeID %d (%s) after %d (%s): ids not unique or not sorted",
					live[i].NodeID, live[i].ID, live[i-1].NodeID, live[i-1].ID)
			}
		}
	})

	t.Run("Fields", func(t *testing.T) {
		s := open(t)
		in := metastore.AgentInfo{
			ID: "a", NodeID: -1, Host: "10.0.0.1", Port: 9092, Zone: "eu-west-1a",
			Roles: []string{"produce", "fetch", "groups"},
		}
		before := time.Now()
		got := heartbeat(t, s, in, longTTL)
		in.Roles[0] = "changed" // the store must not keep the caller's slice
		want := metastore.AgentInfo{
			ID: "a", NodeID: got.NodeID, Host: "10.0.0.1", Port: 9092, Zone: "eu-west-1a",
			Roles: []string{"produce", "fetch", "groups"},
		}
		sameAgent(t, "Heartbeat", got, want)
		if d := got.Expires.Sub(before.Add(longTTL)); d < -clockSlack || d > clockSlack {
			t.Errorf("Expires %v is not about ttl %v after the heartbeat at %v", got.Expires, longTTL, before)
		}
		live := liveAgents(t, s)
		if len(live) != 1 {
			t.Fatalf("LiveAgents: %+v, want one agent", live)
		}
		sameAgent(t, "LiveAgents", live[0], want)
		if !live[0].Expires.Equal(got.Expires) {
			t.Errorf("LiveAgents: Expires %v, Heartbeat returned %v", live[0].Expires, got.Expires)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		heartbeat(t, s, agent("long", -1), longTTL)
		sent := time.Now()
		heartbeat(t, s, agent("short", -1), shortTTL)
		// Checked only while the ttl surely has not run out.
		if live := agentIDs(liveAgents(t, s)); time.Since(sent) < shortTTL && !slices.Contains(live, "short") {
			t.Fatalf("LiveAgents right after the heartbeat: %q, want short among them", live)
		}
		waitForAgents(t, s, []string{"long"})

		// An expired agent that heartbeats again is live again.
		heartbeat(t, s, agent("short", -1), longTTL)
		if live := agentIDs(liveAgents(t, s)); !slices.Contains(live, "short") {
			t.Fatalf("LiveAgents after a new heartbeat: %q, want short among them", live)
		}
	})

	t.Run("HeartbeatExtends", func(t *testing.T) {
		s := open(t)
		heartbeat(t, s, agent("a", -1), shortTTL)
		heartbeat(t, s, agent("a", -1), longTTL)
		time.Sleep(shortTTL + 100*time.Millisecond)
		if live := agentIDs(liveAgents(t, s)); !slices.Equal(live, []string{"a"}) {
			t.Fatalf("LiveAgents after the first ttl ran out: %q, want [a] (refreshed for %v)", live, longTTL)
		}
		// The last heartbeat counts, even if it shortens the ttl.
		heartbeat(t, s, agent("a", -1), shortTTL)
		waitForAgents(t, s, nil)
	})

	t.Run("Deregister", func(t *testing.T) {
		s := open(t)
		a := heartbeat(t, s, agent("a", -1), longTTL)
		heartbeat(t, s, agent("b", -1), longTTL)
		wantErr(t, "Deregister(a)", s.Deregister(t.Context(), "a"), nil)
		if live := agentIDs(liveAgents(t, s)); !slices.Equal(live, []string{"b"}) {
			t.Fatalf("LiveAgents after Deregister(a): %q, want [b]", live)
		}
		// Deregistering is idempotent: a shutdown may retry it, or follow
		// the expiry of the registration.
		wantErr(t, "second Deregister(a)", s.Deregister(t.Context(), "a"), nil)
		wantErr(t, "Deregister(never)", s.Deregister(t.Context(), "never"), nil)

		again := heartbeat(t, s, agent("a", -1), longTTL)
		if again.NodeID < 0 {
			t.Fatalf("re-registered agent has NodeID %d", again.NodeID)
		}
		live := liveAgents(t, s)
		if len(live) != 2 || live[0].NodeID == live[1].NodeID {
			t.Fatalf("LiveAgents after re-registering a (was NodeID %d): %+v", a.NodeID, live)
		}
	})

	t.Run("SortedByNodeID", func(t *testing.T) {
		s := open(t)
		for _, a := range []metastore.AgentInfo{
			agent("z", 30), agent("y", -1), agent("x", 10), agent("w", 20), agent("v", -1), agent("u", 1000),
		} {
			heartbeat(t, s, a, longTTL)
		}
		live := liveAgents(t, s)
		if len(live) != 6 {
			t.Fatalf("LiveAgents: %+v, want 6 agents", live)
		}
		if !slices.IsSortedFunc(live, func(a, b metastore.AgentInfo) int { return cmp.Compare(a.NodeID, b.NodeID) }) {
			t.Fatalf("LiveAgents not sorted by NodeID: %+v", live)
		}
	})

	t.Run("OutageManifest", func(t *testing.T) {
		s := open(t)
		named := func(id, name string) metastore.AgentInfo {
			a := agent(id, -1)
			a.OutageManifest = name
			return a
		}
		refused := func(a metastore.AgentInfo) {
			t.Helper()
			_, err := s.Heartbeat(t.Context(), a, longTTL)
			wantErr(t, fmt.Sprintf("Heartbeat(%s, name %q)", a.ID, a.OutageManifest), err, metastore.ErrOutageManifestTaken)
		}
		names := func() map[string]string {
			t.Helper()
			m := map[string]string{}
			for _, a := range liveAgents(t, s) {
				m[a.ID] = a.OutageManifest
			}
			return m
		}
		got := heartbeat(t, s, named("a", "n1"), longTTL)
		if got.OutageManifest != "n1" {
			t.Fatalf("Heartbeat returned OutageManifest %q, want n1", got.OutageManifest)
		}
		refused(named("b", "n1"))
		if m := names(); len(m) != 1 || m["a"] != "n1" {
			t.Fatalf("LiveAgents after b was refused: %v, want a holding n1 and no b", m)
		}
		heartbeat(t, s, named("a", "n1"), longTTL) // its own name
		heartbeat(t, s, named("b", "n2"), longTTL)
		heartbeat(t, s, agent("c", -1), longTTL) // no name: never refused
		if m := names(); len(m) != 3 || m["a"] != "n1" || m["b"] != "n2" || m["c"] != "" {
			t.Fatalf("LiveAgents: names %v, want a:n1 b:n2 c:\"\"", m)
		}
		// A heartbeat without the name releases it.
		heartbeat(t, s, agent("a", -1), longTTL)
		heartbeat(t, s, named("d", "n1"), longTTL)
		refused(named("a", "n1"))

		// An expired holder does not count; coming back, it is refused.
		heartbeat(t, s, named("e", "n3"), shortTTL)
		deadline := time.Now().Add(expiryWait)
		for {
			_, err := s.Heartbeat(t.Context(), named("f", "n3"), longTTL)
			if err == nil {
				break
			}
			wantErr(t, "Heartbeat(f, n3) while e may be live", err, metastore.ErrOutageManifestTaken)
			if time.Now().After(deadline) {
				t.Fatalf("n3 still held by e %v after its ttl of %v", expiryWait, shortTTL)
			}
			time.Sleep(20 * time.Millisecond)
		}
		refused(named("e", "n3"))

		// Deregistering releases the name at once.
		wantErr(t, "Deregister(d)", s.Deregister(t.Context(), "d"), nil)
		heartbeat(t, s, named("g", "n1"), longTTL)

		// Agents racing for one name: exactly one gets it.
		const racers = 6
		var wg sync.WaitGroup
		errs := make([]error, racers)
		for i := range racers {
			wg.Go(func() {
				_, errs[i] = s.Heartbeat(t.Context(), named(fmt.Sprintf("r%d", i), "race"), longTTL)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, metastore.ErrOutageManifestTaken):
				t.Fatalf("racer r%d: %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d agents racing for one name got it, want 1 (errors %v)", won, racers, errs)
		}
		holders := 0
		for _, a := range liveAgents(t, s) {
			if a.OutageManifest == "race" {
				holders++
			}
		}
		if holders != 1 {
			t.Fatalf("LiveAgents lists %d holders of the raced name, want 1", holders)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		cases := []struct {
			name string
			a    metastore.AgentInfo
			ttl  time.Duration
		}{
			{"empty id", agent("", -1), longTTL},
			{"zero ttl", agent("a", -1), 0},
			{"negative ttl", agent("a", -1), -time.Second},
		}
		for _, tc := range cases {
			if _, err := s.Heartbeat(t.Context(), tc.a, tc.ttl); err == nil {
				t.Errorf("Heartbeat with %s succeeded", tc.name)
			}
		}
		if live := liveAgents(t, s); len(live) != 0 {
			t.Fatalf("LiveAgents after invalid heartbeats: %+v", live)
		}
	})
}

// agent describes an agent with the given ID and requested node id.
func agent(id string, nodeID int32) metastore.AgentInfo {
	return metastore.AgentInfo{ID: id, NodeID: nodeID, Host: "localhost", Port: 9092, Roles: []string{"produce", "fetch"}}
}

func heartbeat(t *testing.T, s metastore.AgentRegistry, a metastore.AgentInfo, ttl time.Duration) metastore.AgentInfo {
	t.Helper()
	got, err := s.Heartbeat(t.Context(), a, ttl)
	if err != nil {
		t.Fatalf("Heartbeat(%s, %v): %v", a.ID, ttl, err)
	}
	if got.ID != a.ID {
		t.Fatalf("Heartbeat(%s) returned agent %s", a.ID, got.ID)
	}
	return got
}

func liveAgents(t *testing.T, s metastore.AgentRegistry) []metastore.AgentInfo {
	t.Helper()
	agents, err := s.LiveAgents(t.Context())
	if err != nil {
		t.Fatalf("LiveAgents: %v", err)
	}
	return agents
}

func agentIDs(agents []metastore.AgentInfo) []string {
	var ids []string
	for _, a := range agents {
		ids = append(ids, a.ID)
	}
	return ids
}

// waitForAgents polls LiveAgents until it lists exactly the given IDs, in
// that order, and fails the test if that takes longer than expiryWait.
func waitForAgents(t *testing.T, s metastore.AgentRegistry, ids []string) {
	t.Helper()
	deadline := time.Now().Add(expiryWait)
	for {
		live := agentIDs(liveAgents(t, s))
		if slices.Equal(live, ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LiveAgents still %q after %v, want %q", live, expiryWait, ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameAgent compares everything but Expires; nil and empty roles are the
// same.
func sameAgent(t *testing.T, what string, got, want metastore.AgentInfo) {
	t.Helper()
	if got.ID != want.ID || got.NodeID != want.NodeID || got.Host != want.Host || got.Port != want.Port ||
		got.Zone != want.Zone || !slices.Equal(got.Roles, want.Roles) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}
