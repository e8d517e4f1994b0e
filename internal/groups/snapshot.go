package groups

import (
	"encoding/json"
	"fmt"
	"time"
)

// Snapshot is the durable part of a group: what a coordinator on another
// agent needs to take over a stable group without making its members
// rejoin. It is taken when the group becomes Stable or Empty and when a
// member is removed (it left, or timed out), the points at which
// Effects.Persist is set; requests waiting in a rebalance are not part
// of it. A snapshot taken in a rebalance lists the members still in the
// group, so that a coordinator that takes over never brings back one
// that left: it restores the group in PreparingRebalance, and the
// members rejoin.
type Snapshot struct {
	State        string           `json:"state"`
	Generation   int32            `json:"generation"`
	ProtocolType string           `json:"protocol_type,omitempty"`
	Protocol     string           `json:"protocol,omitempty"`
	Leader       string           `json:"leader,omitempty"`
	EmptySince   time.Time        `json:"empty_since,omitzero"`
	Members      []SnapshotMember `json:"members,omitempty"`
}

// SnapshotMember is one member of a Snapshot. Metadata and assignments
// are the client's bytes (base64 in JSON).
type SnapshotMember struct {
	ID                 string     `json:"id"`
	InstanceID         string     `json:"instance_id,omitempty"`
	ClientID           string     `json:"client_id,omitempty"`
	ClientHost         string     `json:"client_host,omitempty"`
	SessionTimeoutMs   int64      `json:"session_timeout_ms"`
	RebalanceTimeoutMs int64      `json:"rebalance_timeout_ms"`
	Protocols          []Protocol `json:"protocols"`
	Assignment         []byte     `json:"assignment"`
}

// Snapshot returns the group's durable state.
func (g *Group) Snapshot() Snapshot {
	s := Snapshot{
		State: g.state.String(), Generation: g.generation, ProtocolType: g.protocolType,
		Protocol: g.protocol, Leader: g.leader, EmptySince: g.emptySince,
	}
	for _, id := range g.order {
		m := g.members[id]
		s.Members = append(s.Members, SnapshotMember{
			ID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			SessionTimeoutMs: m.sessionTimeout.Milliseconds(), RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
			Protocols: m.protocols, Assignment: m.assignment,
		})
	}
	return s
}

// Restore rebuilds a group from a snapshot at time now. Members get a
// fresh session timeout from now, so that the members of a group whose
// coordinator moved keep their generation and assignment if they
// heartbeat the new coordinator in time. A snapshot taken in a rebalance
// (PreparingRebalance or CompletingRebalance) restores in
// PreparingRebalance, with a fresh rebalance timeout: every member must
// rejoin (a heartbeat answers REBALANCE_IN_PROGRESS, or
// ILLEGAL_GENERATION to a member still at the previous generation).
func Restore(name string, cfg Config, newMemberID func(string) string, s Snapshot, now time.Time) (*Group, error) {
	g := New(name, cfg, newMemberID)
	st, ok := ParseState(s.State)
	rebalancing := st == PreparingRebalance || st == CompletingRebalance
	if !ok || (st != Empty && st != Stable && !rebalancing) {
		return nil, fmt.Errorf("group %q: snapshot in state %q", name, s.State)
	}
	if st == Stable && len(s.Members) == 0 {
		return nil, fmt.Errorf("group %q: stable snapshot without members", name)
	}
	if rebalancing {
		st = PreparingRebalance
		if len(s.Members) == 0 {
			st = Empty
		}
	}
	g.state, g.generation = st, s.Generation
	g.protocolType, g.protocol, g.leader = s.ProtocolType, s.Protocol, s.Leader
	g.emptySince = s.EmptySince
	for _, sm := range s.Members {
		m := &member{
			id: sm.ID, instanceID: sm.InstanceID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			sessionTimeout:   time.Duration(sm.SessionTimeoutMs) * time.Millisecond,
			rebalanceTimeout: time.Duration(sm.RebalanceTimeoutMs) * time.Millisecond,
			protocolType:     s.ProtocolType, protocols: sm.Protocols, assignment: sm.Assignment,
		}
		m.deadline = now.Add(m.sessionTimeout)
		g.members[m.id] = m
		g.order = append(g.order, m.id)
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
	}
	if st == Empty {
		g.protocol, g.leader = "", ""
	}
	if st == PreparingRebalance {
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		if _, ok := g.members[g.leader]; !ok {
			g.leader = g.order[0]
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
		return s, fmt.Errorf("decode group snapshot: %w", err)
	}
	return s, nil
}
