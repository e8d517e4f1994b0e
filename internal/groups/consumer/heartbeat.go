package consumer

import (
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// HeartbeatRequest is a ConsumerGroupHeartbeat. Nil pointers, slices and
// maps mean the member did not send the field: it is unchanged.
type HeartbeatRequest struct {
	Version              int16 // v1+: the member chooses its id
	MemberID             string
	MemberEpoch          int32
	InstanceID           *string
	RackID               *string
	RebalanceTimeout     time.Duration // negative: unchanged
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	ServerAssignor       *string
	// Owned are the partitions the member holds (the request's
	// TopicPartitions).
	Owned      Assignment
	ClientID   string
	ClientHost string
}

// full reports a request that carries the member's whole state, which is
// answered with its whole assignment.
func (r HeartbeatRequest) full() bool {
	return r.RebalanceTimeout >= 0 && (r.SubscribedTopicNames != nil || r.SubscribedTopicRegex != nil) && r.Owned != nil
}

// HeartbeatResponse is a ConsumerGroupHeartbeat response.
type HeartbeatResponse struct {
	Err               int16
	ErrMessage        string
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is the member's whole assignment; nil when not sent
	// (nothing changed).
	Assignment Assignment
}

// Heartbeat handles a ConsumerGroupHeartbeat: a join (epoch 0), a leave
// (-1, or -2 for a static member that comes back), or a regular heartbeat
// that reports the partitions the member holds and receives the next step
// of its reconciliation. img is the cluster's topics now.
func (g *Group) Heartbeat(now time.Time, img Image, r HeartbeatRequest) (HeartbeatResponse, Effects) {
	var e Effects
	resp := HeartbeatResponse{MemberID: r.MemberID, MemberEpoch: r.MemberEpoch, HeartbeatInterval: g.cfg.HeartbeatInterval}
	fail := func(code int16, msg string) (HeartbeatResponse, Effects) {
		resp.Err, resp.ErrMessage = code, msg
		return resp, e
	}
	if g.dead {
		return fail(kerr.CoordinatorNotAvailable.Code, "")
	}
	if code, msg := g.validate(r); code != 0 {
		return fail(code, msg)
	}
	if r.MemberEpoch < 0 {
		return g.leave(now, r, resp)
	}

	var m *member
	var joined, replaced bool
	var code int16
	var msg string
	if r.MemberEpoch == 0 {
		m, joined, replaced, code, msg = g.join(r)
	} else {
		m, code, msg = g.current(r)
	}
	if code != 0 {
		return fail(code, msg)
	}
	resp.MemberID = m.id
	subscriptionChanged, dirty := g.update(m, r)
	e.Persist = dirty || joined || replaced

	// One bump for whatever changed: the member set, its subscription,
	// the metadata of the subscribed topics, or the partitions' racks
	// when a member has a rack that they may matter to.
	metadataChanged := g.refreshSubscriptions(img)
	racksChanged := !slices.Equal(img.Racks, g.racks) && g.anyRack()
	if joined || subscriptionChanged || metadataChanged || racksChanged {
		g.epoch++
		e.Persist = true
	}
	if g.epoch > g.assignmentEpoch {
		g.computeTarget(img.Racks)
		e.Persist = true
	}
	before := maps.Clone(m.assigned)
	if g.reconcile(now, m, r.Owned) {
		e.Persist = true
	}
	g.touch(now, m)

	resp.MemberEpoch = m.epoch
	if r.MemberEpoch == 0 || r.full() || !sameKeys(before, m.assigned) {
		resp.Assignment = toAssignment(m.assigned)
	}
	return resp, e
}

// validate applies KIP-848's rules for request fields. The leave epochs
// are accepted without an instance id (Kafka asks for one with -2; a
// static member is also found by its member id).
func (g *Group) validate(r HeartbeatRequest) (int16, string) {
	invalid := kerr.InvalidRequest.Code
	switch {
	case r.InstanceID != nil && *r.InstanceID == "":
		return invalid, "InstanceId can't be empty."
	case r.RackID != nil && *r.RackID == "":
		return invalid, "RackId can't be empty."
	case r.MemberEpoch < StaticLeaveEpoch:
		return invalid, "MemberEpoch is invalid."
	case r.MemberID == "" && (r.Version >= 1 || r.MemberEpoch != 0):
		return invalid, "MemberId can't be empty."
	}
	if r.MemberEpoch == 0 {
		switch {
		case r.RebalanceTimeout < 0:
			return invalid, "RebalanceTimeoutMs must be provided in first request."
		case r.Owned == nil || r.Owned.Len() > 0:
			return invalid, "TopicPartitions must be empty when (re-)joining."
		case r.SubscribedTopicNames == nil && r.SubscribedTopicRegex == nil:
			return invalid, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."
		}
	}
	if r.ServerAssignor != nil && !slices.Contains(g.cfg.Assignors, *r.ServerAssignor) {
		return kerr.UnsupportedAssignor.Code, "ServerAssignor " + *r.ServerAssignor + " is not supported."
	}
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
		if _, err := regexp.Compile(*r.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression.Code, "SubscribedTopicRegex " + *r.SubscribedTopicRegex + " is not a valid regular expression: " + err.Error()
		}
	}
	return 0, ""
}

