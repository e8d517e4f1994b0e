package produce

import (
	"testing"
	"time"
)

func TestWindowsFull(t *testing.T) {
	for _, tc := range []struct {
		name      string
		conns     []connWait
		untracked bool
		want      bool
	}{
		{"empty segment", nil, false, false},
		{"one request, window 1", []connWait{{Inflight: 1, Window: 1, InOpen: 1}}, false, true},
		{"window 5, 5 waiting", []connWait{{Inflight: 5, Window: 5, InOpen: 5}}, false, true},
		{"window 5, 4 in flight: it may send one more", []connWait{{Inflight: 4, Window: 5, InOpen: 4}}, false, false},
		{"one still on an earlier segment", []connWait{{Inflight: 5, Window: 5, InOpen: 4}}, false, false},
		{"an acks=0 sender", []connWait{{Inflight: 1, Window: 1, InOpen: 1}}, true, false},
		{"two full", []connWait{{Inflight: 5, Window: 5, InOpen: 5}, {Inflight: 1, Window: 1, InOpen: 1}}, false, true},
		{"one of two not full", []connWait{{Inflight: 5, Window: 5, InOpen: 5}, {Inflight: 2, Window: 3, InOpen: 2}}, false, false},
		{"window not learnt yet counts as 1", []connWait{{Inflight: 1, Window: 0, InOpen: 1}}, false, true},
		{"nothing in flight", []connWait{{Inflight: 0, Window: 0, InOpen: 0}}, false, false},
		{"window 5 less a reserve of 1, 4 waiting", []connWait{{Inflight: 4, Window: 5, InOpen: 4, Reserve: 1}}, false, true},
		{"window 5 less a reserve of 2, 2 waiting", []connWait{{Inflight: 2, Window: 5, InOpen: 2, Reserve: 2}}, false, false},
		{"window 5 less a reserve of 2, 3 waiting", []connWait{{Inflight: 3, Window: 5, InOpen: 3, Reserve: 2}}, false, true},
		{"a reserve, one still on an earlier segment", []connWait{{Inflight: 4, Window: 5, InOpen: 3, Reserve: 1}}, false, false},
		{"a reserve as large as the window still needs one waiting", []connWait{{Inflight: 0, Window: 2, InOpen: 0, Reserve: 2}}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := windowsFull(tc.conns, tc.untracked); got != tc.want {
				t.Fatalf("windowsFull(%+v, %v) = %v, want %v", tc.conns, tc.untracked, got, tc.want)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name                string
		window              int
		interval, flushTime time.Duration
		fixed               int
		want                int
	}{
		{"estimated, nothing known yet", 5, 0, 0, -1, 0},
		{"estimated, no flush yet", 5, 10 * ms, 0, -1, 0},
		{"estimated, no pace yet", 5, 0, 40 * ms, -1, 0},
		{"estimated, one request during a flush", 5, 50 * ms, 40 * ms, -1, 1},
		{"estimated, exactly one", 5, 40 * ms, 40 * ms, -1, 1},
		{"estimated, just over one", 5, 40 * ms, 41 * ms, -1, 2},
		{"estimated, four, capped at half the window", 5, 10 * ms, 40 * ms, -1, 2},
		{"estimated, window 1 has none to spare", 1, 10 * ms, 40 * ms, -1, 0},
		{"estimated, window 3 spares one", 3, 10 * ms, 40 * ms, -1, 1},
		{"fixed", 5, 50 * ms, 40 * ms, 3, 3},
		{"fixed, at most the window less one", 5, 50 * ms, 40 * ms, 9, 4},
		{"fixed, window 1", 1, 50 * ms, 40 * ms, 2, 0},
		{"none (the default)", 5, 10 * ms, 40 * ms, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reserve(tc.window, tc.interval, tc.flushTime, tc.fixed); got != tc.want {
				t.Fatalf("reserve(%d, %v, %v, %d) = %d, want %d", tc.window, tc.interval, tc.flushTime, tc.fixed, got, tc.want)
			}
		})
	}
}

func TestNoteRequest(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var c connWindow
	c.noteRequest(t0)
	if c.interval != 0 {
		t.Fatalf("one request: interval %v, want 0", c.interval)
	}
	c.noteRequest(t0.Add(40 * time.Millisecond))
	if c.interval != 40*time.Millisecond {
		t.Fatalf("first gap: interval %v, want 40ms", c.interval)
	}
	c.noteRequest(t0.Add(60 * time.Millisecond)) // gap 20ms: 40 + (20-40)/4
	if c.interval != 35*time.Millisecond {
		t.Fatalf("second gap: interval %v, want 35ms", c.interval)
	}
	c.noteRequest(t0.Add(time.Minute)) // idle, not a pace
	if c.interval != 35*time.Millisecond {
		t.Fatalf("after an idle minute: interval %v, want 35ms", c.interval)
	}
}

func TestEarlyFlushAt(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		now, last time.Time
		min       time.Duration
		wantNow   bool
		wantAt    time.Time
	}{
		{"first flush ever", t0, time.Time{}, 125 * time.Millisecond, true, t0},
		{"interval passed", t0, t0.Add(-200 * time.Millisecond), 125 * time.Millisecond, true, t0},
		{"exactly at the interval", t0, t0.Add(-125 * time.Millisecond), 125 * time.Millisecond, true, t0},
		{"too soon", t0, t0.Add(-50 * time.Millisecond), 125 * time.Millisecond, false, t0.Add(75 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now, at := earlyFlushAt(tc.now, tc.last, tc.min)
			if now != tc.wantNow || !at.Equal(tc.wantAt) {
				t.Fatalf("earlyFlushAt = %v, %v; want %v, %v", now, at, tc.wantNow, tc.wantAt)
			}
		})
	}
}

// TestStreamsBounded: distinct latency targets make at most maxStreams
// streams; a target beyond them goes to the slowest stream at least as
// fast as asked, or to the fastest; targets at or above the linger, or
// unset, go to the agent's stream.
func TestStreamsBounded(t *testing.T) {
	w := NewWriter(nil, nil, Options{Linger: 250 * time.Millisecond})
	w.mu.Lock()
	defer w.mu.Unlock()
	var id [16]byte
	if st := w.streamForLocked(0, id); st != w.main {
		t.Fatal("no target: not the agent's stream")
	}
	if st := w.streamForLocked(time.Second, id); st != w.main {
		t.Fatal("a target above the linger: not the agent's stream")
	}
	if st := w.streamForLocked(time.Millisecond, id); st.linger != minStreamLinger {
		t.Fatalf("a 1 ms target got linger %v, want the %v floor", st.linger, minStreamLinger)
	}
	for i := range 20 {
		w.streamForLocked(time.Duration(10+10*i)*time.Millisecond, id)
	}
	if len(w.streams) != maxStreams {
		t.Fatalf("%d streams, want at most %d", len(w.streams), maxStreams)
	}
	// Made so far: 250 (agent), 5, 10, 20, 30, 40, 50, 60.
	if st := w.streamForLocked(95*time.Millisecond, id); st.linger != 60*time.Millisecond {
		t.Fatalf("95 ms target went to %v, want the 60 ms stream", st.linger)
	}
	if st := w.streamForLocked(7*time.Millisecond, id); st.linger != 5*time.Millisecond {
		t.Fatalf("7 ms target went to %v, want the 5 ms stream", st.linger)
	}
	if st := w.streams[50*time.Millisecond]; st.minInterval != 25*time.Millisecond {
		t.Fatalf("50 ms stream's minimum interval %v, want the agent's scaled: 25ms", st.minInterval)
	}
}
