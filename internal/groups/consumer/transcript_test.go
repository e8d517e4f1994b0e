package consumer

// Transcript tests: each file in testdata/ is a scenario, a sequence of
//
//	command args...
//	----
//	expected output
//
// blocks separated by blank lines; lines starting with # are comments.
// Run with -rewrite to regenerate the expected outputs, then review the
// diff. Commands:
//
//	topics NAME=PARTITIONS ...            the cluster's topics from now on
//	join ID [sub=T,T] [regex=RE] [instance=I] [assignor=A] [v=N] [owned=...] [rebalance=D]
//	                                      a heartbeat with epoch 0
//	hb ID e=EPOCH [owned=T:P,P;T:P] [sub=T,T] [regex=RE] [instance=I] [assignor=A] [rebalance=D]
//	                                      a regular heartbeat; owned= (empty) reports nothing held,
//	                                      no owned at all is a keepalive
//	leave ID e=-1|-2 [instance=I]
//	tick DURATION                         advance the clock, then Tick
//	commit ID e=EPOCH [v=N] [parts=T:P,P;T:P]
//	fetch ID|- e=EPOCH
//	restore                               snapshot, encode, decode, restore at the current time
//	describe
//
// Classic members (classic.go):
//
//	upgrade gen=N ID=TOPICS|ASSIGNMENT ... a classic group at generation N, each member
//	                                      subscribed to TOPICS (a,b) holding ASSIGNMENT
//	                                      (a:0,1;b:2), converted by FromClassic
//	cjoin ID|- [sub=T,T] [owned=T:P;..] [instance=I] [v=N] [session=D] [rebalance=D] [protocols=P,P] [type=T]
//	csync ID gen=N [protocol=P]
//	chb ID gen=N [instance=I]
//	cleave ID|instance=I ...
//	downgrade                             ToClassic, printed, then restored as a classic group
//	policy NAME                           group.consumer.migration.policy from now on

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/testutil/transcript"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations")

func TestTranscripts(t *testing.T) {
	transcript.Run(t, "testdata/*.txt", *rewrite, func() func(t *testing.T, cmd string) []string {
		return newHarness().run
	})
}

type harness struct {
	g     *Group
	cfg   Config
	now   time.Time
	start time.Time
	img   Image
	names map[TopicID]string
	ids   int
}

func newHarness() *harness {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &harness{
		cfg:   Config{SessionTimeout: 45 * time.Second, HeartbeatInterval: 5 * time.Second, MaxSize: 4},
		now:   start,
		start: start,
		names: map[TopicID]string{},
	}
	h.g = New("g", h.cfg, func() string { h.ids++; return fmt.Sprintf("gen-%d", h.ids) })
	return h
}

// topicID makes a readable, deterministic id from a name.
func topicID(name string) TopicID {
	var id TopicID
	copy(id[:], name)
	return id
}

