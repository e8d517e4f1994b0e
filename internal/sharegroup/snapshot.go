package sharegroup

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/groups/consumer"
)

// A snapshot is what a coordinator stores of a share group
// (metastore.ShareGroupRecord) so that the next coordinator continues it:
// the group epoch, each member's epochs, subscription, rack, client and
// assignment, and the topics the last assignment saw. Session deadlines
// are not stored: Restore starts every member's session at the takeover,
// so a member that never comes back is removed a session timeout later.

// snapshotVersion is the encoding's version; Restore refuses others.
const snapshotVersion = 1

type snapshot struct {
	V          int              `json:"v"`
	Epoch      int32            `json:"epoch"`
	Members    []memberSnapshot `json:"members"`
	Partitions []consumer.Topic `json:"partitions"`
}

type memberSnapshot struct {
	ID         string   `json:"id"`
	Rack       string   `json:"rack,omitempty"`
	ClientID   string   `json:"client_id,omitempty"`
	ClientHost string   `json:"client_host,omitempty"`
	Subscribed []string `json:"subscribed"`
	Epoch      int32    `json:"epoch"`
	PrevEpoch  int32    `json:"prev_epoch"`
	// Assignment as topic id (hex) to partitions; JSON maps need text
	// keys, which consumer.TopicID has.
	Assignment map[consumer.TopicID][]int32 `json:"assignment"`
	Sent       bool                         `json:"sent"`
}

// Snapshot encodes the group's membership for the store.
func (g *Group) Snapshot() ([]byte, error) {
	s := snapshot{V: snapshotVersion, Epoch: g.epoch}
	for _, m := range g.sortedMembers() {
		s.Members = append(s.Members, memberSnapshot{
			ID: m.id, Rack: m.rack, ClientID: m.clientID, ClientHost: m.clientHost,
			Subscribed: m.subscribed, Epoch: m.epoch, PrevEpoch: m.prevEpoch,
			Assignment: m.assignment, Sent: m.sent,
		})
	}
	for _, t := range g.partitions {
		s.Partitions = append(s.Partitions, t)
	}
	slices.SortFunc(s.Partitions, func(a, b consumer.Topic) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("share group %q snapshot: %w", g.name, err)
	}
	return b, nil
}

// maxRestoredPartitions bounds the partitions one member's restored
// assignment may name.
const maxRestoredPartitions = 1 << 20

// Restore makes a group from a snapshot taken by Snapshot, at now (the
// takeover): every member's session starts again, so members heartbeating
// at their epoch continue and the others are removed a session timeout
// later. The data came from the store: it is checked as a client's
// request would be, and anything malformed is an error, never a panic.
func Restore(name string, cfg Config, data []byte, now time.Time) (*Group, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("share group %q snapshot: %w", name, err)
	}
	g := New(name, cfg)
	bad := func(why string, args ...any) (*Group, error) {
		return nil, fmt.Errorf("share group %q snapshot: %s", name, fmt.Sprintf(why, args...))
	}
	switch {
	case s.V != snapshotVersion:
		return bad("version %d", s.V)
	case s.Epoch < 0:
		return bad("group epoch %d", s.Epoch)
	case len(s.Members) > max(g.cfg.MaxSize, DefaultMaxSize)*4:
		// A lowered group.share.max.size keeps the members it has, as
		// in Kafka; the bound only stops a corrupt record.
		return bad("%d members", len(s.Members))
	}
	g.epoch = s.Epoch
	for _, ms := range s.Members {
		switch {
		case ms.ID == "" || len(ms.ID) > MaxMemberIDLength:
			return bad("member id of %d bytes", len(ms.ID))
		case g.members[ms.ID] != nil:
			return bad("member %q twice", ms.ID)
		case ms.Epoch < 0 || ms.Epoch > s.Epoch || ms.PrevEpoch < 0 || ms.PrevEpoch > ms.Epoch:
			return bad("member %q epochs %d/%d in group epoch %d", ms.ID, ms.Epoch, ms.PrevEpoch, s.Epoch)
		case len(ms.Subscribed) == 0 || len(ms.Subscribed) > MaxSubscribedTopics:
			return bad("member %q subscribes to %d topics", ms.ID, len(ms.Subscribed))
		}
		subs := slices.Clone(ms.Subscribed)
		slices.Sort(subs)
		subs = slices.Compact(subs)
		n := 0
		for _, ps := range ms.Assignment {
			n += len(ps)
			if n > maxRestoredPartitions {
				return bad("member %q assigned more than %d partitions", ms.ID, maxRestoredPartitions)
			}
			if slices.ContainsFunc(ps, func(p int32) bool { return p < 0 }) {
				return bad("member %q assigned a negative partition", ms.ID)
			}
		}
		var a consumer.Assignment
		if ms.Assignment != nil {
			a = make(consumer.Assignment, len(ms.Assignment))
			for id, ps := range ms.Assignment {
				a[id] = slices.Sorted(slices.Values(ps))
			}
		}
		g.members[ms.ID] = &member{
			id: ms.ID, rack: ms.Rack, clientID: ms.ClientID, clientHost: ms.ClientHost,
			subscribed: subs, epoch: ms.Epoch, prevEpoch: ms.PrevEpoch,
			assignment: a, sent: ms.Sent, deadline: now.Add(g.cfg.SessionTimeout),
		}
	}
	if len(s.Partitions) > MaxSubscribedTopics*max(len(s.Members), 1) {
		return bad("%d topics", len(s.Partitions))
	}
	for _, t := range s.Partitions {
		if t.Partitions < 0 {
			return bad("topic %q with %d partitions", t.Name, t.Partitions)
		}
		g.partitions[t.Name] = t
	}
	return g, nil
}
