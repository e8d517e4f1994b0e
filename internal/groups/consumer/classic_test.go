package consumer

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/groups"
)

// subscription encodes a ConsumerProtocol subscription (v1: owned
// partitions) for topics and owned partitions.
func (h *harness) subscription(topics []string, owned Assignment) []byte {
	s := kmsg.NewConsumerMemberMetadata()
	s.Version = 1
	s.Topics = topics
	for _, id := range owned.TopicIDs() {
		s.OwnedPartitions = append(s.OwnedPartitions, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: h.names[id], Partitions: owned[id]})
	}
	return s.AppendTo(nil)
}

// assignmentBytes encodes a ConsumerProtocol assignment.
func (h *harness) assignmentBytes(a Assignment) []byte {
	asg := kmsg.NewConsumerMemberAssignment()
	asg.Version = 1
	for _, id := range a.TopicIDs() {
		asg.Topics = append(asg.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: h.names[id], Partitions: a[id]})
	}
	return asg.AppendTo(nil)
}

// decodeAssignment prints a ConsumerProtocol assignment as "a:0,1 b:2".
func decodeAssignment(t *testing.T, b []byte) string {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		t.Fatalf("assignment: %v", err)
	}
	var parts []string
	for _, at := range a.Topics {
		var ps []string
		for _, p := range at.Partitions {
			ps = append(ps, strconv.Itoa(int(p)))
		}
		parts = append(parts, at.Topic+":"+strings.Join(ps, ","))
	}
	return fmt.Sprintf("v%d[%s]", a.Version, strings.Join(parts, " "))
}

func (h *harness) duration(t *testing.T, args map[string]string, key string, def time.Duration) time.Duration {
	v, ok := args[key]
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%s: %v", key, v, err)
	}
	return d
}

func (h *harness) runClassic(t *testing.T, cmd, verb string, pos []string, args map[string]string) []string {
	t.Helper()
	var out []string
	switch verb {
	case "upgrade":
		snap := groups.Snapshot{State: "Stable", Generation: int32(h.atoi(t, args["gen"])), ProtocolType: Type, Protocol: "range"}
		for _, f := range strings.Fields(cmd)[1:] {
			id, v, _ := strings.Cut(f, "=")
			if id == "gen" {
				continue
			}
			topics, asg, _ := strings.Cut(v, "|")
			a := h.parseAssignment(t, asg)
			snap.Members = append(snap.Members, groups.SnapshotMember{
				ID: id, ClientID: "client", SessionTimeoutMs: 10000, RebalanceTimeoutMs: 20000,
				Protocols:  []groups.Protocol{{Name: "range", Metadata: h.subscription(strings.Split(topics, ","), nil)}},
				Assignment: h.assignmentBytes(a),
			})
		}
		g, err := FromClassic("g", h.cfg, h.g.newMemberID, snap, h.img, h.now)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		h.g = g
	case "cjoin":
		r := groups.JoinRequest{
			Version: 5, MemberID: pos[0], ClientID: "client", ClientHost: "/127.0.0.1",
			SessionTimeout:   h.duration(t, args, "session", 10*time.Second),
			RebalanceTimeout: h.duration(t, args, "rebalance", 20*time.Second),
			ProtocolType:     Type, InstanceID: args["instance"],
		}
		if pos[0] == "-" {
			r.MemberID = ""
		}
		if v, ok := args["v"]; ok {
			r.Version = int16(h.atoi(t, v))
		}
		if v, ok := args["type"]; ok {
			r.ProtocolType = v
		}
		var sub []string
		if v := args["sub"]; v != "" {
			sub = strings.Split(v, ",")
		}
		meta := h.subscription(sub, h.parseAssignment(t, args["owned"]))
		if args["sub"] == "garbage" {
			meta = []byte{0, 1, 0}
		}
		protocols := []string{"range"}
		if v, ok := args["protocols"]; ok {
			protocols = strings.Split(v, ",")
		}
		for _, p := range protocols {
			r.Protocols = append(r.Protocols, groups.Protocol{Name: p, Metadata: meta})
		}
		resp, e := h.g.ClassicJoin(h.now, h.img, r)
		out = append(out, effects(e)...)
		line := fmt.Sprintf("%s: %s", orDash(resp.MemberID), codeName(resp.Err))
		if resp.Err == 0 {
			line += fmt.Sprintf(" gen=%d protocol=%s/%s leader=%q", resp.Generation, resp.ProtocolType, resp.Protocol, resp.Leader)
		}
		out = append(out, line)
	case "csync":
		resp := h.g.ClassicSync(h.now, groups.SyncRequest{
			MemberID: pos[0], InstanceID: args["instance"], Generation: int32(h.atoi(t, args["gen"])),
			ProtocolType: Type, Protocol: args["protocol"],
		})
		line := fmt.Sprintf("%s: %s", pos[0], codeName(resp.Err))
		if resp.Err == 0 {
			line += " assignment=" + decodeAssignment(t, resp.Assignment)
		}
		out = append(out, line)
	case "chb":
		code := h.g.ClassicHeartbeat(h.now, pos[0], args["instance"], int32(h.atoi(t, args["gen"])))
		out = append(out, fmt.Sprintf("%s: %s", pos[0], codeName(code)))
	case "cleave":
		var members []groups.LeaveMember
		for _, f := range strings.Fields(cmd)[1:] {
			if v, ok := strings.CutPrefix(f, "instance="); ok {
				members = append(members, groups.LeaveMember{InstanceID: v})
			} else {
				members = append(members, groups.LeaveMember{MemberID: f})
			}
		}
		res, e := h.g.ClassicLeave(members)
		out = append(out, effects(e)...)
		for _, r := range res {
			out = append(out, fmt.Sprintf("%s: %s", orDash(r.MemberID), codeName(r.Err)))
		}
	case "policy":
		p, ok := ParseMigrationPolicy(pos[0])
		if !ok {
			t.Fatalf("%s: unknown policy", cmd)
		}
		h.cfg.MigrationPolicy, h.g.cfg.MigrationPolicy = p, p
		return nil
	case "downgrade":
		s := h.g.ToClassic()
		out = append(out, fmt.Sprintf("classic state=%s generation=%d protocol=%s/%s leader=%s", s.State, s.Generation, s.ProtocolType, s.Protocol, s.Leader))
		for _, m := range s.Members {
			var names []string
			for _, p := range m.Protocols {
				names = append(names, p.Name)
			}
			out = append(out, fmt.Sprintf("  %s session=%dms rebalance=%dms protocols=%v assignment=%s",
				m.ID, m.SessionTimeoutMs, m.RebalanceTimeoutMs, names, decodeAssignment(t, m.Assignment)))
		}
		cg, err := groups.Restore("g", groups.Config{}, func(string) string { return "x" }, s, h.now)
		if err != nil {
			t.Fatalf("restore the classic group: %v", err)
		}
		out = append(out, fmt.Sprintf("restored state=%s generation=%d members=%d", cg.State(), cg.Generation(), cg.Len()))
		return out
	}
	return append(out, h.state()...)
}

