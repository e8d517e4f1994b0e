// Package sharegroup is a share group's membership (KIP-932) as a pure
// state machine: members join, heartbeat, leave or time out, and the
// coordinator assigns them partitions of the topics they subscribe to.
// Unlike a consumer group, a partition may be assigned to several members
// at once, and there is nothing to revoke: share partitions hand each
// record to one member at a time (internal/sharepart), so a member
// starts fetching a partition as soon as it is told. Time is an input;
// nothing here does I/O.
package sharegroup

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
)

// Defaults as Apache Kafka 4.x has them.
const (
	DefaultSessionTimeout    = 45 * time.Second // group.share.session.timeout.ms
	DefaultHeartbeatInterval = 5 * time.Second  // group.share.heartbeat.interval.ms
	DefaultMaxSize           = 200              // group.share.max.size
	// MaxMemberIDLength bounds a client-chosen member id (clients send
	// a UUID's 22 or 36 characters).
	MaxMemberIDLength = 255
	// MaxSubscribedTopics bounds one member's subscription.
	MaxSubscribedTopics = 10_000
)

// Config holds the group's limits and timings.
type Config struct {
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	MaxSize           int
}

// WithDefaults fills zero fields with Kafka's defaults.
func (c Config) WithDefaults() Config {
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	return c
}

type member struct {
	id, rack, clientID, clientHost string
	subscribed                     []string // sorted, unique
	epoch, prevEpoch               int32
	assignment                     consumer.Assignment
	// sent: the member has been told its current assignment.
	sent     bool
	deadline time.Time
}

// Group is one share group's membership.
type Group struct {
	name    string
	cfg     Config
	epoch   int32 // group epoch: bumped when the assignment changes
	members map[string]*member
	// partitions are the partition counts the last assignment saw of
	// every subscribed topic, so a heartbeat notices topics created,
	// deleted or grown.
	partitions map[string]consumer.Topic
	// dirty: something a snapshot holds changed since TakeDirty.
	dirty bool
}

// New makes an empty share group.
func New(name string, cfg Config) *Group {
	return &Group{name: name, cfg: cfg.WithDefaults(), members: map[string]*member{}, partitions: map[string]consumer.Topic{}}
}

// SetConfig applies changed group configs (share.session.timeout.ms,
// share.heartbeat.interval.ms): members' sessions are measured by the new
// timeout from their next heartbeat, and members hear the new interval
// in their next answer.
func (g *Group) SetConfig(cfg Config) { g.cfg = cfg.WithDefaults() }

// Name is the group id.
func (g *Group) Name() string { return g.name }

// Epoch is the group epoch.
func (g *Group) Epoch() int32 { return g.epoch }

// TakeDirty reports whether anything a snapshot holds changed since the
// last call (membership, assignments, the epochs members are known to
// be at, whether they were told their assignment), and clears it. A
// heartbeat that changes nothing but the member's session leaves it
// clear, so a coordinator storing snapshots writes only on changes.
func (g *Group) TakeDirty() bool {
	d := g.dirty
	g.dirty = false
	return d
}

// Len is the number of members.
func (g *Group) Len() int { return len(g.members) }

// HeartbeatRequest is a ShareGroupHeartbeat request.
type HeartbeatRequest struct {
	MemberID    string
	MemberEpoch int32
	RackID      *string
	// SubscribedTopicNames is nil when unchanged.
	SubscribedTopicNames []string
	ClientID, ClientHost string
}

// HeartbeatResponse is a ShareGroupHeartbeat response.
type HeartbeatResponse struct {
	Err               int16
	ErrMessage        string
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is the member's whole assignment; nil when the member
	// already knows it.
	Assignment consumer.Assignment
}

