package sharepart

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestModel drives one share partition with random sequences of
// acquisitions by several members, acknowledgements of every type (good
// and bad), members leaving, the clock moving, the log growing and
// losing its head, and changes of owner through Snapshot and Restore,
// and checks after every step that:
//
//   - no offset is held by two members at once (a model of the locks it
//     handed out, expired by the same clock);
//   - an acknowledged or archived offset is never handed out again;
//   - the start offset never moves back, and every offset below it was
//     acknowledged, archived or removed by retention;
//   - no record is delivered more than the delivery count limit, and the
//     delivery count it carries is the number of times it was handed out;
//   - the window never exceeds max.record.locks;
//   - a record whose delivery failed at the limit is archived;
//   - an offset to skip (read_committed: an aborted transaction's or a
//     marker's) is never handed out, and is archived once reached.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			LockDuration:       time.Duration(rapid.IntRange(1, 5).Draw(t, "lock")) * time.Second,
			DeliveryCountLimit: rapid.IntRange(1, 4).Draw(t, "limit"),
			MaxRecordLocks:     rapid.IntRange(1, 12).Draw(t, "locks"),
		}
		m := &model{
			t: t, cfg: cfg, p: New(cfg, 0),
			now:        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			held:       map[int64]hold{},
			done:       map[int64]bool{},
			deliveries: map[int64]int16{},
			members:    []string{"a", "b", "c"},
			abortEvery: int64(rapid.IntRange(0, 4).Draw(t, "abortEvery")),
		}
		steps := rapid.IntRange(1, 150).Draw(t, "steps")
		for range steps {
			m.step()
			m.check()
		}
	})
}

type hold struct {
	member   string
	deadline time.Time
}

type model struct {
	t          *rapid.T
	cfg        Config
	p          *Partition
	now        time.Time
	logStart   int64
	logEnd     int64
	lastStart  int64
	held       map[int64]hold
	done       map[int64]bool // acknowledged or archived
	deliveries map[int64]int16
	members    []string
	// abortEvery > 0 makes every offset that is a multiple of it one a
	// read_committed group skips.
	abortEvery int64
	// acquired counts the deliveries handed out since the last restore,
	// which Counts().Acquired must equal.
	acquired int64
}

func (m *model) aborted(off int64) bool { return m.abortEvery > 0 && off%m.abortEvery == 0 }

// skip lists the offsets to skip in [from, end) as Acquire takes them.
func (m *model) skip(from, end int64) []Span {
	var out []Span
	for off := from; off < end; off++ {
		if m.aborted(off) {
			out = append(out, Span{off, off})
		}
	}
	return out
}

// expire drops the model's locks that the partition must have expired,
// archiving those at the delivery limit.
func (m *model) expire() {
	for off, h := range m.held {
		if !h.deadline.After(m.now) {
			m.fail(off)
		}
	}
}

func (m *model) fail(off int64) {
	delete(m.held, off)
	if int(m.deliveries[off]) >= m.cfg.DeliveryCountLimit {
		m.done[off] = true
	}
}

