package consumer

import (
	"cmp"
	"slices"
)

// The server-side assignors (group.consumer.assignors).
const (
	// Uniform spreads partitions evenly over the members, keeping each
	// partition with its previous owner when balance allows (KIP-848's
	// default; franz-go asks for it with its sticky balancers).
	Uniform = "uniform"
	// Range gives each member a contiguous range of every topic it
	// subscribes to, so co-partitioned topics land together (franz-go
	// asks for it with its range balancer).
	Range = "range"
)

// AssignMember is a member as an assignor sees it.
type AssignMember struct {
	ID         string
	InstanceID string    // "" for a dynamic member
	Rack       string    // the member's RackId, "" when it sent none
	Topics     []TopicID // subscribed topics that exist
	Current    []TP      // its previous target, for stickiness
}

// Rack awareness. Kafka takes a partition's racks from its replicas'
// brokers and prefers to give a partition to a member in one of them, so
// that the member reads it without crossing zones. In Floe every agent
// serves every partition and each zone's agents read the bucket through
// their own block ring, so every partition can be read in every zone
// that has a live agent: those zones are the racks of every partition
// (Image.Racks). A member whose RackId is one of them is "in rack" for
// all partitions; one whose RackId names a zone without agents (or that
// sent none) is not. Balance comes first: rack awareness only decides
// which members take the partitions that balance leaves open: members in
// rack get the extra partitions, and a member out of rack holding more
// than a member in rack hands one over. A change of the racks bumps the
// group epoch (Group.racks).

// inRack reports whether m is in one of racks. It is false when racks or
// m's rack are unknown.
func inRack(m AssignMember, racks []string) bool {
	return m.Rack != "" && slices.Contains(racks, m.Rack)
}

// rackAware reports whether rack awareness applies: the partitions' racks
// are known and at least one member is in one of them (otherwise no
// member is preferred to another).
func rackAware(members []AssignMember, racks []string) bool {
	if len(racks) == 0 {
		return false
	}
	for _, m := range members {
		if inRack(m, racks) {
			return true
		}
	}
	return false
}

// Assign runs the named assignor over members and topics (topic id →
// partition count); racks are the racks every partition can be read in
// (nil: unknown, no rack awareness). Every partition of a topic some member subscribes to
// goes to exactly one member that subscribes to it; a member without
// partitions is absent from the result. It is a pure function:
// deterministic for a given input, whatever the order of members.
func Assign(assignor string, members []AssignMember, topics map[TopicID]int32, racks []string) map[string][]TP {
	if !rackAware(members, racks) {
		racks = nil
	}
	var out map[string][]TP
	switch assignor {
	case Range:
		out = assignRange(members, topics, racks)
	default:
		out = assignUniform(members, topics, racks)
	}
	for id, tps := range out {
		if len(tps) == 0 {
			delete(out, id)
			continue
		}
		slices.SortFunc(tps, compareTPs)
	}
	return out
}

// subscriptions indexes which members subscribe to which topic, members
// being given by their position in a sorted slice.
func subscriptions(members []AssignMember, topics map[TopicID]int32) (sorted []AssignMember, eligible map[TopicID][]int, all []TP) {
	sorted = slices.Clone(members)
	slices.SortFunc(sorted, func(a, b AssignMember) int { return cmp.Compare(a.ID, b.ID) })
	eligible = map[TopicID][]int{}
	for i, m := range sorted {
		for _, t := range m.Topics {
			if _, ok := topics[t]; ok && !slices.Contains(eligible[t], i) {
				eligible[t] = append(eligible[t], i)
			}
		}
	}
	for t, n := range topics {
		if len(eligible[t]) == 0 {
			continue
		}
		for p := range n {
			all = append(all, TP{Topic: t, Partition: p})
		}
	}
	slices.SortFunc(all, compareTPs)
	return sorted, eligible, all
}