// Heartbeat handles a ShareGroupHeartbeat at now: a join (epoch 0), a
// leave (-1) or a heartbeat at the member's epoch. img is the cluster's
// topics now. changed reports that membership or the assignment changed.
func (g *Group) Heartbeat(now time.Time, img consumer.Image, r HeartbeatRequest) (resp HeartbeatResponse, changed bool) {
	resp = HeartbeatResponse{MemberID: r.MemberID, MemberEpoch: r.MemberEpoch, HeartbeatInterval: g.cfg.HeartbeatInterval}
	fail := func(code int16, msg string) (HeartbeatResponse, bool) {
		resp.Err, resp.ErrMessage = code, msg
		return resp, changed
	}
	switch {
	case r.MemberID == "":
		return fail(kerr.InvalidRequest.Code, "MemberId can't be empty.")
	case len(r.MemberID) > MaxMemberIDLength:
		return fail(kerr.InvalidRequest.Code, "MemberId is too long.")
	case r.MemberEpoch < -1:
		return fail(kerr.InvalidRequest.Code, "MemberEpoch is invalid.")
	case r.MemberEpoch == 0 && len(r.SubscribedTopicNames) == 0:
		return fail(kerr.InvalidRequest.Code, "SubscribedTopicNames must be set in first request.")
	case len(r.SubscribedTopicNames) > MaxSubscribedTopics:
		return fail(kerr.InvalidRequest.Code, "Too many SubscribedTopicNames.")
	}
	m := g.members[r.MemberID]
	switch {
	case r.MemberEpoch == -1:
		if m == nil {
			return fail(kerr.UnknownMemberID.Code, "")
		}
		g.remove(m)
		g.reassign(img)
		resp.MemberEpoch = -1
		g.dirty = true
		return resp, true
	case r.MemberEpoch == 0:
		if m == nil {
			if len(g.members) >= g.cfg.MaxSize {
				return fail(kerr.GroupMaxSizeReached.Code, "")
			}
			m = &member{id: r.MemberID}
			g.members[m.id] = m
			changed = true
		}
		// A member that joins again (its last answer was lost) is
		// told its whole assignment.
		m.sent = false
	case m == nil:
		return fail(kerr.UnknownMemberID.Code, "")
	case r.MemberEpoch != m.epoch && r.MemberEpoch != m.prevEpoch:
		return fail(kerr.FencedMemberEpoch.Code, "")
	case r.MemberEpoch != m.epoch:
		// The answer that moved the member to its epoch was lost.
		m.sent = false
	}
	before := *m
	if r.MemberEpoch > 0 {
		// The member is at this epoch: should the answer be lost, its
		// next heartbeat carries it again.
		m.prevEpoch = r.MemberEpoch
	}
	m.deadline = now.Add(g.cfg.SessionTimeout)
	m.clientID, m.clientHost = r.ClientID, r.ClientHost
	if r.RackID != nil {
		m.rack = *r.RackID
	}
	defer func() {
		if changed || m.prevEpoch != before.prevEpoch || m.sent != before.sent || m.clientID != before.clientID ||
			m.clientHost != before.clientHost || m.rack != before.rack {
			g.dirty = true
		}
	}()
	if r.SubscribedTopicNames != nil {
		subs := slices.Clone(r.SubscribedTopicNames)
		slices.Sort(subs)
		subs = slices.Compact(subs)
		if !slices.Equal(subs, m.subscribed) {
			m.subscribed = subs
			changed = true
		}
		m.sent = false // a full request gets the whole assignment
	}
	if changed || g.topicsChanged(img) {
		changed = g.reassign(img) || changed
	}
	resp.MemberEpoch = m.epoch
	if !m.sent {
		resp.Assignment = m.assignment
		if resp.Assignment == nil {
			resp.Assignment = consumer.Assignment{}
		}
		m.sent = true
	}
	return resp, changed
}

// topicsChanged reports whether a subscribed topic appeared, went or
// changed its partition count since the last assignment.
func (g *Group) topicsChanged(img consumer.Image) bool {
	seen := 0
	for _, name := range g.subscribedTopics() {
		t, ok := img.Topic(name)
		old, had := g.partitions[name]
		if ok != had || ok && t != old {
			return true
		}
		if ok {
			seen++
		}
	}
	return seen != len(g.partitions)
}