func (h *harness) run(t *testing.T, cmd string) []string {
	t.Helper()
	fields := strings.Fields(cmd)
	args := map[string]string{}
	var pos []string
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	var out []string
	switch fields[0] {
	case "topics":
		var topics []Topic
		for _, f := range fields[1:] {
			name, n, _ := strings.Cut(f, "=")
			p, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			topics = append(topics, Topic{ID: topicID(name), Name: name, Partitions: int32(p)})
			h.names[topicID(name)] = name
		}
		racks := h.img.Racks
		h.img = NewImage(topics)
		h.img.Racks = racks
		return nil
	case "racks":
		// racks ZONE...: the zones partitions can be read in.
		h.img.Racks = pos
		return nil
	case "join", "hb", "leave":
		r := HeartbeatRequest{Version: 1, MemberID: pos[0], RebalanceTimeout: -1, ClientID: "client", ClientHost: "/127.0.0.1"}
		if pos[0] == "-" {
			r.MemberID = ""
		}
		switch fields[0] {
		case "join":
			r.RebalanceTimeout = 10 * time.Second
			r.Owned = Assignment{}
		case "leave":
			r.MemberEpoch = -1
		}
		for k, v := range args {
			switch k {
			case "e":
				r.MemberEpoch = int32(h.atoi(t, v))
			case "v":
				r.Version = int16(h.atoi(t, v))
			case "sub":
				r.SubscribedTopicNames = []string{}
				if v != "" {
					r.SubscribedTopicNames = strings.Split(v, ",")
				}
			case "regex":
				r.SubscribedTopicRegex = &v
			case "instance":
				r.InstanceID = &v
			case "rack":
				r.RackID = &v
			case "assignor":
				r.ServerAssignor = &v
			case "rebalance":
				d, err := time.ParseDuration(v)
				if err != nil {
					r.RebalanceTimeout = -1
				} else {
					r.RebalanceTimeout = d
				}
			case "owned":
				if v == "-" {
					r.Owned = nil
				} else {
					r.Owned = h.parseAssignment(t, v)
				}
			default:
				t.Fatalf("%s: unknown argument %s", cmd, k)
			}
		}
		if fields[0] == "join" && r.SubscribedTopicNames == nil && r.SubscribedTopicRegex == nil {
			r.SubscribedTopicNames = []string{}
		}
		resp, e := h.g.Heartbeat(h.now, h.img, r)
		out = append(out, effects(e)...)
		line := fmt.Sprintf("%s: %s", orDash(resp.MemberID), codeName(resp.Err))
		if resp.Err == 0 {
			line += fmt.Sprintf(" epoch=%d", resp.MemberEpoch)
			if resp.Assignment != nil {
				line += " assignment=[" + h.format(resp.Assignment) + "]"
			}
		} else if resp.ErrMessage != "" {
			line += " (" + resp.ErrMessage + ")"
		}
		out = append(out, line)
	case "tick":
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		h.now = h.now.Add(d)
		out = append(out, effects(h.g.Tick(h.now))...)
	case "commit":
		version := int16(9)
		if v, ok := args["v"]; ok {
			version = int16(h.atoi(t, v))
		}
		var parts []TP
		if v, ok := args["parts"]; ok {
			a := h.parseAssignment(t, v)
			for _, id := range a.TopicIDs() {
				for _, p := range a[id] {
					parts = append(parts, TP{id, p})
				}
			}
		}
		code, codes := h.g.ValidateCommit(pos[0], int32(h.atoi(t, args["e"])), version, parts)
		line := "commit " + codeName(code)
		for i, c := range codes {
			line += fmt.Sprintf(" %s:%d=%s", h.names[parts[i].Topic], parts[i].Partition, codeName(c))
		}
		out = append(out, line)
	case "fetch":
		var id *string
		if pos[0] != "-" {
			id = &pos[0]
		}
		out = append(out, "fetch "+codeName(h.g.ValidateFetch(id, int32(h.atoi(t, args["e"])))))
	case "restore":
		b, err := h.g.Snapshot().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !IsSnapshot(b) {
			t.Fatal("IsSnapshot false for a consumer snapshot")
		}
		s, err := UnmarshalSnapshot(b)
		if err != nil {
			t.Fatal(err)
		}
		g, err := Restore("g", h.cfg, h.g.newMemberID, s, h.now)
		if err != nil {
			t.Fatal(err)
		}
		h.g = g
	case "describe":
		d := h.g.Describe()
		out = append(out, fmt.Sprintf("describe state=%s epoch=%d assignment-epoch=%d assignor=%s", d.State, d.Epoch, d.AssignmentEpoch, d.Assignor))
		for _, m := range d.Members {
			out = append(out, fmt.Sprintf("  %s instance=%s epoch=%d names=%v regex=%q topics=%v assignment=[%s] target=[%s]",
				m.ID, orDash(m.InstanceID), m.Epoch, m.SubscribedTopicNames, m.SubscribedTopicRegex, m.SubscribedTopics,
				h.format(m.Assignment), h.format(m.Target)))
		}
		return out
	case "upgrade", "cjoin", "csync", "chb", "cleave", "downgrade", "policy":
		return h.runClassic(t, cmd, fields[0], pos, args)
	default:
		t.Fatalf("unknown command %q", cmd)
	}
	return append(out, h.state()...)
}

func effects(e Effects) []string {
	var out []string
	if e.Persist {
		out = append(out, "persist")
	}
	if e.Downgrade {
		out = append(out, "downgrade")
	}
	return out
}

func (h *harness) atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// parseAssignment reads "a:0,1;b:2" (an empty string is an empty
// assignment).
func (h *harness) parseAssignment(t *testing.T, s string) Assignment {
	a := Assignment{}
	if s == "" {
		return a
	}
	for _, part := range strings.Split(s, ";") {
		name, ps, _ := strings.Cut(part, ":")
		id := topicID(name)
		h.names[id] = name
		a[id] = []int32{}
		for _, p := range strings.Split(ps, ",") {
			a[id] = append(a[id], int32(h.atoi(t, p)))
		}
	}
	return a
}

// format prints an assignment by topic name: "a:0,1 b:2".
func (h *harness) format(a Assignment) string {
	var parts []string
	for id, ps := range a {
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Itoa(int(p)))
		}
		parts = append(parts, h.names[id]+":"+strings.Join(s, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (h *harness) formatSet(set map[TP]int32, withEpochs bool) string {
	a := toAssignment(set)
	if !withEpochs {
		return h.format(a)
	}
	var parts []string
	for id, ps := range a {
		var s []string
		for _, p := range ps {
			s = append(s, fmt.Sprintf("%d@%d", p, set[TP{id, p}]))
		}
		parts = append(parts, h.names[id]+":"+strings.Join(s, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// state prints the group: one line for the group, one per member.
func (h *harness) state() []string {
	g := h.g
	line := fmt.Sprintf("state=%s epoch=%d assignment-epoch=%d", g.State(), g.epoch, g.assignmentEpoch)
	if g.assignor != "" {
		line += " assignor=" + g.assignor
	}
	if next := g.NextDeadline(); !next.IsZero() {
		line += " next=+" + next.Sub(h.now).String()
	}
	out := []string{line}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		target := map[TP]int32{}
		for tp := range g.target[id] {
			target[tp] = 0
		}
		l := fmt.Sprintf("  %s e=%d %s assigned=[%s]", id, m.epoch, m.state, h.formatSet(m.assigned, true))
		if len(m.pending) > 0 {
			l += " revoking=[" + h.formatSet(m.pending, false) + "]"
		}
		l += " target=[" + h.formatSet(target, false) + "]"
		if m.instanceID != "" {
			l += " instance=" + m.instanceID
		}
		if m.classic != nil {
			l += " classic"
		}
		out = append(out, l)
	}
	return out
}

func codeName(code int16) string {
	if code == 0 {
		return "OK"
	}
	if e := kerr.ErrorForCode(code); e != nil {
		return e.(*kerr.Error).Message
	}
	return strconv.Itoa(int(code))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
