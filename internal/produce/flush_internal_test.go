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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := windowsFull(tc.conns, tc.untracked); got != tc.want {
				t.Fatalf("windowsFull(%+v, %v) = %v, want %v", tc.conns, tc.untracked, got, tc.want)
			}
		})
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
