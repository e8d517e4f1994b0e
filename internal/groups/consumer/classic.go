package consumer

// Classic members in a consumer group (KIP-848's online migration).
//
// A consumer group may hold members that speak the classic protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup): members of a classic
// group that was upgraded when a ConsumerGroupHeartbeat joined it, and
// classic consumers that join it afterwards. As in Kafka's group
// coordinator, they are members like the others for the server-side
// assignor and for reconciliation, with these differences:
//
//   - their subscription (topics, owned partitions, rack) comes from the
//     ConsumerProtocol subscription of the first protocol of their
//     JoinGroup, and they are reconciled only when they (re)join;
//   - JoinGroup is answered at once with the member epoch as generation
//     and no leader (the member is a follower); SyncGroup returns the
//     member's assigned partitions encoded as a ConsumerProtocol
//     assignment;
//   - Heartbeat answers REBALANCE_IN_PROGRESS when the member must rejoin:
//     the group epoch moved past its epoch, it has partitions to revoke,
//     or partitions it waits for were released; it must then rejoin
//     within its rebalance timeout, and sync within it after a join;
//   - their own session timeout (from JoinGroup) applies.
//
// The group converts back to a classic group (ToClassic) when the last
// member using the consumer protocol leaves or is removed, only classic
// members remain and the migration policy allows downgrades
// (Effects.Downgrade).

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/groups"
)

// MigrationPolicy is group.consumer.migration.policy: which online
// conversions between the classic and the consumer protocol are allowed
// for groups with members.
type MigrationPolicy int

// The migration policies. The zero value is Kafka 4's default.
const (
	MigrateBidirectional MigrationPolicy = iota
	MigrateUpgrade
	MigrateDowngrade
	MigrateDisabled
)

var policyNames = [...]string{"bidirectional", "upgrade", "downgrade", "disabled"}