func (g *Group) subscribedTopics() []string {
	var names []string
	for _, m := range g.members {
		names = append(names, m.subscribed...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (g *Group) remove(m *member) { delete(g.members, m.id) }

// reassign computes every member's assignment; members whose assignment
// changed move to a new group epoch and are told at their next
// heartbeat. It reports whether any assignment changed.
func (g *Group) reassign(img consumer.Image) bool {
	g.partitions = map[string]consumer.Topic{}
	for _, name := range g.subscribedTopics() {
		if t, ok := img.Topic(name); ok {
			g.partitions[name] = t
		}
	}
	next := assign(g.sortedMembers(), g.partitions)
	changed := false
	for _, m := range g.sortedMembers() {
		a := next[m.id]
		if m.assignment != nil && sameAssignment(a, m.assignment) {
			continue
		}
		if !changed {
			g.epoch++
			changed = true
		}
		// The member stays at the last epoch it was told until it hears
		// of the new one: changes it has not heard of yet (members
		// joining one after another between two of its heartbeats) must
		// not fence it.
		if m.sent {
			m.prevEpoch = m.epoch
		}
		m.epoch = g.epoch
		m.assignment = a
		m.sent = false
	}
	return changed
}

func (g *Group) sortedMembers() []*member {
	ms := slices.Collect(maps.Values(g.members))
	slices.SortFunc(ms, func(a, b *member) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return ms
}

func sameAssignment(a, b consumer.Assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for id, ps := range a {
		if !slices.Equal(ps, b[id]) {
			return false
		}
	}
	return true
}

// assign is the simple share assignor: each topic's partitions are spread
// over the members subscribed to it, round robin. With fewer members than
// partitions every partition has one member; with more, every member has
// one partition and every partition about members/partitions members.
// Topics are rotated by their position so that single-partition topics do
// not all land on the first member.
func assign(members []*member, topics map[string]consumer.Topic) map[string]consumer.Assignment {
	out := make(map[string]consumer.Assignment, len(members))
	for _, m := range members {
		out[m.id] = consumer.Assignment{}
	}
	names := slices.Sorted(maps.Keys(topics))
	for ti, name := range names {
		t := topics[name]
		var subs []*member
		for _, m := range members {
			if _, ok := slices.BinarySearch(m.subscribed, name); ok {
				subs = append(subs, m)
			}
		}
		n, p := len(subs), int(t.Partitions)
		if n == 0 || p <= 0 {
			continue
		}
		if n <= p {
			for part := range p {
				m := subs[(part+ti)%n]
				out[m.id][t.ID] = append(out[m.id][t.ID], int32(part))
			}
			continue
		}
		for i, m := range subs {
			out[m.id][t.ID] = append(out[m.id][t.ID], int32((i+ti)%p))
		}
	}
	for _, a := range out {
		for id := range a {
			slices.Sort(a[id])
		}
	}
	return out
}

// NextDeadline is the earliest session deadline, zero with no members.
func (g *Group) NextDeadline() time.Time {
	var next time.Time
	for _, m := range g.members {
		if next.IsZero() || m.deadline.Before(next) {
			next = m.deadline
		}
	}
	return next
}

// Tick removes the members whose session expired by now and reassigns.
// It returns the removed member ids, sorted.
func (g *Group) Tick(now time.Time, img consumer.Image) []string {
	var gone []string
	for _, m := range g.sortedMembers() {
		if !m.deadline.After(now) {
			g.remove(m)
			gone = append(gone, m.id)
		}
	}
	if len(gone) > 0 {
		g.reassign(img)
		g.dirty = true
	}
	return gone
}

// IsMember reports whether id is a member, for ShareFetch and
// ShareAcknowledge, which Kafka answers UNKNOWN_MEMBER_ID otherwise.
func (g *Group) IsMember(id string) bool { return g.members[id] != nil }

// Assigned reports whether member id is assigned the partition.
func (g *Group) Assigned(id string, topic consumer.TopicID, partition int32) bool {
	m := g.members[id]
	return m != nil && slices.Contains(m.assignment[topic], partition)
}

// MemberDescription is what ShareGroupDescribe shows of a member.
type MemberDescription struct {
	MemberID, RackID, ClientID, ClientHost string
	MemberEpoch                            int32
	SubscribedTopicNames                   []string
	Assignment                             consumer.Assignment
}

// The states a share group is in (as ListGroups and ShareGroupDescribe
// name them).
const (
	StateEmpty  = "Empty"
	StateStable = "Stable"
)

// Description is what ShareGroupDescribe shows of the group.
type Description struct {
	State           string // Empty or Stable
	GroupEpoch      int32
	AssignmentEpoch int32
	Members         []MemberDescription
}

// Describe describes the group, members sorted by id.
func (g *Group) Describe() Description {
	d := Description{State: StateEmpty, GroupEpoch: g.epoch, AssignmentEpoch: g.epoch}
	if len(g.members) > 0 {
		d.State = StateStable
	}
	for _, m := range g.sortedMembers() {
		d.Members = append(d.Members, MemberDescription{
			MemberID: m.id, RackID: m.rack, ClientID: m.clientID, ClientHost: m.clientHost,
			MemberEpoch: m.epoch, SubscribedTopicNames: slices.Clone(m.subscribed), Assignment: m.assignment,
		})
	}
	return d
}