func (m *model) step() {
	t := m.t
	switch rapid.IntRange(0, 8).Draw(t, "op") {
	case 0, 1:
		m.logEnd += int64(rapid.IntRange(0, 6).Draw(t, "produce"))
	case 2, 3:
		member := rapid.SampledFrom(m.members).Draw(t, "member")
		m.expire()
		// The caller may have read less than the whole log.
		end := m.logEnd - int64(rapid.IntRange(0, 2).Draw(t, "short"))
		next := m.p.Next()
		// A partition held up by some member has nothing to hand out to
		// anyone, and that member holds one of its records.
		heldBy := ""
		for _, mb := range m.members {
			if m.p.HeldBy(m.now, mb, end) {
				heldBy = mb
			}
		}
		got := m.p.AcquireSkipping(m.now, member, rapid.IntRange(0, 8).Draw(t, "max"), end, m.skip(m.p.Start(), end))
		if heldBy != "" {
			if len(got) > 0 {
				t.Fatalf("held up by %s, yet %s acquired %+v", heldBy, member, got)
			}
			holds := false
			for _, h := range m.held {
				holds = holds || h.member == heldBy
			}
			if !holds {
				t.Fatalf("held up by %s, which holds nothing", heldBy)
			}
		}
		// Skipped offsets are never acquired, so they entered the window
		// archived.
		for off := next; off < m.p.Next(); off++ {
			if m.aborted(off) {
				m.done[off] = true
			}
		}
		for _, a := range got {
			m.acquired += a.Last - a.First + 1
			if a.First > a.Last || a.First < m.p.Start() || a.Last >= end {
				t.Fatalf("acquired %d-%d outside [%d, %d)", a.First, a.Last, m.p.Start(), end)
			}
			for off := a.First; off <= a.Last; off++ {
				if h, ok := m.held[off]; ok {
					t.Fatalf("offset %d handed to %s while %s holds it until %s", off, member, h.member, h.deadline)
				}
				if m.aborted(off) {
					t.Fatalf("offset %d of an aborted transaction handed out", off)
				}
				if m.done[off] {
					t.Fatalf("offset %d handed out again after it was acknowledged or archived", off)
				}
				m.deliveries[off]++
				if m.deliveries[off] != a.DeliveryCount {
					t.Fatalf("offset %d delivery count %d, model %d", off, a.DeliveryCount, m.deliveries[off])
				}
				if int(a.DeliveryCount) > m.cfg.DeliveryCountLimit {
					t.Fatalf("offset %d delivered %d times, limit %d", off, a.DeliveryCount, m.cfg.DeliveryCountLimit)
				}
				m.held[off] = hold{member, m.now.Add(m.cfg.LockDuration)}
			}
		}
	case 4, 5:
		member := rapid.SampledFrom(m.members).Draw(t, "member")
		m.expire()
		var batches []AckBatch
		next := m.p.Start() + int64(rapid.IntRange(-2, 3).Draw(t, "from"))
		for range rapid.IntRange(1, 3).Draw(t, "batches") {
			first := next
			last := first + int64(rapid.IntRange(-1, 3).Draw(t, "len"))
			b := AckBatch{First: first, Last: last}
			if rapid.Bool().Draw(t, "per-offset") && last >= first {
				for range last - first + 1 {
					b.Types = append(b.Types, AckType(rapid.IntRange(0, 4).Draw(t, "type")))
				}
			} else {
				b.Types = []AckType{AckType(rapid.IntRange(-1, 5).Draw(t, "type"))}
			}
			batches = append(batches, b)
			next = last + 1 + int64(rapid.IntRange(0, 2).Draw(t, "skip"))
		}
		// The model's verdict: all offsets held by member and well formed.
		ok := true
		prev := int64(-1 << 62)
		for _, b := range batches {
			if b.First > b.Last || b.First <= prev {
				ok = false
				break
			}
			prev = b.Last
			if len(b.Types) != 1 && int64(len(b.Types)) != b.Last-b.First+1 {
				ok = false
			}
			for _, ty := range b.Types {
				ok = ok && ty >= Gap && ty <= Renew
			}
			for off := b.First; off <= b.Last; off++ {
				ok = ok && m.held[off].member == member
			}
		}
		code := m.p.Acknowledge(m.now, member, batches)
		if (code == 0) != ok {
			t.Fatalf("ack %+v by %s: code %d, model expected ok=%v", batches, member, code, ok)
		}
		if code != 0 {
			return
		}
		for _, b := range batches {
			for off := b.First; off <= b.Last; off++ {
				ty := b.Types[0]
				if len(b.Types) > 1 {
					ty = b.Types[off-b.First]
				}
				switch ty {
				case Release:
					m.fail(off)
				case Renew:
					m.held[off] = hold{member, m.now.Add(m.cfg.LockDuration)}
				default:
					delete(m.held, off)
					m.done[off] = true
				}
			}
		}
	case 6:
		member := rapid.SampledFrom(m.members).Draw(t, "member")
		m.p.ReleaseMember(member)
		for off, h := range m.held {
			if h.member == member {
				m.fail(off)
			}
		}
	case 7:
		m.now = m.now.Add(time.Duration(rapid.IntRange(0, 3000).Draw(t, "ms")) * time.Millisecond)
		m.p.Expire(m.now)
		m.expire()
	case 8:
		if rapid.Bool().Draw(t, "retention") {
			m.logStart = min(m.logEnd, m.logStart+int64(rapid.IntRange(0, 4).Draw(t, "delete")))
			m.p.AdvanceStart(m.logStart)
			for off := range m.held {
				if off < m.logStart {
					delete(m.held, off)
				}
			}
			return
		}
		// A change of owner: locks are lost, everything else kept.
		s := m.p.Snapshot()
		p, err := Restore(m.cfg, s)
		if err != nil {
			t.Fatalf("restore %+v: %v", s, err)
		}
		m.p = p
		m.acquired = 0
		for off := range m.held {
			m.fail(off)
		}
	}
}

