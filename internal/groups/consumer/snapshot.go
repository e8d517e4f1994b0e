package consumer

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/groups"
)

// Type is the value of Snapshot.Type, which tells a consumer group's
// record from a classic group's (internal/groups.Snapshot has no such
// field).
const Type = "consumer"

// Snapshot is the durable state of a consumer group: everything a
// coordinator on another agent needs to take the group over without its
// members noticing — the group and assignment epochs, the target
// assignment, and each member's epoch, reconciliation state and
// partitions. Session and rebalance timers are not part of it: they
// restart when the group is restored.
type Snapshot struct {
	Type            string           `json:"group_type"`
	State           string           `json:"state"`
	Epoch           int32            `json:"epoch"`
	AssignmentEpoch int32            `json:"assignment_epoch"`
	Assignor        string           `json:"assignor,omitempty"`
	Racks           []string         `json:"racks,omitempty"`
	Subscribed      []Topic          `json:"subscribed,omitempty"`
	Members         []SnapshotMember `json:"members,omitempty"`
}

// SnapshotMember is one member of a Snapshot.
type SnapshotMember struct {
	ID                 string              `json:"id"`
	InstanceID         string              `json:"instance_id,omitempty"`
	RackID             string              `json:"rack_id,omitempty"`
	ClientID           string              `json:"client_id,omitempty"`
	ClientHost         string              `json:"client_host,omitempty"`
	RebalanceTimeoutMs int64               `json:"rebalance_timeout_ms"`
	ServerAssignor     string              `json:"server_assignor,omitempty"`
	TopicNames         []string            `json:"topic_names,omitempty"`
	Regex              string              `json:"regex,omitempty"`
	Epoch              int32               `json:"epoch"`
	PreviousEpoch      int32               `json:"previous_epoch"`
	State              string              `json:"member_state"`
	Assigned           []SnapshotPartition `json:"assigned,omitempty"`
	Pending            []SnapshotPartition `json:"pending,omitempty"`
	Target             []SnapshotPartition `json:"target,omitempty"`
	// Classic is set for a member that speaks the classic protocol.
	Classic *SnapshotClassic `json:"classic,omitempty"`
}

// SnapshotClassic is what a classic member adds: its session timeout and
// the protocols it joined with (metadata in base64). Its join and sync
// deadlines are not kept: they are not running after a restore.
type SnapshotClassic struct {
	SessionTimeoutMs int64             `json:"session_timeout_ms"`
	Protocols        []groups.Protocol `json:"protocols"`
}

// SnapshotPartition is a partition, with the epoch at which the member
// was given it (0 in targets).
type SnapshotPartition struct {
	Topic     TopicID `json:"topic"`
	Partition int32   `json:"p"`
	Epoch     int32   `json:"e,omitempty"`
}

func snapshotPartitions[V any](set map[TP]V, epoch func(TP) int32) []SnapshotPartition {
	out := make([]SnapshotPartition, 0, len(set))
	for tp := range set {
		out = append(out, SnapshotPartition{Topic: tp.Topic, Partition: tp.Partition, Epoch: epoch(tp)})
	}
	slices.SortFunc(out, func(a, b SnapshotPartition) int {
		return compareTPs(TP{a.Topic, a.Partition}, TP{b.Topic, b.Partition})
	})
	return out
}

// Snapshot returns the group's durable state.
func (g *Group) Snapshot() Snapshot {
	s := Snapshot{
		Type: Type, State: g.State().String(), Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch,
		Assignor: g.assignor, Racks: slices.Clone(g.racks),
	}
	for _, t := range g.subscribed {
		s.Subscribed = append(s.Subscribed, t)
	}
	slices.SortFunc(s.Subscribed, func(a, b Topic) int { return compareIDs(a.ID, b.ID) })
	for _, id := range g.memberIDs() {
		m := g.members[id]
		s.Members = append(s.Members, SnapshotMember{
			ID: id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(), ServerAssignor: m.serverAssignor,
			TopicNames: m.topicNames, Regex: m.regex,
			Epoch: m.epoch, PreviousEpoch: m.previousEpoch, State: m.state.String(),
			Assigned: snapshotPartitions(m.assigned, func(tp TP) int32 { return m.assigned[tp] }),
			Pending:  snapshotPartitions(m.pending, func(tp TP) int32 { return m.pending[tp] }),
			Target:   snapshotPartitions(g.target[id], func(TP) int32 { return 0 }),
		})
		if m.classic != nil {
			s.Members[len(s.Members)-1].Classic = &SnapshotClassic{
				SessionTimeoutMs: m.classic.sessionTimeout.Milliseconds(), Protocols: m.classic.protocols,
			}
		}
	}
	return s
}