func TestMigrationPolicy(t *testing.T) {
	for _, tc := range []struct {
		name              string
		upgrade, downgade bool
	}{
		{"bidirectional", true, true},
		{"UPGRADE", true, false},
		{"downgrade", false, true},
		{"disabled", false, false},
	} {
		p, ok := ParseMigrationPolicy(tc.name)
		if !ok || p.UpgradeEnabled() != tc.upgrade || p.DowngradeEnabled() != tc.downgade || p.String() != strings.ToLower(tc.name) {
			t.Errorf("%s: %v %v: upgrade %v downgrade %v", tc.name, p, ok, p.UpgradeEnabled(), p.DowngradeEnabled())
		}
	}
	if _, ok := ParseMigrationPolicy("sideways"); ok {
		t.Error("sideways accepted")
	}
	if p := (Config{}).MigrationPolicy; p != MigrateBidirectional {
		t.Errorf("default policy %v", p)
	}
}

// A malformed subscription in the classic group refuses the upgrade
// (Kafka: GROUP_ID_NOT_FOUND for the joining member).
func TestFromClassicMalformed(t *testing.T) {
	snap := groups.Snapshot{State: "Stable", Generation: 2, ProtocolType: Type, Protocol: "range",
		Members: []groups.SnapshotMember{{ID: "c1", Protocols: []groups.Protocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 9}}}}}}
	if _, err := FromClassic("g", Config{}, func() string { return "x" }, snap, NewImage(nil), time.Now()); err == nil {
		t.Error("malformed subscription accepted")
	}
	snap.ProtocolType = "connect"
	if _, err := FromClassic("g", Config{}, func() string { return "x" }, snap, NewImage(nil), time.Now()); err == nil {
		t.Error("protocol type connect accepted")
	}
}
