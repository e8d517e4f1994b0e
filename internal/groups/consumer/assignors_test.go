package consumer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// checkComplete fails unless every partition of a subscribed topic is
// assigned exactly once, to a member subscribing to it.
func checkComplete(t *testing.T, members []AssignMember, topics map[TopicID]int32, out map[string][]TP) {
	t.Helper()
	subs := map[string][]TopicID{}
	subscribed := map[TopicID]bool{}
	for _, m := range members {
		subs[m.ID] = m.Topics
		for _, id := range m.Topics {
			subscribed[id] = true
		}
	}
	seen := map[TP]string{}
	for id, tps := range out {
		for _, tp := range tps {
			if other, dup := seen[tp]; dup {
				t.Fatalf("%v assigned to %s and %s", tp, other, id)
			}
			seen[tp] = id
			if !slices.Contains(subs[id], tp.Topic) {
				t.Fatalf("%v assigned to %s, which does not subscribe to it", tp, id)
			}
		}
	}
	for id, n := range topics {
		if !subscribed[id] {
			continue
		}
		for p := range n {
			if _, ok := seen[TP{id, p}]; !ok {
				t.Fatalf("partition %v/%d unassigned", id, p)
			}
		}
	}
}

func spread(out map[string][]TP, members []AssignMember) (lo, hi int) {
	lo = int(^uint(0) >> 1)
	for _, m := range members {
		lo, hi = min(lo, len(out[m.ID])), max(hi, len(out[m.ID]))
	}
	return lo, hi
}

func withCurrent(members []AssignMember, out map[string][]TP) []AssignMember {
	next := slices.Clone(members)
	for i := range next {
		next[i].Current = out[next[i].ID]
	}
	return next
}

// The uniform assignor balances homogeneous subscriptions exactly, keeps
// a stable assignment as it is, and moves few partitions when a member
// joins or leaves.
func TestUniformAssignor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		topics := map[TopicID]int32{}
		var ids []TopicID
		for i := range 1 + rng.IntN(4) {
			id := topicID(fmt.Sprintf("t%d", i))
			topics[id] = int32(1 + rng.IntN(20))
			ids = append(ids, id)
		}
		var members []AssignMember
		for i := range 1 + rng.IntN(8) {
			members = append(members, AssignMember{ID: fmt.Sprintf("m%02d", i), Topics: ids})
		}
		out := Assign(Uniform, members, topics, nil)
		checkComplete(t, members, topics, out)
		if lo, hi := spread(out, members); hi-lo > 1 {
			t.Fatalf("round %d: counts from %d to %d", round, lo, hi)
		}
		// Stable: the same input with its own result as current.
		again := Assign(Uniform, withCurrent(members, out), topics, nil)
		if !reflect.DeepEqual(normalize(again), normalize(out)) {
			t.Fatalf("round %d: not stable:\n%v\n%v", round, out, again)
		}
		// Member order does not matter.
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Assign(Uniform, shuffled, topics, nil); !reflect.DeepEqual(normalize(got), normalize(out)) {
			t.Fatalf("round %d: depends on member order", round)
		}
		// A new member takes about its share, from the others.
		total := 0
		for _, n := range topics {
			total += int(n)
		}
		grown := append(withCurrent(members, out), AssignMember{ID: "new", Topics: ids})
		next := Assign(Uniform, grown, topics, nil)
		checkComplete(t, grown, topics, next)
		if moved := moves(out, next); moved > total/len(grown)+1 {
			t.Fatalf("round %d: %d partitions moved for a new member's share of %d", round, moved, total/len(grown))
		}
		// A member leaving: only its partitions move.
		if len(members) > 1 {
			shrunk := withCurrent(members[1:], out)
			next := Assign(Uniform, shrunk, topics, nil)
			checkComplete(t, shrunk, topics, next)
			if moved, had := moves(out, next), len(out[members[0].ID]); moved > had+len(shrunk) {
				t.Fatalf("round %d: %d partitions moved after a member with %d left", round, moved, had)
			}
		}
	}
}

// With different subscriptions, every partition still goes to a
// subscriber, and members subscribing to the same topics stay balanced.
func TestUniformAssignorHeterogeneous(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		topics := map[TopicID]int32{}
		var ids []TopicID
		for i := range 2 + rng.IntN(4) {
			id := topicID(fmt.Sprintf("t%d", i))
			topics[id] = int32(1 + rng.IntN(12))
			ids = append(ids, id)
		}
		var members []AssignMember
		for i := range 1 + rng.IntN(6) {
			var sub []TopicID
			for _, id := range ids {
				if rng.IntN(2) == 0 {
					sub = append(sub, id)
				}
			}
			members = append(members, AssignMember{ID: fmt.Sprintf("m%d", i), Topics: sub})
		}
		out := Assign(Uniform, members, topics, nil)
		checkComplete(t, members, topics, out)
		again := Assign(Uniform, withCurrent(members, out), topics, nil)
		if !reflect.DeepEqual(normalize(again), normalize(out)) {
			t.Fatalf("not stable:\n%v\n%v", out, again)
		}
	}
}