func (m *model) check() {
	t := m.t
	if got := m.p.Counts().Acquired; got != m.acquired {
		t.Fatalf("Counts().Acquired = %d, model %d", got, m.acquired)
	}
	start := m.p.Start()
	if start < m.lastStart {
		t.Fatalf("start offset moved back from %d to %d", m.lastStart, start)
	}
	m.lastStart = start
	if n := m.p.InFlight(); n > m.cfg.MaxRecordLocks {
		t.Fatalf("window holds %d offsets, bound %d", n, m.cfg.MaxRecordLocks)
	}
	for off := m.logStart; off < start; off++ {
		if !m.done[off] {
			t.Fatalf("start offset %d passed offset %d that was never acknowledged or archived", start, off)
		}
	}
	for _, r := range m.p.Records() {
		h, held := m.held[r.Offset]
		switch {
		case r.State == Acquired && (!held || h.member != r.Member):
			t.Fatalf("offset %d acquired by %q, model holds %+v", r.Offset, r.Member, h)
		case r.State != Acquired && held:
			t.Fatalf("offset %d %s, model says %s holds it", r.Offset, r.State, h.member)
		case (r.State == Acknowledged || r.State == Archived) != m.done[r.Offset]:
			t.Fatalf("offset %d %s, model done=%v", r.Offset, r.State, m.done[r.Offset])
		case r.DeliveryCount != m.deliveries[r.Offset]:
			t.Fatalf("offset %d delivery count %d, model %d", r.Offset, r.DeliveryCount, m.deliveries[r.Offset])
		}
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	for i, s := range []Snapshot{
		{StartOffset: -1},
		{StartOffset: 5, Batches: []Batch{{First: 4, Last: 6}}},
		{StartOffset: 0, Batches: []Batch{{First: 0, Last: 3}, {First: 3, Last: 4}}},
		{StartOffset: 0, Batches: []Batch{{First: 2, Last: 1}}},
		{StartOffset: 0, Batches: []Batch{{First: 0, Last: MaxWindow}}},
		{StartOffset: 0, Batches: []Batch{{First: 0, Last: 0, State: Acquired}}},
		{StartOffset: 0, Batches: []Batch{{First: 0, Last: 0, DeliveryCount: -1}}},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if _, err := Restore(Config{}, s); err == nil {
				t.Fatalf("Restore(%+v) accepted", s)
			}
		})
	}
	// A gap between batches comes back available.
	p, err := Restore(Config{}, Snapshot{StartOffset: 2, Batches: []Batch{{First: 2, Last: 2, State: Acknowledged, DeliveryCount: 1}, {First: 4, Last: 4, State: Archived, DeliveryCount: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Start() != 3 || p.Next() != 5 || p.Records()[0].State != Available {
		t.Fatalf("restored start=%d next=%d records=%+v", p.Start(), p.Next(), p.Records())
	}
}

func TestParseReset(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Reset
		bad  bool
	}{
		{in: "", want: Reset{Kind: ResetLatest}},
		{in: "latest", want: Reset{Kind: ResetLatest}},
		{in: "EARLIEST", want: Reset{Kind: ResetEarliest}},
		{in: "by_duration:PT1H", want: Reset{Kind: ResetByDuration, Duration: time.Hour}},
		{in: "by_duration:P1DT2H3M4.5S", want: Reset{Kind: ResetByDuration, Duration: 26*time.Hour + 3*time.Minute + 4500*time.Millisecond}},
		{in: "by_duration:P2D", want: Reset{Kind: ResetByDuration, Duration: 48 * time.Hour}},
		{in: "by_duration:-PT1H", bad: true},
		{in: "by_duration:PT", bad: true},
		{in: "by_duration:P", bad: true},
		{in: "by_duration:PT1X", bad: true},
		{in: "by_duration:PT-1H", bad: true},
		{in: "by_duration:", bad: true},
		{in: "by_duration:P99999999999999999999D", bad: true},
		{in: "none", bad: true},
	} {
		got, err := ParseReset(c.in)
		if (err != nil) != c.bad || !c.bad && got != c.want {
			t.Errorf("ParseReset(%q) = %+v, %v; want %+v bad=%v", c.in, got, err, c.want, c.bad)
		}
	}
	now := time.UnixMilli(1_000_000)
	forTime := func(ms int64) int64 { return ms / 1000 } // one record a second
	for _, c := range []struct {
		r    Reset
		want int64
	}{
		{Reset{Kind: ResetLatest}, 900},
		{Reset{Kind: ResetEarliest}, 10},
		{Reset{Kind: ResetByDuration, Duration: 100 * time.Second}, 900},
		{Reset{Kind: ResetByDuration, Duration: 500 * time.Second}, 500},
		{Reset{Kind: ResetByDuration, Duration: 999 * time.Second}, 10},
	} {
		if got := c.r.StartOffset(now, 10, 900, forTime); got != c.want {
			t.Errorf("%+v.StartOffset = %d, want %d", c.r, got, c.want)
		}
	}
}
