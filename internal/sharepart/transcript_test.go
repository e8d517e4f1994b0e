package sharepart

// Transcript tests: each file in testdata/ is a scenario of commands and
// the expected output (see internal/testutil/transcript). Run with
// -rewrite to regenerate the expectations, then review the diff.
//
//	config lock=30s limit=5 locks=2000 start=0   a fresh partition
//	acquire member=a max=10 end=20               ShareFetch acquiring
//	acquire member=a end=20 skip=3-5,9-9         read_committed: 3-5 and 9 archived
//	ack member=a batches=0-2:accept,3:release,4-5:accept/reject
//	release member=a                             member left
//	advance 10s                                  the clock, expiring locks
//	logstart 7                                   retention removed records
//	snapshot / restore                           a change of owner
//	counts                                       running totals, for metrics

import (
	"flag"
	"fmt"
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
		h := &harness{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		h.p = New(h.cfg, 0)
		return h.run
	})
}

type harness struct {
	p    *Partition
	cfg  Config
	now  time.Time
	snap Snapshot
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

func num(t *testing.T, s string, def int64) int64 {
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func dur(t *testing.T, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var ackNames = map[string]AckType{"gap": Gap, "accept": Accept, "release": Release, "reject": Reject, "renew": Renew}

func parseAcks(t *testing.T, spec string) []AckBatch {
	var out []AckBatch
	for _, b := range strings.Split(spec, ",") {
		rng, types, ok := strings.Cut(b, ":")
		if !ok {
			t.Fatalf("bad batch %q", b)
		}
		first, last, ok := strings.Cut(rng, "-")
		if !ok {
			last = first
		}
		ab := AckBatch{First: num(t, first, 0), Last: num(t, last, 0)}
		for _, ty := range strings.Split(types, "/") {
			v, ok := ackNames[ty]
			if !ok {
				v = AckType(num(t, ty, 0))
			}
			ab.Types = append(ab.Types, v)
		}
		out = append(out, ab)
	}
	return out
}

func codeName(c int16) string {
	if c == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(c).(*kerr.Error).Message
}

func (h *harness) run(t *testing.T, line string) []string {
	fields := strings.Fields(line)
	var a map[string]string
	if fields[0] != "advance" && fields[0] != "logstart" {
		a = args(t, fields[1:])
	}
	var out []string
	switch fields[0] {
	case "config":
		h.cfg = Config{
			LockDuration:       dur(t, a["lock"]),
			DeliveryCountLimit: int(num(t, a["limit"], 0)),
			MaxRecordLocks:     int(num(t, a["locks"], 0)),
		}
		h.p = New(h.cfg, num(t, a["start"], 0))
	case "acquire":
		var skip []Span
		for _, r := range strings.Split(a["skip"], ",") {
			if r == "" {
				continue
			}
			first, last, _ := strings.Cut(r, "-")
			skip = append(skip, Span{num(t, first, 0), num(t, last, 0)})
		}
		for _, acq := range h.p.AcquireSkipping(h.now, a["member"], int(num(t, a["max"], 500)), num(t, a["end"], 0), skip) {
			out = append(out, fmt.Sprintf("acquired %s %d-%d count=%d", a["member"], acq.First, acq.Last, acq.DeliveryCount))
		}
		if len(out) == 0 {
			out = append(out, "acquired nothing")
		}
	case "ack":
		out = append(out, "ack "+codeName(h.p.Acknowledge(h.now, a["member"], parseAcks(t, a["batches"]))))
	case "heldby":
		out = append(out, fmt.Sprintf("held by %s: %v", a["member"], h.p.HeldBy(h.now, a["member"], num(t, a["end"], 0))))
	case "release":
		out = append(out, fmt.Sprintf("release changed=%v", h.p.ReleaseMember(a["member"])))
	case "advance":
		h.now = h.now.Add(dur(t, fields[1]))
		out = append(out, fmt.Sprintf("expire changed=%v", h.p.Expire(h.now)))
	case "logstart":
		out = append(out, fmt.Sprintf("logstart changed=%v", h.p.AdvanceStart(num(t, fields[1], 0))))
	case "counts":
		c := h.p.Counts()
		out = append(out, fmt.Sprintf("acquired=%d accepted=%d released=%d rejected=%d expired=%d archived=%d",
			c.Acquired, c.Accepted, c.Released, c.Rejected, c.LockExpired, c.Archived))
	case "snapshot":
		h.snap = h.p.Snapshot()
		var bs []string
		for _, b := range h.snap.Batches {
			bs = append(bs, fmt.Sprintf("%d-%d:%s/%d", b.First, b.Last, b.State, b.DeliveryCount))
		}
		out = append(out, fmt.Sprintf("snapshot start=%d batches=[%s]", h.snap.StartOffset, strings.Join(bs, " ")))
	case "restore":
		p, err := Restore(h.cfg, h.snap)
		if err != nil {
			out = append(out, "restore error: "+err.Error())
			break
		}
		h.p = p
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	return append(out, h.describe())
}

// describe prints the window as runs of offsets sharing state, member,
// delivery count and deadline.
func (h *harness) describe() string {
	type run struct {
		first, last int64
		r           Record
	}
	var runs []run
	for _, r := range h.p.Records() {
		if n := len(runs); n > 0 {
			p := runs[n-1].r
			if p.State == r.State && p.Member == r.Member && p.DeliveryCount == r.DeliveryCount && p.Deadline.Equal(r.Deadline) {
				runs[n-1].last = r.Offset
				continue
			}
		}
		runs = append(runs, run{r.Offset, r.Offset, r})
	}
	var parts []string
	for _, rn := range runs {
		s := fmt.Sprintf("%d-%d:%s/%d", rn.first, rn.last, rn.r.State, rn.r.DeliveryCount)
		if rn.r.State == Acquired {
			s += fmt.Sprintf("/%s/+%s", rn.r.Member, rn.r.Deadline.Sub(h.now))
		}
		parts = append(parts, s)
	}
	next := "none"
	if d := h.p.NextDeadline(); !d.IsZero() {
		next = "+" + d.Sub(h.now).String()
	}
	return fmt.Sprintf("start=%d next=%d deadline=%s window=[%s]", h.p.Start(), h.p.Next(), next, strings.Join(parts, " "))
}