// Restore rebuilds a group from a snapshot at time now. Every member's
// session timeout starts again from now, and a member still revoking
// partitions gets its whole rebalance timeout again: members that
// heartbeat the new coordinator in time carry on with their epochs and
// partitions.
func Restore(name string, cfg Config, newMemberID func() string, s Snapshot, now time.Time) (*Group, error) {
	if s.Type != Type {
		return nil, fmt.Errorf("group %q: snapshot of type %q, not %q", name, s.Type, Type)
	}
	g := New(name, cfg, newMemberID)
	g.epoch, g.assignmentEpoch, g.assignor = s.Epoch, s.AssignmentEpoch, s.Assignor
	g.racks = slices.Clone(s.Racks)
	for _, t := range s.Subscribed {
		g.subscribed[t.Name] = t
	}
	for _, sm := range s.Members {
		state := slices.Index(memberStateNames[:], sm.State)
		if state < 0 {
			return nil, fmt.Errorf("group %q: member %q in state %q", name, sm.ID, sm.State)
		}
		m := &member{
			id: sm.ID, instanceID: sm.InstanceID, rackID: sm.RackID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			rebalanceTimeout: time.Duration(sm.RebalanceTimeoutMs) * time.Millisecond,
			serverAssignor:   sm.ServerAssignor, topicNames: sm.TopicNames, regex: sm.Regex,
			epoch: sm.Epoch, previousEpoch: sm.PreviousEpoch, state: memberState(state),
		}
		if m.regex != "" {
			re, err := compileRegex(m.regex)
			if err != nil {
				return nil, fmt.Errorf("group %q: member %q: %w", name, sm.ID, err)
			}
			m.re = re
		}
		assigned, pending := map[TP]int32{}, map[TP]int32{}
		for _, p := range sm.Assigned {
			assigned[TP{p.Topic, p.Partition}] = p.Epoch
		}
		for _, p := range sm.Pending {
			pending[TP{p.Topic, p.Partition}] = p.Epoch
		}
		if len(sm.Target) > 0 {
			target := map[TP]struct{}{}
			for _, p := range sm.Target {
				target[TP{p.Topic, p.Partition}] = struct{}{}
			}
			g.target[m.id] = target
		}
		if sm.Classic != nil {
			if len(sm.Classic.Protocols) == 0 {
				return nil, fmt.Errorf("group %q: classic member %q without protocols", name, sm.ID)
			}
			m.classic = &classicMember{
				sessionTimeout: time.Duration(sm.Classic.SessionTimeoutMs) * time.Millisecond,
				protocols:      sm.Classic.Protocols,
			}
		}
		g.setOwned(m, assigned, pending)
		g.touch(now, m)
		if m.state == memberUnrevoked {
			m.rebalanceDeadline = now.Add(m.rebalanceTimeout)
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
	}
	return g, nil
}

// Marshal encodes a snapshot for the metadata store.
func (s Snapshot) Marshal() ([]byte, error) { return json.Marshal(s) }

// UnmarshalSnapshot decodes what Marshal encoded.
func UnmarshalSnapshot(b []byte) (Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode consumer group snapshot: %w", err)
	}
	return s, nil
}

// IsSnapshot reports whether a stored group record holds a consumer
// group (rather than a classic group's snapshot).
func IsSnapshot(b []byte) bool {
	var head struct {
		Type string `json:"group_type"`
	}
	return json.Unmarshal(b, &head) == nil && head.Type == Type
}
