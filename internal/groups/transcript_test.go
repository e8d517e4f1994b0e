package groups

// Transcript tests: each file in testdata/ is a scenario, a sequence of
//
//	command key=value ...
//	----
//	expected output
//
// blocks separated by blank lines; lines starting with # are comments.
// Run with -rewrite to regenerate the expected outputs, then review the
// diff.

import (
	"flag"
	"fmt"
	"sort"
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
	ids   int
	snap  Snapshot
}

func newHarness() *harness {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &harness{now: start, start: start, cfg: Config{MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute}}
	h.g = New("g", h.cfg, h.nextID)
	return h
}

func (h *harness) nextID(client string) string {
	h.ids++
	return client + "-" + strconv.Itoa(h.ids)
}

func codeName(c int16) string {
	if c == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(c).(*kerr.Error).Message
}

func args(t *testing.T, fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("bad argument %q", f)
		}
		m[k] = v
	}
	return m
}

func dur(t *testing.T, s, def string) time.Duration {
	if s == "" {
		s = def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func num(t *testing.T, s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func protocols(spec, client string) []Protocol {
	if spec == "" {
		spec = "range:" + client
	}
	var ps []Protocol
	for _, p := range strings.Split(spec, ",") {
		name, meta, _ := strings.Cut(p, ":")
		ps = append(ps, Protocol{Name: name, Metadata: []byte(meta)})
	}
	return ps
}

func (h *harness) run(t *testing.T, line string) []string {
	fields := strings.Fields(line)
	var a map[string]string
	if fields[0] != "advance" {
		a = args(t, fields[1:])
	}
	var out []string
	var e Effects
	switch fields[0] {
	case "config":
		h.cfg = Config{
			InitialRebalanceDelay: dur(t, a["delay"], "0s"),
			MinSessionTimeout:     dur(t, a["min-session"], "1s"),
			MaxSessionTimeout:     dur(t, a["max-session"], "1m"),
			MaxSize:               num(t, a["max-size"], 0),
		}
		h.g = New("g", h.cfg, h.nextID)
	case "join":
		client := a["client"]
		e = h.g.Join(h.now, Token(num(t, a["tok"], 0)), JoinRequest{
			Version: int16(num(t, a["v"], 9)), MemberID: a["member"], InstanceID: a["instance"],
			ClientID: client, ClientHost: "/127.0.0.1",
			SessionTimeout:   dur(t, a["session"], "10s"),
			RebalanceTimeout: dur(t, a["rebalance"], "10s"),
			ProtocolType:     valueOr(a, "type", "consumer"),
			Protocols:        protocols(a["protocols"], client),
		})
	case "sync":
		assign := map[string][]byte{}
		if a["assign"] != "" {
			for _, kv := range strings.Split(a["assign"], ",") {
				k, v, _ := strings.Cut(kv, ":")
				assign[k] = []byte(v)
			}
		}
		e = h.g.Sync(h.now, Token(num(t, a["tok"], 0)), SyncRequest{
			MemberID: a["member"], InstanceID: a["instance"], Generation: int32(num(t, a["gen"], 0)),
			ProtocolType: a["type"], Protocol: a["proto"], Assignments: assign,
		})
	case "heartbeat":
		out = append(out, "heartbeat "+codeName(h.g.Heartbeat(h.now, a["member"], a["instance"], int32(num(t, a["gen"], 0)))))
	case "commit":
		out = append(out, "commit "+codeName(h.g.ValidateCommit(h.now, a["member"], a["instance"], int32(num(t, a["gen"], -1)))))
	case "leave":
		var ls []LeaveMember
		for _, s := range strings.Split(a["members"], ",") {
			id, inst, _ := strings.Cut(s, "@")
			ls = append(ls, LeaveMember{MemberID: id, InstanceID: inst})
		}
		var res []LeaveResult
		res, e = h.g.Leave(h.now, ls)
		for _, r := range res {
			out = append(out, fmt.Sprintf("leave member=%s instance=%s %s", r.MemberID, r.InstanceID, codeName(r.Err)))
		}
	case "advance":
		// Step through every deadline on the way, as a timer would.
		target := h.now.Add(dur(t, fields[1], ""))
		for next := h.g.NextDeadline(); !next.IsZero() && !next.After(target); next = h.g.NextDeadline() {
			if next.After(h.now) {
				h.now = next
			}
			step := h.g.Tick(h.now)
			e.Persist = e.Persist || step.Persist
			e.Replies = append(e.Replies, step.Replies...)
			if !h.g.NextDeadline().After(h.now) {
				break
			}
		}
		h.now = target
		step := h.g.Tick(h.now)
		e.Persist = e.Persist || step.Persist
		e.Replies = append(e.Replies, step.Replies...)
	case "snapshot":
		h.snap = h.g.Snapshot()
		b, err := h.snap.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalSnapshot(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("snapshot state=%s gen=%d members=%d", h.snap.State, h.snap.Generation, len(h.snap.Members)))
	case "restore":
		g, err := Restore("g", h.cfg, h.nextID, h.snap, h.now)
		if err != nil {
			out = append(out, "restore error: "+err.Error())
			break
		}
		h.g = g
	case "describe":
		for _, m := range h.g.Members() {
			out = append(out, fmt.Sprintf("member %s instance=%s client=%s metadata=%s assignment=%s", m.ID, m.InstanceID, m.ClientID, m.Metadata, m.Assignment))
		}
	case "kill":
		e = h.g.Kill(kerr.NotCoordinator.Code)
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	out = append(out, h.effects(e)...)
	return append(out, h.state())
}

func valueOr(a map[string]string, k, def string) string {
	if v, ok := a[k]; ok {
		return v
	}
	return def
}

func (h *harness) effects(e Effects) []string {
	var out []string
	if e.Persist {
		out = append(out, "persist")
	}
	for _, r := range e.Replies {
		switch {
		case r.Join != nil:
			j := r.Join
			s := fmt.Sprintf("tok=%d join %s member=%s gen=%d", r.To, codeName(j.Err), j.MemberID, j.Generation)
			if j.Err == 0 {
				s += fmt.Sprintf(" type=%s proto=%s leader=%s", j.ProtocolType, j.Protocol, j.Leader)
			}
			if j.SkipAssignment {
				s += " skip-assignment"
			}
			if len(j.Members) > 0 {
				var ms []string
				for _, m := range j.Members {
					ms = append(ms, m.ID+"("+string(m.Metadata)+")")
				}
				s += " members=" + strings.Join(ms, ",")
			}
			out = append(out, s)
		case r.Sync != nil:
			s := fmt.Sprintf("tok=%d sync %s", r.To, codeName(r.Sync.Err))
			if r.Sync.Err == 0 {
				s += fmt.Sprintf(" proto=%s assignment=%q", r.Sync.Protocol, r.Sync.Assignment)
			}
			out = append(out, s)
		}
	}
	return out
}

func (h *harness) state() string {
	g := h.g
	var members []string
	for _, id := range g.order {
		members = append(members, id)
	}
	var pending []string
	for id := range g.pending {
		pending = append(pending, id)
	}
	sort.Strings(pending)
	s := fmt.Sprintf("state=%s gen=%d proto=%s leader=%s members=[%s]", g.state, g.generation, g.protocol, g.leader, strings.Join(members, " "))
	if len(pending) > 0 {
		s += " pending=[" + strings.Join(pending, " ") + "]"
	}
	if w := g.Waiting(); len(w) > 0 {
		var ws []string
		for _, tok := range w {
			ws = append(ws, strconv.Itoa(int(tok)))
		}
		s += " waiting=[" + strings.Join(ws, " ") + "]"
	}
	if next := g.NextDeadline(); !next.IsZero() {
		s += " next=+" + next.Sub(h.start).String()
	}
	return s
}