func TestRangeAssignor(t *testing.T) {
	a, b := topicID("a"), topicID("b")
	topics := map[TopicID]int32{a: 7, b: 7}
	members := []AssignMember{
		{ID: "m-dyn", Topics: []TopicID{a, b}},
		{ID: "m-1", InstanceID: "z", Topics: []TopicID{a, b}},
		{ID: "m-0", InstanceID: "y", Topics: []TopicID{a, b}},
		{ID: "m-only-a", Topics: []TopicID{a}},
	}
	out := Assign(Range, members, topics, nil)
	checkComplete(t, members, topics, out)
	want := map[string][]TP{
		// a: 7 over 4 members, static first by instance id.
		"m-0":      {{a, 0}, {a, 1}, {b, 0}, {b, 1}, {b, 2}},
		"m-1":      {{a, 2}, {a, 3}, {b, 3}, {b, 4}},
		"m-dyn":    {{a, 4}, {a, 5}, {b, 5}, {b, 6}},
		"m-only-a": {{a, 6}},
	}
	if !reflect.DeepEqual(normalize(out), normalize(want)) {
		t.Fatalf("got %v, want %v", out, want)
	}
}

func normalize(m map[string][]TP) map[string][]TP {
	out := map[string][]TP{}
	for id, tps := range m {
		if len(tps) > 0 {
			s := slices.Clone(tps)
			slices.SortFunc(s, compareTPs)
			out[id] = s
		}
	}
	return out
}

// moves counts partitions whose owner changed.
func moves(before, after map[string][]TP) int {
	owner := map[TP]string{}
	for id, tps := range before {
		for _, tp := range tps {
			owner[tp] = id
		}
	}
	n := 0
	for id, tps := range after {
		for _, tp := range tps {
			if o, ok := owner[tp]; ok && o != id {
				n++
			}
		}
	}
	return n
}

// With racks, both assignors keep their balance and give the partitions
// balance leaves open to members in rack: a member out of rack never has
// more than a member in rack, and gives up its previous partitions when
// a member in rack can take them.
func TestRackAwareAssignors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	racks := []string{"az-a", "az-b"}
	for round := range 300 {
		topics := map[TopicID]int32{}
		var ids []TopicID
		for i := range 1 + rng.IntN(3) {
			id := topicID(fmt.Sprintf("t%d", i))
			topics[id] = int32(1 + rng.IntN(20))
			ids = append(ids, id)
		}
		var members []AssignMember
		for i := range 2 + rng.IntN(6) {
			rack := []string{"az-a", "az-b", "az-c", ""}[rng.IntN(4)]
			members = append(members, AssignMember{ID: fmt.Sprintf("m%02d", i), Rack: rack, Topics: ids})
		}
		members[0].Rack = "az-a" // at least one member in rack
		for _, assignor := range []string{Uniform, Range} {
			// Start from an assignment that ignores racks, as a group
			// does when the racks become known.
			before := Assign(assignor, members, topics, nil)
			out := Assign(assignor, withCurrent(members, before), topics, racks)
			checkComplete(t, members, topics, out)
			if lo, hi := spread(out, members); assignor == Uniform && hi-lo > 1 {
				t.Fatalf("round %d %s: spread %d..%d", round, assignor, lo, hi)
			}
			minIn, maxOut := int(^uint(0)>>1), -1
			for _, m := range members {
				if inRack(m, racks) {
					minIn = min(minIn, len(out[m.ID]))
				} else {
					maxOut = max(maxOut, len(out[m.ID]))
				}
			}
			if maxOut > minIn {
				t.Fatalf("round %d %s: a member out of rack has %d partitions, one in rack %d\n%v", round, assignor, maxOut, minIn, out)
			}
			again := Assign(assignor, withCurrent(members, out), topics, racks)
			if !reflect.DeepEqual(normalize(again), normalize(out)) {
				t.Fatalf("round %d %s: not stable:\n%v\n%v", round, assignor, out, again)
			}
		}
	}
}

// Racks change nothing when no member is in one of them, or when they are
// unknown.
func TestRackAwareWithoutMatch(t *testing.T) {
	a := topicID("a")
	topics := map[TopicID]int32{a: 5}
	members := []AssignMember{
		{ID: "m0", Rack: "az-c", Topics: []TopicID{a}},
		{ID: "m1", Topics: []TopicID{a}},
		{ID: "m2", Rack: "az-b", Topics: []TopicID{a}},
	}
	for _, assignor := range []string{Uniform, Range} {
		plain := Assign(assignor, members, topics, nil)
		if got := Assign(assignor, members, topics, []string{"az-a"}); !reflect.DeepEqual(normalize(got), normalize(plain)) {
			t.Fatalf("%s: racks without a member in them changed %v into %v", assignor, plain, got)
		}
	}
	// With az-b known, m2 (in rack) comes first: it takes the extra
	// partition and, for range, the first range.
	want := map[string]map[string][]TP{
		Uniform: {"m0": {{a, 1}, {a, 4}}, "m1": {{a, 2}}, "m2": {{a, 0}, {a, 3}}},
		Range:   {"m2": {{a, 0}, {a, 1}}, "m0": {{a, 2}, {a, 3}}, "m1": {{a, 4}}},
	}
	for assignor, w := range want {
		if got := Assign(assignor, members, topics, []string{"az-b"}); !reflect.DeepEqual(normalize(got), normalize(w)) {
			t.Fatalf("%s: got %v, want %v", assignor, got, w)
		}
	}
}