func (p MigrationPolicy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParseMigrationPolicy reads a policy by Kafka's name (case-insensitive).
func ParseMigrationPolicy(s string) (MigrationPolicy, bool) {
	i := slices.Index(policyNames[:], strings.ToLower(s))
	return MigrationPolicy(i), i >= 0
}

// UpgradeEnabled reports whether a classic group with members may become
// a consumer group.
func (p MigrationPolicy) UpgradeEnabled() bool {
	return p == MigrateBidirectional || p == MigrateUpgrade
}

// DowngradeEnabled reports whether a consumer group left with only
// classic members may become a classic group.
func (p MigrationPolicy) DowngradeEnabled() bool {
	return p == MigrateBidirectional || p == MigrateDowngrade
}

// classicMember is what a member speaking the classic protocol adds.
type classicMember struct {
	sessionTimeout time.Duration
	protocols      []groups.Protocol // as it joined; the first is its subscription
	// joinDeadline: the member was told to rejoin (REBALANCE_IN_PROGRESS)
	// and is removed if it has not by then. syncDeadline: it joined and
	// is removed if it has not synced by then. Zero when not running.
	joinDeadline, syncDeadline time.Time
}

// protocolName is the name of the protocol the member is answered with.
func (c *classicMember) protocolName() string { return c.protocols[0].Name }

// touch restarts a member's session timeout, which is the classic
// member's own or the group's.
func (g *Group) touch(now time.Time, m *member) {
	if m.classic != nil {
		m.sessionDeadline = now.Add(m.classic.sessionTimeout)
		return
	}
	m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
}

// decodeSubscription reads a ConsumerProtocol subscription, bounded by
// its bytes.
func decodeSubscription(b []byte) (kmsg.ConsumerMemberMetadata, bool) {
	var s kmsg.ConsumerMemberMetadata
	if err := s.ReadFrom(b); err != nil || s.Version < 0 {
		return s, false
	}
	return s, true
}

// ownedFromSubscription maps a subscription's owned partitions to topic
// ids; unknown topics are left out. The result is never nil: a classic
// member always says what it holds (nothing, before v1).
func ownedFromSubscription(img Image, s kmsg.ConsumerMemberMetadata) Assignment {
	a := Assignment{}
	for _, op := range s.OwnedPartitions {
		t, ok := img.Topic(op.Topic)
		if !ok {
			continue
		}
		for _, p := range op.Partitions {
			if p >= 0 && p < t.Partitions && !slices.Contains(a[t.ID], p) {
				a[t.ID] = append(a[t.ID], p)
			}
		}
	}
	for _, ps := range a {
		slices.Sort(ps)
	}
	return a
}

// supportsClassicProtocols reports whether a member joining with
// protocolType and protocols can join: the protocol type must be
// "consumer" and, while the group has other classic members, one of its
// protocols must be supported by all of them.
func (g *Group) supportsClassicProtocols(memberID, protocolType string, protocols []groups.Protocol) bool {
	if protocolType != Type || len(protocols) == 0 {
		return false
	}
	var others []*member
	for id, m := range g.members {
		if id != memberID && m.classic != nil {
			others = append(others, m)
		}
	}
	if len(others) == 0 {
		return true
	}
	for _, p := range protocols {
		all := true
		for _, m := range others {
			if !slices.ContainsFunc(m.classic.protocols, func(q groups.Protocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// ClassicJoin handles a JoinGroup to a consumer group with members. It is
// answered at once: the member is created or updated from the
// subscription in its first protocol, the group epoch is bumped if its
// subscription changed, and the member is reconciled with the partitions
// the subscription says it owns. The caller checks the session timeout
// bounds first (INVALID_SESSION_TIMEOUT), as for classic groups.
func (g *Group) ClassicJoin(now time.Time, img Image, r groups.JoinRequest) (groups.JoinResponse, Effects) {
	var e Effects
	resp := groups.JoinResponse{MemberID: r.MemberID, Generation: -1}
	fail := func(code int16) (groups.JoinResponse, Effects) {
		resp.Err = code
		return resp, e
	}
	if g.dead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	id := r.MemberID
	unknown := id == ""
	if unknown {
		id = g.newMemberID()
	}
	if g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize && g.members[id] == nil {
		return fail(kerr.GroupMaxSizeReached.Code)
	}
	if !g.supportsClassicProtocols(id, r.ProtocolType, r.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	sub, ok := decodeSubscription(r.Protocols[0].Metadata)
	if !ok {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if unknown && r.InstanceID == "" && r.Version >= 4 {
		// KIP-394: a dynamic member first learns its id.
		resp.MemberID = id
		return fail(kerr.MemberIDRequired.Code)
	}

	var m *member
	joined, replacedConsumer := false, false
	if r.InstanceID != "" {
		if oldID, ok := g.static[r.InstanceID]; ok && oldID != id {
			if !unknown {
				return fail(kerr.FencedInstanceID.Code)
			}
			// A restarted static member takes its predecessor's place,
			// whichever protocol the predecessor spoke.
			old := g.members[oldID]
			replacedConsumer = old.classic == nil
			m = g.replace(old, id)
			m.classic = &classicMember{}
		}
	}
	if m == nil {
		m = g.members[id]
	}
	switch {
	case m != nil && m.classic == nil:
		// A member of the consumer protocol does not join with JoinGroup.
		return fail(kerr.UnknownMemberID.Code)
	case m != nil && r.InstanceID != "" && m.instanceID != r.InstanceID:
		return fail(kerr.FencedInstanceID.Code)
	case m == nil:
		m = &member{id: id, assigned: map[TP]int32{}, pending: map[TP]int32{}}
		if r.InstanceID != "" {
			m.instanceID = r.InstanceID
			g.static[m.instanceID] = id
		}
		g.members[id] = m
		joined = true
	}
	noAssignor := ""
	rebalance := r.RebalanceTimeout
	if rebalance <= 0 {
		rebalance = r.SessionTimeout // JoinGroup v0 has none
	}
	hr := HeartbeatRequest{
		RebalanceTimeout: rebalance, SubscribedTopicNames: sub.Topics, ServerAssignor: &noAssignor,
		RackID: sub.Rack, ClientID: r.ClientID, ClientHost: r.ClientHost,
	}
	if hr.SubscribedTopicNames == nil {
		hr.SubscribedTopicNames = []string{}
	}
	if hr.RackID != nil && *hr.RackID == "" {
		hr.RackID = nil
	}
	subscriptionChanged, _ := g.update(m, hr)
	m.classic = &classicMember{sessionTimeout: r.SessionTimeout, protocols: slices.Clone(r.Protocols)}

	metadataChanged := g.refreshSubscriptions(img)
	racksChanged := !slices.Equal(img.Racks, g.racks) && g.anyRack()
	if joined || subscriptionChanged || metadataChanged || racksChanged {
		g.epoch++
	}
	if g.epoch > g.assignmentEpoch {
		g.computeTarget(img.Racks)
	}
	g.reconcile(now, m, ownedFromSubscription(img, sub))
	g.touch(now, m)
	m.classic.syncDeadline = now.Add(m.rebalanceTimeout)
	e.Persist = true
	// The last member of the consumer protocol was replaced by this one.
	e.Downgrade = replacedConsumer && g.shouldDowngrade(g.epoch)

	resp.MemberID = m.id
	resp.Generation = m.epoch
	resp.ProtocolType = Type
	resp.Protocol = m.classic.protocolName()
	return resp, e
}

// classicMemberOf finds the classic member of a SyncGroup, Heartbeat or
// OffsetCommit, checking its instance id.
func (g *Group) classicMemberOf(memberID, instanceID string) (*member, int16) {
	if instanceID != "" {
		id, ok := g.static[instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID.Code
		}
		if id != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil || m.classic == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// ClassicSync handles a SyncGroup of a classic member: it gets its
// assigned partitions (not those it is revoking), encoded as a
// ConsumerProtocol assignment of the version of its subscription.
func (g *Group) ClassicSync(now time.Time, r groups.SyncRequest) groups.SyncResponse {
	if g.dead {
		return groups.SyncResponse{Err: kerr.CoordinatorNotAvailable.Code}
	}
	m, code := g.classicMemberOf(r.MemberID, r.InstanceID)
	switch {
	case code != 0:
		return groups.SyncResponse{Err: code}
	case r.Generation != m.epoch:
		return groups.SyncResponse{Err: kerr.IllegalGeneration.Code}
	case r.ProtocolType != "" && r.ProtocolType != Type,
		r.Protocol != "" && r.Protocol != m.classic.protocolName():
		return groups.SyncResponse{Err: kerr.InconsistentGroupProtocol.Code}
	}
	m.classic.syncDeadline = time.Time{}
	g.touch(now, m)
	return groups.SyncResponse{ProtocolType: Type, Protocol: m.classic.protocolName(), Assignment: g.classicAssignment(m)}
}

// classicAssignment encodes a member's assigned partitions in the
// ConsumerProtocol assignment format, at the version of its subscription
// (at most 3).
func (g *Group) classicAssignment(m *member) []byte {
	version := int16(0)
	if len(m.classic.protocols) > 0 {
		if s, ok := decodeSubscription(m.classic.protocols[0].Metadata); ok {
			version = min(s.Version, 3)
		}
	}
	names := make(map[TopicID]string, len(g.subscribed))
	for name, t := range g.subscribed {
		names[t.ID] = name
	}
	a := kmsg.NewConsumerMemberAssignment()
	a.Version = version
	owned := toAssignment(m.assigned)
	for _, id := range owned.TopicIDs() {
		name, ok := names[id]
		if !ok {
			continue // a topic deleted since: nothing to consume
		}
		a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: name, Partitions: owned[id]})
	}
	slices.SortFunc(a.Topics, func(x, y kmsg.ConsumerMemberAssignmentTopic) int { return strings.Compare(x.Topic, y.Topic) })
	return a.AppendTo(nil)
}

// ClassicHeartbeat handles a Heartbeat of a classic member. It answers
// REBALANCE_IN_PROGRESS when the member must rejoin to make progress —
// the group epoch is past its epoch, it has partitions to revoke, or
// partitions it waits for are free — and then expects the rejoin within
// its rebalance timeout. It changes nothing durable.
func (g *Group) ClassicHeartbeat(now time.Time, memberID, instanceID string, generation int32) int16 {
	if g.dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	m, code := g.classicMemberOf(memberID, instanceID)
	switch {
	case code != 0:
		return code
	case generation != m.epoch:
		return kerr.IllegalGeneration.Code
	}
	g.touch(now, m)
	if m.epoch < g.epoch || m.state == memberUnrevoked || (m.state == memberUnreleased && !g.waitingOnUnreleased(m)) {
		if m.classic.joinDeadline.IsZero() {
			m.classic.joinDeadline = now.Add(m.rebalanceTimeout)
		}
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// waitingOnUnreleased reports whether a partition of m's target that it
// does not hold yet is still held by another member.
func (g *Group) waitingOnUnreleased(m *member) bool {
	for tp := range g.target[m.id] {
		if _, ok := m.assigned[tp]; ok {
			continue
		}
		if o := g.owner[tp]; o != "" && o != m.id {
			return true
		}
	}
	return false
}

// ClassicLeave handles a LeaveGroup into a consumer group: each member,
// by member id or instance id, must be a classic member.
func (g *Group) ClassicLeave(leaving []groups.LeaveMember) ([]groups.LeaveResult, Effects) {
	var e Effects
	out := make([]groups.LeaveResult, 0, len(leaving))
	for _, l := range leaving {
		res := groups.LeaveResult{MemberID: l.MemberID, InstanceID: l.InstanceID}
		id := l.MemberID
		if l.InstanceID != "" {
			known, ok := g.static[l.InstanceID]
			switch {
			case !ok:
				res.Err = kerr.UnknownMemberID.Code
			case id != "" && id != known:
				res.Err = kerr.FencedInstanceID.Code
			}
			id, res.MemberID = known, known
		}
		if res.Err == 0 {
			if m := g.members[id]; m == nil || m.classic == nil {
				res.Err = kerr.UnknownMemberID.Code
			} else {
				g.remove(m)
				e.Persist = true
			}
		}
		out = append(out, res)
	}
	return out, e
}

// onlyClassic reports a group whose members all speak the classic
// protocol (and that has some).
func (g *Group) onlyClassic() bool {
	for _, m := range g.members {
		if m.classic == nil {
			return false
		}
	}
	return len(g.members) > 0
}

// shouldDowngrade is checked after a member of the consumer protocol
// left or was removed: the group goes back to the classic protocol when
// only classic members remain and the policy allows it.
// before is the group epoch before the removal: the classic group's
// generation, as in Kafka, where the downgraded group takes the epoch the
// remaining members were at.
func (g *Group) shouldDowngrade(before int32) bool {
	if !g.cfg.MigrationPolicy.DowngradeEnabled() || !g.onlyClassic() {
		return false
	}
	g.downgradeEpoch = before
	return true
}

// FromClassic converts a classic group with members (its snapshot) into a
// consumer group, when a ConsumerGroupHeartbeat joins it (the caller
// checks MigrationPolicy.UpgradeEnabled and the protocol type). As in
// Kafka, the group epoch and every member's epoch are the generation, each
// member keeps the partitions its last assignment gave it, which is also
// its target, and stays a classic member; the joining member's heartbeat
// then bumps the epoch. A partition claimed by two members (a stale
// assignment) goes to the first by member id. A subscription or
// assignment that is not the ConsumerProtocol's is an error.
func FromClassic(name string, cfg Config, newMemberID func() string, s groups.Snapshot, img Image, now time.Time) (*Group, error) {
	if s.ProtocolType != Type {
		return nil, fmt.Errorf("group %q: protocol type %q is not %q", name, s.ProtocolType, Type)
	}
	g := New(name, cfg, newMemberID)
	g.epoch, g.assignmentEpoch = s.Generation, s.Generation
	g.assignor = g.cfg.Assignors[0]
	members := slices.Clone(s.Members)
	slices.SortFunc(members, func(a, b groups.SnapshotMember) int { return strings.Compare(a.ID, b.ID) })
	for _, sm := range members {
		if len(sm.Protocols) == 0 {
			return nil, fmt.Errorf("group %q: member %q has no protocol", name, sm.ID)
		}
		// The selected protocol's subscription; the first one while no
		// protocol is selected.
		metadata := sm.Protocols[0].Metadata
		for _, p := range sm.Protocols {
			if p.Name == s.Protocol {
				metadata = p.Metadata
			}
		}
		sub, ok := decodeSubscription(metadata)
		if !ok {
			return nil, fmt.Errorf("group %q: member %q: malformed consumer protocol subscription", name, sm.ID)
		}
		var asg kmsg.ConsumerMemberAssignment
		if len(sm.Assignment) > 0 {
			if err := asg.ReadFrom(sm.Assignment); err != nil {
				return nil, fmt.Errorf("group %q: member %q: malformed consumer protocol assignment: %v", name, sm.ID, err)
			}
		}
		m := &member{
			id: sm.ID, instanceID: sm.InstanceID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			rebalanceTimeout: time.Duration(cmp.Or(sm.RebalanceTimeoutMs, sm.SessionTimeoutMs)) * time.Millisecond,
			topicNames:       slices.Compact(slices.Sorted(slices.Values(sub.Topics))),
			epoch:            s.Generation, previousEpoch: s.Generation, state: memberStable,
			classic: &classicMember{
				sessionTimeout: time.Duration(sm.SessionTimeoutMs) * time.Millisecond,
				protocols:      slices.Clone(sm.Protocols),
			},
		}
		if sub.Rack != nil {
			m.rackID = *sub.Rack
		}
		assigned := map[TP]int32{}
		target := map[TP]struct{}{}
		for _, at := range asg.Topics {
			t, ok := img.Topic(at.Topic)
			if !ok {
				continue
			}
			for _, p := range at.Partitions {
				tp := TP{t.ID, p}
				if p < 0 || p >= t.Partitions || g.owner[tp] != "" {
					continue
				}
				assigned[tp] = s.Generation
				target[tp] = struct{}{}
			}
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
		g.setOwned(m, assigned, nil)
		g.target[m.id] = target
		g.touch(now, m)
	}
	g.refreshSubscriptions(img)
	g.racks = slices.Clone(img.Racks)
	return g, nil
}

// ToClassic is the classic group a consumer group becomes when it is
// downgraded (Effects.Downgrade): every member is a classic member. As in
// Kafka the generation is the group epoch before the member that made
// the downgrade left (so members at it are told to rejoin), members keep their protocols
// and their assigned partitions (encoded as their SyncGroup would
// receive them), and the group is in PreparingRebalance, so that every
// member rejoins and the group's classic leader assigns again. The
// caller restores it with groups.Restore.
func (g *Group) ToClassic() groups.Snapshot {
	generation := g.epoch
	if g.downgradeEpoch != 0 {
		generation = g.downgradeEpoch
	}
	s := groups.Snapshot{State: groups.PreparingRebalance.String(), Generation: generation, ProtocolType: Type}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		if m.classic == nil {
			continue
		}
		if s.Protocol == "" {
			s.Protocol, s.Leader = m.classic.protocolName(), id
		}
		s.Members = append(s.Members, groups.SnapshotMember{
			ID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			SessionTimeoutMs: m.classic.sessionTimeout.Milliseconds(), RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
			Protocols: slices.Clone(m.classic.protocols), Assignment: g.classicAssignment(m),
		})
	}
	return s
}
