package fetchsession_test

// Transcript tests: each file in testdata/ is a scenario of
//
//	command key=value ...
//	----
//	expected output
//
// blocks separated by blank lines; lines starting with # are comments.
// Run with -rewrite to regenerate the expected outputs, then review the
// diff.
//
// Commands:
//
//	config [slots=N] [age=D] [max-partitions=N] [max-session=N] [per-conn=N]
//	                               a new cache (the default one has Kafka's defaults)
//	log P [hw=N] [lso=N] [start=N] [fail] [ok]
//	                               partition P's state as reads see it
//	                               (lso defaults to hw; reads from an
//	                               offset below the lso return records)
//	fetch [conn=N] [session=S] epoch=N [parts=P@OFF,...] [forget=P,...] [hold=NAME]
//	                               Begin, read what it says, Finish;
//	                               with hold, Finish waits for "finish NAME"
//	finish NAME                    Finish of a held fetch
//	advance D                      the clock moves
//	close conn=N                   the connection closes
//	sessions                       what the cache holds
//
// P is a topic letter and a partition number (a0, b12). Session ids are
// random; they are shown as s1, s2, … in the order they were handed out.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/fetchsession"
	transcript "github.com/floe-io/floe/internal/testutil/transcript"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations")

func TestTranscripts(t *testing.T) {
	transcript.Run(t, "testdata/*.txt", *rewrite, func() func(t *testing.T, cmd string) []string {
		h := &harness{start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), log: map[fetchsession.Key]*state{}, held: map[string]*fetchsession.Fetch{}}
		h.now = h.start
		h.configure(fetchsession.Options{})
		return h.run
	})
}

type state struct {
	hw, lso, start int64
	fail           bool
}

type harness struct {
	cache *fetchsession.Cache
	reg   *prometheus.Registry
	start time.Time
	now   time.Time
	log   map[fetchsession.Key]*state
	names map[int32]string // session id → s1, s2, …
	ids   map[string]int32
	held  map[string]*fetchsession.Fetch
}

func (h *harness) configure(opts fetchsession.Options) {
	h.reg = prometheus.NewRegistry()
	opts.Registerer = h.reg
	opts.Now = func() time.Time { return h.now }
	opts.Rand = rand.New(rand.NewPCG(1, 2))
	h.cache = fetchsession.New(opts)
	h.names, h.ids = map[int32]string{}, map[string]int32{}
}

func (h *harness) run(t *testing.T, line string) []string {
	fields := strings.Fields(line)
	cmd, args := fields[0], map[string]string{}
	var pos []string
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	num := func(k string, def int) int {
		v, ok := args[k]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return n
	}
	switch cmd {
	case "config":
		age, _ := time.ParseDuration(args["age"])
		h.configure(fetchsession.Options{
			Slots: num("slots", 0), EvictionAge: age, MaxPartitions: num("max-partitions", 0),
			MaxSessionPartitions: num("max-session", 0), PerConnection: num("per-conn", 0),
		})
		return nil
	case "log":
		k := key(t, pos[0])
		s := h.log[k]
		if s == nil {
			s = &state{}
			h.log[k] = s
		}
		if _, ok := args["hw"]; ok {
			s.hw = int64(num("hw", 0))
			s.lso = s.hw
		}
		s.lso = int64(num("lso", int(s.lso)))
		s.start = int64(num("start", int(s.start)))
		if slices.Contains(pos, "fail") {
			s.fail = true
		}
		if slices.Contains(pos, "ok") {
			s.fail = false
		}
		return nil
	case "fetch":
		req := fetchsession.Request{Conn: uint64(num("conn", 1)), Epoch: int32(num("epoch", 0))}
		if s, ok := args["session"]; ok {
			if id, ok := h.ids[s]; ok {
				req.SessionID = id
			} else {
				n, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("%s: unknown session %s", line, s)
				}
				req.SessionID = int32(n)
			}
		}
		for _, p := range list(args["parts"]) {
			name, off, _ := strings.Cut(p, "@")
			o, _ := strconv.Atoi(off)
			req.Partitions = append(req.Partitions, fetchsession.Partition{Key: key(t, name), Params: fetchsession.Params{FetchOffset: int64(o), MaxBytes: 1 << 20, CurrentLeaderEpoch: -1}})
		}
		for _, p := range list(args["forget"]) {
			req.Forgotten = append(req.Forgotten, key(t, p))
		}
		f, err := h.cache.Begin(req)
		if err != nil {
			return []string{"error " + errName(err)}
		}
		out := []string{fmt.Sprintf("%s: read %s", f.Kind, parts(f.Partitions))}
		if name, ok := args["hold"]; ok {
			h.held[name] = f
			return append(out, "held "+name)
		}
		return append(out, h.finish(f)...)
	case "finish":
		f := h.held[pos[0]]
		delete(h.held, pos[0])
		return h.finish(f)
	case "advance":
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			t.Fatal(err)
		}
		h.now = h.now.Add(d)
		return nil
	case "close":
		h.cache.CloseConn(uint64(num("conn", 1)))
		return h.sessions()
	case "sessions":
		return h.sessions()
	}
	t.Fatalf("unknown command %q", cmd)
	return nil
}