// join finds or creates the member of a heartbeat with epoch 0. A member
// that rejoins with its id keeps its place and its partitions (the
// response hands them back: this is how a member recovers from a lost
// response or a fenced epoch). A static member that left with epoch -2 is
// replaced by the new member with its instance id, which takes over its
// assignment without a rebalance.
func (g *Group) join(r HeartbeatRequest) (m *member, joined, replaced bool, code int16, msg string) {
	id := r.MemberID
	if id == "" { // v0: the coordinator chooses
		id = g.newMemberID()
	}
	if r.InstanceID != nil {
		if oldID, ok := g.static[*r.InstanceID]; ok && oldID != id {
			old := g.members[oldID]
			if old.epoch != StaticLeaveEpoch {
				return nil, false, false, kerr.UnreleasedInstanceID.Code, "Static member with instance id " + *r.InstanceID + " is not released yet."
			}
			return g.replace(old, id), false, true, 0, ""
		}
	}
	if m := g.members[id]; m != nil {
		if m.classic != nil {
			return nil, false, false, kerr.UnknownMemberID.Code, "member " + id + " uses the classic protocol"
		}
		if r.InstanceID != nil && *r.InstanceID != m.instanceID {
			return nil, false, false, kerr.FencedInstanceID.Code, "member " + id + " joined with another instance id"
		}
		return m, false, false, 0, ""
	}
	if g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize {
		return nil, false, false, kerr.GroupMaxSizeReached.Code, "the group reached group.consumer.max.size"
	}
	m = &member{id: id, assigned: map[TP]int32{}, pending: map[TP]int32{}}
	if r.InstanceID != nil {
		m.instanceID = *r.InstanceID
		g.static[m.instanceID] = id
	}
	g.members[id] = m
	return m, true, false, 0, ""
}

// replace puts a new member id in the place of a static member that left
// temporarily: it keeps the assignment, target and subscription.
func (g *Group) replace(old *member, id string) *member {
	m := *old
	m.id = id
	m.epoch, m.previousEpoch, m.state = 0, 0, memberStable
	m.rebalanceDeadline = time.Time{}
	m.assigned, m.pending = nil, nil
	assigned := old.assigned
	g.setOwned(old, nil, nil)
	delete(g.members, old.id)
	g.members[id] = &m
	g.static[m.instanceID] = id
	if t, ok := g.target[old.id]; ok {
		delete(g.target, old.id)
		g.target[id] = t
	}
	g.setOwned(&m, assigned, nil)
	return &m
}

// current finds the member of a regular heartbeat and checks its epoch:
// a member ahead of the coordinator, or behind it other than by the one
// epoch whose response may have been lost, is fenced.
func (g *Group) current(r HeartbeatRequest) (*member, int16, string) {
	if r.InstanceID != nil {
		id, ok := g.static[*r.InstanceID]
		if !ok {
			return nil, kerr.UnknownMemberID.Code, "instance id " + *r.InstanceID + " is unknown"
		}
		if id != r.MemberID {
			return nil, kerr.FencedInstanceID.Code, "instance id " + *r.InstanceID + " belongs to another member"
		}
	}
	m := g.members[r.MemberID]
	if m == nil || m.classic != nil {
		return nil, kerr.UnknownMemberID.Code, "member " + r.MemberID + " is unknown"
	}
	switch {
	case r.MemberEpoch > m.epoch:
		return nil, kerr.FencedMemberEpoch.Code, "the member epoch is ahead of the coordinator's; rejoin"
	case r.MemberEpoch < m.epoch:
		// The response that moved the member to its epoch may have been
		// lost: its previous epoch is accepted if it holds nothing it
		// was not given.
		if r.MemberEpoch != m.previousEpoch || r.Owned == nil || !subset(r.Owned, m.assigned) {
			return nil, kerr.FencedMemberEpoch.Code, "the member epoch is behind the coordinator's; rejoin"
		}
	}
	return m, 0, ""
}

