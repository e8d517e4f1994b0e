package consumer

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
)

// ValidateCommit checks an OffsetCommit into the group, returning a code
// for the whole request and, when that is 0, one per partition (0: the
// offset may be stored).
//
// A commit with a negative epoch into a group without members is a
// "simple" commit (an admin, or a consumer assigning partitions itself).
// Otherwise the member must exist (UNKNOWN_MEMBER_ID), use OffsetCommit
// v9+ (UNSUPPORTED_VERSION), and send an epoch no newer than the
// coordinator's (STALE_MEMBER_EPOCH). Each partition must be held by the
// member (assigned, or being revoked) since an epoch no newer than the
// one sent, else it is STALE_MEMBER_EPOCH: this is KIP-1251's rule
// (Kafka 4.3), which accepts a commit racing a heartbeat that bumped the
// member's epoch but fences commits of partitions the member no longer
// holds. KIP-848 as first released required the exact epoch.
func (g *Group) ValidateCommit(memberID string, epoch int32, version int16, partitions []TP) (int16, []int16) {
	if g.dead {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	if epoch < 0 && len(g.members) == 0 {
		return 0, make([]int16, len(partitions))
	}
	m := g.members[memberID]
	if m != nil && m.classic != nil {
		// A classic member commits with its generation, the member
		// epoch, at any OffsetCommit version (as in a classic group).
		if epoch != m.epoch {
			return kerr.IllegalGeneration.Code, nil
		}
		return 0, make([]int16, len(partitions))
	}
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code, nil
	case version < 9:
		return kerr.UnsupportedVersion.Code, nil
	case epoch > m.epoch:
		return kerr.StaleMemberEpoch.Code, nil
	}
	codes := make([]int16, len(partitions))
	for i, tp := range partitions {
		since, ok := m.assigned[tp]
		if !ok {
			since, ok = m.pending[tp]
		}
		if !ok || epoch < since {
			codes[i] = kerr.StaleMemberEpoch.Code
		}
	}
	return 0, codes
}

// ValidateFetch checks the member of an OffsetFetch v9+: none (a nil
// member id with a negative epoch, as admins send) is accepted; a member
// must exist and send its current epoch (STALE_MEMBER_EPOCH otherwise).
func (g *Group) ValidateFetch(memberID *string, epoch int32) int16 {
	if memberID == nil && epoch < 0 {
		return 0
	}
	if memberID == nil {
		return kerr.UnknownMemberID.Code
	}
	m := g.members[*memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case epoch != m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// Subscribes reports whether some member subscribes to topic, by name or
// regular expression (OffsetDelete refuses to delete its offsets).
func (g *Group) Subscribes(topic string) bool {
	for _, m := range g.members {
		if m.subscribedTo(topic) {
			return true
		}
	}
	return false
}

// Description is a group as ConsumerGroupDescribe shows it.
type Description struct {
	State           State
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []MemberDescription
}

// MemberDescription is one member of a Description.
type MemberDescription struct {
	ID, InstanceID, RackID string
	ClientID, ClientHost   string
	Epoch                  int32
	SubscribedTopicNames   []string
	SubscribedTopicRegex   string // "" if none
	// SubscribedTopics are the existing topics the member subscribes to,
	// by name or regular expression, sorted.
	SubscribedTopics []string
	Assignment       Assignment // what the member holds (not pending revocation)
	Target           Assignment
	// Classic is set for a member that speaks the classic protocol
	// (ConsumerGroupDescribe v1's MemberType 0), with the protocols it
	// joined with.
	Classic          bool
	ClassicProtocols []groups.Protocol
}

// Describe describes the group, members sorted by id.
func (g *Group) Describe() Description {
	d := Description{State: g.State(), Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch, Assignor: g.assignor}
	if d.Assignor == "" {
		d.Assignor = g.cfg.Assignors[0]
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		md := MemberDescription{
			ID: id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			Epoch: m.epoch, SubscribedTopicNames: slices.Clone(m.topicNames), SubscribedTopicRegex: m.regex,
			Assignment: toAssignment(m.assigned), Target: toAssignment(g.target[id]),
		}
		if m.classic != nil {
			md.Classic, md.ClassicProtocols = true, slices.Clone(m.classic.protocols)
		}
		for name := range g.subscribed {
			if m.subscribedTo(name) {
				md.SubscribedTopics = append(md.SubscribedTopics, name)
			}
		}
		slices.Sort(md.SubscribedTopics)
		d.Members = append(d.Members, md)
	}
	return d
}