// assignUniform balances partition counts (no member has two more than
// another, when subscriptions allow it) and moves as few partitions as it
// can: each member first keeps what its previous target gave it, then
// unowned partitions go to the least loaded eligible members, then
// partitions move from the most to the least loaded members while that
// narrows the gap. With racks, ties between equally loaded members go to
// members in rack, and then a partition moves from a member out of rack
// to an eligible member in rack with fewer partitions, while there is
// one: balance is kept (the two counts swap), the members in rack end
// with the larger shares, and a member out of rack keeps its partitions
// when no member in rack has fewer.
func assignUniform(members []AssignMember, topics map[TopicID]int32, racks []string) map[string][]TP {
	sorted, eligible, all := subscriptions(members, topics)
	in := make([]bool, len(sorted))
	for i, m := range sorted {
		in[i] = inRack(m, racks)
	}
	owned := make([]map[TP]struct{}, len(sorted))
	taken := map[TP]bool{}
	for i, m := range sorted {
		owned[i] = map[TP]struct{}{}
		for _, tp := range m.Current {
			n, exists := topics[tp.Topic]
			if !exists || tp.Partition >= n || taken[tp] || !slices.Contains(eligible[tp.Topic], i) {
				continue
			}
			owned[i][tp] = struct{}{}
			taken[tp] = true
		}
	}
	// leastLoaded is the eligible member with the fewest partitions, on
	// ties the first in rack, then the first in id order; -1 if none is
	// below limit.
	leastLoaded := func(tp TP, limit int) int {
		best := -1
		for _, i := range eligible[tp.Topic] {
			if len(owned[i]) >= limit {
				continue
			}
			if best < 0 || len(owned[i]) < len(owned[best]) || (len(owned[i]) == len(owned[best]) && in[i] && !in[best]) {
				best = i
			}
		}
		return best
	}
	const noLimit = int(^uint(0) >> 1)
	for _, tp := range all {
		if taken[tp] {
			continue
		}
		if i := leastLoaded(tp, noLimit); i >= 0 {
			owned[i][tp] = struct{}{}
			taken[tp] = true
		}
	}
	// Balance: move a partition from a most loaded member to an eligible
	// member with at least two fewer. Each move lowers the sum of squared
	// counts, so the loop ends.
	order := make([]int, len(sorted))
	for {
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(owned[b]), len(owned[a])) })
		moved := false
		for _, from := range order {
			tps := make([]TP, 0, len(owned[from]))
			for tp := range owned[from] {
				tps = append(tps, tp)
			}
			// Move the highest partitions first, so that what stays
			// put is the same whatever the map order.
			slices.SortFunc(tps, func(a, b TP) int { return compareTPs(b, a) })
			for _, tp := range tps {
				if to := leastLoaded(tp, len(owned[from])-1); to >= 0 {
					delete(owned[from], tp)
					owned[to][tp] = struct{}{}
					moved = true
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			break
		}
	}
	if racks != nil {
		rackPass(sorted, eligible, owned, in)
	}
	out := make(map[string][]TP, len(sorted))
	for i, m := range sorted {
		for tp := range owned[i] {
			out[m.ID] = append(out[m.ID], tp)
		}
	}
	return out
}

// rackPass moves partitions from members out of rack to eligible members
// in rack holding fewer, one at a time: the most loaded member out of
// rack (first in id order) gives its highest partition that a member in
// rack with fewer partitions may take, to the least loaded of them. Each
// move lowers the partitions held out of rack by one, so the loop ends.
func rackPass(sorted []AssignMember, eligible map[TopicID][]int, owned []map[TP]struct{}, in []bool) {
	for {
		order := make([]int, 0, len(sorted))
		for i := range sorted {
			if !in[i] && len(owned[i]) > 0 {
				order = append(order, i)
			}
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(owned[b]), len(owned[a])) })
		moved := false
		for _, from := range order {
			tps := make([]TP, 0, len(owned[from]))
			for tp := range owned[from] {
				tps = append(tps, tp)
			}
			slices.SortFunc(tps, func(a, b TP) int { return compareTPs(b, a) })
			for _, tp := range tps {
				to := -1
				for _, i := range eligible[tp.Topic] {
					if in[i] && len(owned[i]) < len(owned[from]) && (to < 0 || len(owned[i]) < len(owned[to])) {
						to = i
					}
				}
				if to >= 0 {
					delete(owned[from], tp)
					owned[to][tp] = struct{}{}
					moved = true
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			return
		}
	}
}

// assignRange gives, for each topic, the members subscribing to it
// contiguous ranges of partitions, the first members one more when the
// count does not divide. Static members come first, by instance id, so
// that a static member that restarts gets the same range; then dynamic
// members by member id. With racks, members in rack come before those
// out of rack, so that they take the larger ranges and members out of
// rack only what is left; the order is the same for every topic, so
// co-partitioned topics still land together.
func assignRange(members []AssignMember, topics map[TopicID]int32, racks []string) map[string][]TP {
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b AssignMember) int {
		if ia, ib := inRack(a, racks), inRack(b, racks); ia != ib {
			if ia {
				return -1
			}
			return 1
		}
		switch {
		case a.InstanceID != "" && b.InstanceID == "":
			return -1
		case a.InstanceID == "" && b.InstanceID != "":
			return 1
		}
		if c := cmp.Compare(a.InstanceID, b.InstanceID); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	out := map[string][]TP{}
	for t, n := range topics {
		var subs []string
		for _, m := range sorted {
			if slices.Contains(m.Topics, t) {
				subs = append(subs, m.ID)
			}
		}
		if len(subs) == 0 {
			continue
		}
		quota, extra := int(n)/len(subs), int(n)%len(subs)
		next := int32(0)
		for i, id := range subs {
			size := quota
			if i < extra {
				size++
			}
			for range size {
				out[id] = append(out[id], TP{Topic: t, Partition: next})
				next++
			}
		}
	}
	return out
}