// finish reads f's partitions from the log and finishes it.
func (h *harness) finish(f *fetchsession.Fetch) []string {
	results := make([]fetchsession.Result, len(f.Partitions))
	for i, p := range f.Partitions {
		s := h.log[p.Key]
		if s == nil {
			s = &state{}
		}
		if s.fail {
			results[i] = fetchsession.Result{HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, Failed: true}
			continue
		}
		results[i] = fetchsession.Result{HighWatermark: s.hw, LastStableOffset: s.lso, LogStartOffset: s.start, Records: p.FetchOffset < s.lso}
	}
	id, include, err := h.cache.Finish(f, results)
	if err != nil {
		return []string{fmt.Sprintf("error %s, session %s", errName(err), h.name(id))}
	}
	var answered []string
	for i, p := range f.Partitions {
		if include != nil && !include[i] {
			continue
		}
		r := results[i]
		s := fmt.Sprintf("%s(hw=%d", name(p.Key), r.HighWatermark)
		if r.LastStableOffset != r.HighWatermark {
			s += fmt.Sprintf(" lso=%d", r.LastStableOffset)
		}
		if r.LogStartOffset != 0 {
			s += fmt.Sprintf(" start=%d", r.LogStartOffset)
		}
		if r.Records {
			s += " records"
		}
		if r.Failed {
			s += " error"
		}
		answered = append(answered, s+")")
	}
	return []string{fmt.Sprintf("answer session %s: %s", h.name(id), orNone(answered))}
}

// name names a session id, giving the next name to a new one.
func (h *harness) name(id int32) string {
	if id == 0 {
		return "0"
	}
	if n, ok := h.names[id]; ok {
		return n
	}
	n := fmt.Sprintf("s%d", len(h.names)+1)
	h.names[id], h.ids[n] = n, id
	return n
}

func (h *harness) sessions() []string {
	st := h.cache.Stats()
	out := []string{fmt.Sprintf("%d sessions, %d partitions", st.Sessions, st.Partitions)}
	for _, s := range h.cache.Sessions() {
		out = append(out, fmt.Sprintf("  %s conn=%d epoch=%d partitions=%d created=+%v used=+%v",
			h.name(s.ID), s.Conn, s.Epoch, s.Partitions, s.Created.Sub(h.start), s.LastUsed.Sub(h.start)))
	}
	var ev []string
	for _, r := range []string{"stale", "smaller", "per_connection", "too_large"} {
		if n := value(h.reg, "floe_fetch_session_evictions_total", r); n > 0 {
			ev = append(ev, fmt.Sprintf("%s=%d", r, int(n)))
		}
	}
	if len(ev) > 0 {
		out = append(out, "evictions: "+strings.Join(ev, " "))
	}
	return out
}

// value is the value of one series of a counter vector in reg.
func value(reg *prometheus.Registry, name, label string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func key(t *testing.T, s string) fetchsession.Key {
	i := strings.IndexAny(s, "0123456789")
	if i <= 0 {
		t.Fatalf("bad partition %q", s)
	}
	p, _ := strconv.Atoi(s[i:])
	return fetchsession.Key{Topic: s[:i], Partition: int32(p)}
}

func name(k fetchsession.Key) string { return fmt.Sprintf("%s%d", k.Topic, k.Partition) }

func parts(ps []fetchsession.Partition) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s@%d", name(p.Key), p.FetchOffset))
	}
	return orNone(out)
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, " ")
}

func errName(err error) string {
	switch err {
	case fetchsession.ErrSessionNotFound:
		return "FETCH_SESSION_ID_NOT_FOUND"
	case fetchsession.ErrInvalidEpoch:
		return "INVALID_FETCH_SESSION_EPOCH"
	}
	return err.Error()
}