// update copies the request's fields into the member. subscription
// reports a change that needs a new target assignment; dirty any change
// worth persisting.
func (g *Group) update(m *member, r HeartbeatRequest) (subscription, dirty bool) {
	set := func(dst *string, v string) {
		if *dst != v {
			*dst, dirty = v, true
		}
	}
	if r.RackID != nil {
		set(&m.rackID, *r.RackID)
	}
	set(&m.clientID, r.ClientID)
	set(&m.clientHost, r.ClientHost)
	if r.RebalanceTimeout >= 0 && r.RebalanceTimeout != m.rebalanceTimeout {
		m.rebalanceTimeout, dirty = r.RebalanceTimeout, true
	}
	if r.ServerAssignor != nil && *r.ServerAssignor != m.serverAssignor {
		m.serverAssignor, subscription = *r.ServerAssignor, true
	}
	if r.SubscribedTopicNames != nil {
		names := slices.Compact(slices.Sorted(slices.Values(r.SubscribedTopicNames)))
		if !slices.Equal(names, m.topicNames) {
			m.topicNames, subscription = names, true
		}
	}
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != m.regex {
		m.regex, m.re, subscription = *r.SubscribedTopicRegex, nil, true
		if m.regex != "" {
			m.re, _ = compileRegex(m.regex) // validated
		}
	}
	return subscription, dirty || subscription
}

// refreshSubscriptions records the metadata of the topics members
// subscribe to, and reports a change (a subscribed topic created, deleted,
// re-created or given more partitions).
func (g *Group) refreshSubscriptions(img Image) bool {
	next := map[string]Topic{}
	var regexes []*regexp.Regexp
	for _, m := range g.members {
		for _, name := range m.topicNames {
			if t, ok := img.Topic(name); ok {
				next[name] = t
			}
		}
		if m.re != nil {
			regexes = append(regexes, m.re)
		}
	}
	if len(regexes) > 0 {
		for _, name := range img.names {
			if _, ok := next[name]; ok {
				continue
			}
			for _, re := range regexes {
				if re.MatchString(name) {
					next[name] = img.byName[name]
					break
				}
			}
		}
	}
	if maps.Equal(next, g.subscribed) {
		return false
	}
	g.subscribed = next
	return true
}

// anyRack reports whether a member sent a RackId.
func (g *Group) anyRack() bool {
	for _, m := range g.members {
		if m.rackID != "" {
			return true
		}
	}
	return false
}

// computeTarget runs the group's assignor for the group epoch; racks are
// the racks every partition can be read in.
func (g *Group) computeTarget(racks []string) {
	g.assignor = g.chooseAssignor()
	g.racks = slices.Clone(racks)
	partitions := make(map[TopicID]int32, len(g.subscribed))
	for _, t := range g.subscribed {
		partitions[t.ID] = t.Partitions
	}
	in := make([]AssignMember, 0, len(g.members))
	for _, id := range g.memberIDs() {
		m := g.members[id]
		am := AssignMember{ID: id, InstanceID: m.instanceID, Rack: m.rackID}
		for name, t := range g.subscribed {
			if m.subscribedTo(name) {
				am.Topics = append(am.Topics, t.ID)
			}
		}
		slices.SortFunc(am.Topics, compareIDs)
		for tp := range g.target[id] {
			am.Current = append(am.Current, tp)
		}
		slices.SortFunc(am.Current, compareTPs)
		in = append(in, am)
	}
	g.target = map[string]map[TP]struct{}{}
	for id, tps := range Assign(g.assignor, in, partitions, racks) {
		set := make(map[TP]struct{}, len(tps))
		for _, tp := range tps {
			set[tp] = struct{}{}
		}
		g.target[id] = set
	}
	g.assignmentEpoch = g.epoch
}

