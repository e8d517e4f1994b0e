package bench

import (
	"testing"
	"time"
)

// simulate sends a fixed-rate schedule through a server that serves one
// request at a time, on a simulated clock, and records each record's
// latency twice: from its intended send time (what the Pacer is for) and
// from the moment it was actually sent (what a closed-loop benchmark
// measures). service gives each request's service time by its send time.
func simulate(t *testing.T, perSecond float64, length time.Duration, service func(at time.Duration) time.Duration) (fromIntended, fromSend *Histogram, sent int) {
	t.Helper()
	start := time.Unix(1_000_000, 0)
	end := start.Add(length)
	p := NewPacer(start, perSecond)
	fromIntended, fromSend = NewHistogram(), NewHistogram()
	clock := start
	for clock.Before(end) {
		first, n := p.Due(clock)
		if n == 0 {
			clock = clock.Add(p.Wait(clock))
			continue
		}
		for i := first; i < first+n; i++ {
			intended := p.Intended(i)
			if !intended.Before(end) {
				break
			}
			sentAt := clock
			clock = clock.Add(service(clock.Sub(start)))
			fromIntended.Record(clock.Sub(intended))
			fromSend.Record(clock.Sub(sentAt))
			sent++
		}
	}
	return fromIntended, fromSend, sent
}

func TestPacerCorrectsCoordinatedOmission(t *testing.T) {
	// 1,000 records/s for 10 s, 100 µs each, except one request sent at
	// 5 s that stalls for a whole second.
	stallAt := 5 * time.Second
	fromIntended, fromSend, sent := simulate(t, 1000, 10*time.Second, func(at time.Duration) time.Duration {
		if at >= stallAt && at < stallAt+time.Millisecond {
			return time.Second
		}
		return 100 * time.Microsecond
	})
	if sent != 10000 {
		t.Fatalf("sent %d records, want all 10,000 of the schedule", sent)
	}
	// The stall delayed the ~1,000 records due during it, each by the time
	// left of it: about uniform from 1 s down to 0, so the slowest 1% of
	// all records (100) waited 0.9 to 1 s.
	if p99 := fromIntended.Quantile(0.99); p99 < 850*time.Millisecond || p99 > time.Second+time.Millisecond {
		t.Errorf("p99 from intended time = %v, want about 900ms", p99)
	}
	if p95 := fromIntended.Quantile(0.95); p95 < 400*time.Millisecond || p95 > 600*time.Millisecond {
		t.Errorf("p95 from intended time = %v, want about 500ms", p95)
	}
	// Measured from the actual send, the stall is one slow request in ten
	// thousand and vanishes from every percentile but the maximum.
	if p99 := fromSend.Quantile(0.99); p99 > time.Millisecond {
		t.Errorf("p99 from send time = %v: expected coordinated omission to hide the stall", p99)
	}
	if m := fromSend.Quantile(1); m < time.Second {
		t.Errorf("max from send time = %v, want the 1s stall", m)
	}
}

func TestPacerSteadyStateLatency(t *testing.T) {
	fromIntended, _, sent := simulate(t, 500, 2*time.Second, func(time.Duration) time.Duration { return time.Millisecond })
	if sent != 1000 {
		t.Fatalf("sent %d, want 1000", sent)
	}
	if got := fromIntended.Quantile(1); got != time.Millisecond {
		t.Errorf("max latency %v: a server faster than the schedule should add only its service time", got)
	}
}

func TestPacerDueWaitMissed(t *testing.T) {
	start := time.Unix(0, 0)
	p := NewPacer(start, 10) // one every 100ms
	if first, n := p.Due(start.Add(-time.Second)); n != 0 || first != 0 {
		t.Fatalf("before the start: got %d records from %d", n, first)
	}
	if first, n := p.Due(start.Add(250 * time.Millisecond)); first != 0 || n != 3 {
		t.Fatalf("at 250ms: records %d+%d, want 0+3 (due at 0, 100, 200ms)", first, n)
	}
	if w := p.Wait(start.Add(250 * time.Millisecond)); w != 50*time.Millisecond {
		t.Fatalf("wait %v, want 50ms until the record due at 300ms", w)
	}
	var waited []time.Duration
	end := start.Add(time.Second)
	n := p.Missed(end, func(intended time.Time) { waited = append(waited, end.Sub(intended)) })
	if n != 7 || waited[0] != 700*time.Millisecond || waited[6] != 100*time.Millisecond {
		t.Fatalf("missed %d %v, want 7 records due at 300..900ms", n, waited)
	}
	if _, n := p.Due(end.Add(-time.Nanosecond)); n != 0 {
		t.Fatalf("missed records handed out again: %d", n)
	}

	free := NewPacer(start, 0)
	if free.Paced() || free.Wait(start) != 0 {
		t.Fatal("an unpaced pacer must never wait")
	}
	if _, n := free.Due(start); n != 1 {
		t.Fatalf("unpaced Due handed out %d, want 1", n)
	}
}