// chooseAssignor picks the assignor most members ask for; ties go to the
// first in the configured order, and a group where nobody asks uses the
// first configured (uniform by default).
func (g *Group) chooseAssignor() string {
	votes := map[string]int{}
	for _, m := range g.members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	best := g.cfg.Assignors[0]
	for _, a := range g.cfg.Assignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// reconcile moves a member one step towards its target assignment and
// reports whether its epoch, state or partitions changed. owned are the
// partitions the member reports holding, nil if it did not say.
func (g *Group) reconcile(now time.Time, m *member, owned Assignment) bool {
	switch m.state {
	case memberStable:
		if m.epoch == g.assignmentEpoch {
			return false
		}
	case memberUnrevoked:
		// Until the member stops reporting the revoked partitions it
		// stays where it is (a heartbeat without owned partitions says
		// nothing, so they count as still held).
		if owned == nil || ownsAny(owned, m.pending) {
			return false
		}
	case memberUnreleased:
		// Partitions it waits for may have been released.
	}
	return g.advance(now, m, owned)
}

// advance computes a member's next assignment, as Kafka's
// CurrentAssignmentBuilder does:
//
//   - partitions it holds outside its target are revoked first: it keeps
//     the rest and its epoch, and waits in the unrevoked state;
//   - otherwise it moves to the assignment epoch with what it keeps plus
//     every partition of its target nobody else holds, waiting in the
//     unreleased state if some are still held elsewhere.
func (g *Group) advance(now time.Time, m *member, owned Assignment) bool {
	target := g.target[m.id]
	keep, revoke := map[TP]int32{}, map[TP]int32{}
	for tp, epoch := range m.assigned {
		if _, ok := target[tp]; ok {
			keep[tp] = epoch
		} else {
			revoke[tp] = epoch
		}
	}
	var add []TP
	unreleased := false
	for tp := range target {
		if _, ok := m.assigned[tp]; ok {
			continue
		}
		if o := g.owner[tp]; o == "" || o == m.id {
			add = append(add, tp)
		} else {
			unreleased = true
		}
	}
	prevEpoch, prevState := m.epoch, m.state
	prevAssigned, prevPending := m.assigned, m.pending

	if len(revoke) > 0 && (owned == nil || ownsAny(owned, revoke)) {
		if m.state != memberUnrevoked || !sameKeys(m.pending, revoke) {
			m.rebalanceDeadline = now.Add(m.rebalanceTimeout)
		}
		m.state = memberUnrevoked
		g.setOwned(m, keep, revoke)
	} else {
		for _, tp := range add {
			keep[tp] = g.assignmentEpoch
		}
		if m.epoch != g.assignmentEpoch {
			m.previousEpoch, m.epoch = m.epoch, g.assignmentEpoch
		}
		m.state = memberStable
		if unreleased {
			m.state = memberUnreleased
		}
		m.rebalanceDeadline = time.Time{}
		g.setOwned(m, keep, nil)
	}
	return m.epoch != prevEpoch || m.state != prevState || !maps.Equal(m.assigned, prevAssigned) || !maps.Equal(m.pending, prevPending)
}

// leave handles the leave epochs: -1 removes the member; -2 keeps a
// static member's place and partitions for its session timeout, so that
// the same instance id can come back without a rebalance.
func (g *Group) leave(now time.Time, r HeartbeatRequest, resp HeartbeatResponse) (HeartbeatResponse, Effects) {
	var e Effects
	if r.InstanceID != nil {
		id, ok := g.static[*r.InstanceID]
		switch {
		case !ok:
			resp.Err = kerr.UnknownMemberID.Code
			return resp, e
		case id != r.MemberID:
			resp.Err = kerr.FencedInstanceID.Code
			return resp, e
		}
	}
	m := g.members[r.MemberID]
	if m == nil || m.classic != nil {
		resp.Err = kerr.UnknownMemberID.Code
		return resp, e
	}
	e.Persist = true
	if r.MemberEpoch == StaticLeaveEpoch && m.instanceID != "" {
		if m.epoch != StaticLeaveEpoch {
			m.previousEpoch = m.epoch
		}
		m.epoch, m.state = StaticLeaveEpoch, memberStable
		m.rebalanceDeadline = time.Time{}
		m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
		g.setOwned(m, m.assigned, nil) // what it was revoking is free
		return resp, e
	}
	before := g.epoch
	g.remove(m)
	e.Downgrade = g.shouldDowngrade(before)
	return resp, e
}

func ownsAny(owned Assignment, set map[TP]int32) bool {
	for tp := range set {
		if owned.has(tp) {
			return true
		}
	}
	return false
}

func subset(owned Assignment, set map[TP]int32) bool {
	for t, ps := range owned {
		for _, p := range ps {
			if _, ok := set[TP{Topic: t, Partition: p}]; !ok {
				return false
			}
		}
	}
	return true
}

func sameKeys(a, b map[TP]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
