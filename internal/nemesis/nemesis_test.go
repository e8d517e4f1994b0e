package nemesis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestScheduleFromSeed(t *testing.T) {
	fs := []Fault{
		New("kill", "a", nil, nil),
		New("pause", "b", nil, nil),
		New("partition", "c", nil, nil),
	}
	o := ScheduleOptions{Duration: 2 * time.Minute}
	a, b := NewSchedule(42, fs, o), NewSchedule(42, fs, o)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("schedules of one seed: %d and %d steps", len(a), len(b))
	}
	var total time.Duration
	for i := range a {
		if a[i].Fault != b[i].Fault || a[i].Quiet != b[i].Quiet || a[i].Active != b[i].Active {
			t.Fatalf("step %d differs between two schedules of one seed", i)
		}
		if a[i].Active < 3*time.Second || a[i].Active >= 8*time.Second || a[i].Quiet < 2*time.Second || a[i].Quiet >= 5*time.Second {
			t.Errorf("step %d: quiet %v, active %v out of bounds", i, a[i].Quiet, a[i].Active)
		}
		total += a[i].Quiet + a[i].Active
	}
	if total > o.Duration {
		t.Errorf("schedule takes %v, more than %v", total, o.Duration)
	}
	c := NewSchedule(43, fs, o)
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i].Quiet == c[i].Quiet && a[i].Fault == c[i].Fault
	}
	if same {
		t.Errorf("seeds 42 and 43 gave the same schedule")
	}
}

func TestRunHealsWhenStopped(t *testing.T) {
	var started, healed atomic.Int32
	f := New("kill", "a",
		func(context.Context) error { started.Add(1); return nil },
		func(context.Context) error { healed.Add(1); return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	ivs := Run(ctx, []Step{{Fault: f, Quiet: 10 * time.Millisecond, Active: time.Hour}}, nil)
	if started.Load() != 1 || healed.Load() != 1 || len(ivs) != 1 {
		t.Fatalf("started %d, healed %d, intervals %v; want 1, 1, 1", started.Load(), healed.Load(), ivs)
	}
}

// TestBucketProxy: a PUT the proxy "loses" is stored and answered 500; a
// reset closes the connection without an answer; an outage answers 503;
// healed, requests pass.
func TestBucketProxy(t *testing.T) {
	var stored atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			stored.Add(1)
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p, err := StartBucketProxy(srv.URL, "b", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	put := func() (int, error) {
		req, _ := http.NewRequest(http.MethodPut, p.URL+"/b/key", strings.NewReader("data"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	p.Set(BucketFaults{PutLost: 1})
	if code, err := put(); err != nil || code != 500 || stored.Load() != 1 {
		t.Errorf("lost PUT: %d %v, stored %d; want 500 and stored", code, err, stored.Load())
	}
	p.Set(BucketFaults{Reset: 1})
	if _, err := put(); err == nil {
		t.Errorf("reset: the PUT got an answer")
	}
	p.Set(BucketFaults{Outage: true})
	if code, err := put(); err != nil || code != 503 {
		t.Errorf("outage: %d %v, want 503", code, err)
	}
	p.Set(BucketFaults{})
	if code, err := put(); err != nil || code != 200 {
		t.Errorf("healed: %d %v, want 200", code, err)
	}
	if p.PutLost.Load() != 1 || p.Reset.Load() != 1 || p.PutFailed.Load() != 1 {
		t.Errorf("counters: lost %d, reset %d, failed %d; want 1 each", p.PutLost.Load(), p.Reset.Load(), p.PutFailed.Load())
	}
}

// TestScheduleKindsFirst: kinds are drawn uniformly, whatever the number
// of targets of each.
func TestScheduleKindsFirst(t *testing.T) {
	var fs []Fault
	for _, target := range []string{"a", "b", "c", "d", "e", "f"} {
		fs = append(fs, New("kill", target, nil, nil))
	}
	fs = append(fs, New("db-pause", "postgres", nil, nil))
	steps := NewSchedule(5, fs, ScheduleOptions{Duration: time.Hour})
	n := map[string]int{}
	for _, s := range steps {
		n[s.Fault.Kind()]++
	}
	if n["db-pause"] < len(steps)/3 || n["kill"] < len(steps)/3 {
		t.Errorf("of %d steps: %v; want each kind about half", len(steps), n)
	}
}

// TestScheduleOverlap: with Overlap, each step starts 2 to Overlap
// faults of different kinds on different targets, the others within the
// first half of the step; the same seed gives the same schedule; and
// without it, the schedule is the one-at-a-time one.
func TestScheduleOverlap(t *testing.T) {
	var fs []Fault
	for _, target := range []string{"agent-0", "agent-1", "agent-2"} {
		for _, kind := range []string{"kill", "pause", "clock", "db-partition"} {
			fs = append(fs, New(kind, target, nil, nil))
		}
	}
	fs = append(fs, New("db-restart", "postgres", nil, nil), New("db-pause", "postgres", nil, nil), New("bucket-errors", "bucket", nil, nil))
	o := ScheduleOptions{Duration: 10 * time.Minute, Overlap: 3}
	a, b := NewSchedule(9, fs, o), NewSchedule(9, fs, o)
	if len(a) < 20 || len(a) != len(b) {
		t.Fatalf("schedules of one seed: %d and %d steps", len(a), len(b))
	}
	sizes := map[int]int{}
	for i, s := range a {
		if len(s.With) != len(b[i].With) || s.Fault != b[i].Fault {
			t.Fatalf("step %d differs between two schedules of one seed", i)
		}
		kinds := map[string]bool{s.Fault.Kind(): true}
		targets := map[string]bool{s.Fault.Target(): true}
		var last time.Duration
		for j, w := range s.With {
			if w.Fault != b[i].With[j].Fault || w.After != b[i].With[j].After {
				t.Fatalf("step %d differs between two schedules of one seed", i)
			}
			if kinds[w.Fault.Kind()] || targets[w.Fault.Target()] {
				t.Errorf("step %d: %s %s overlaps a fault of its kind or on its target", i, w.Fault.Kind(), w.Fault.Target())
			}
			kinds[w.Fault.Kind()], targets[w.Fault.Target()] = true, true
			if w.After < last || w.After >= s.Active/2 {
				t.Errorf("step %d: a fault joins at %v (active %v, previous at %v)", i, w.After, s.Active, last)
			}
			last = w.After
		}
		sizes[1+len(s.With)]++
	}
	if sizes[1] != 0 || sizes[2] == 0 || sizes[3] == 0 || len(sizes) != 2 {
		t.Errorf("faults per step: %v, want 2 and 3 only", sizes)
	}
	plain := NewSchedule(9, fs, ScheduleOptions{Duration: 10 * time.Minute})
	again := NewSchedule(9, fs, ScheduleOptions{Duration: 10 * time.Minute, Overlap: 1})
	for i := range plain {
		if len(plain[i].With) != 0 || plain[i].Fault != again[i].Fault || plain[i].Active != again[i].Active {
			t.Fatalf("step %d: Overlap 1 is not the one-at-a-time schedule", i)
		}
	}
}

// TestRunOverlapHealsTogether: the faults of a step are active at once
// and healed together at its end, the database before the agents.
func TestRunOverlapHealsTogether(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			return nil
		}
	}
	kill := New("kill", "agent-0", record("start kill"), record("heal kill"))
	db := New("db-restart", "postgres", record("start db"), record("heal db"))
	part := New("partition", "agent-1", record("start partition"), record("heal partition"))
	steps := []Step{{Fault: kill, Quiet: time.Millisecond, Active: 300 * time.Millisecond, With: []Overlap{
		{Fault: db, After: 50 * time.Millisecond}, {Fault: part, After: 100 * time.Millisecond},
	}}}
	ivs := Run(t.Context(), steps, nil)
	want := []string{"start kill", "start db", "start partition", "heal db", "heal partition", "heal kill"}
	if !slices.Equal(events, want) {
		t.Errorf("events %v, want %v", events, want)
	}
	if len(ivs) != 3 {
		t.Fatalf("%d intervals, want 3", len(ivs))
	}
	for _, iv := range ivs[1:] {
		if !iv.Start.After(ivs[0].Start) || iv.Start.After(ivs[0].End) || iv.End.Sub(ivs[0].End).Abs() > 50*time.Millisecond {
			t.Errorf("%v does not overlap %v and end with it", iv, ivs[0])
		}
	}
}

// TestRunBoundsStarts: a start that cannot finish (it waits for what
// another fault of the step broke) gives up when the step ends instead
// of holding the step's other faults; the interval says so in one line.
func TestRunBoundsStarts(t *testing.T) {
	var pausedFor atomic.Int64
	var pausedAt time.Time
	db := New("db-pause", "postgres",
		func(context.Context) error { pausedAt = time.Now(); return nil },
		func(context.Context) error { pausedFor.Store(int64(time.Since(pausedAt))); return nil })
	stuck := New("clock", "agent-0",
		func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("agent-0 not serving:\n%w", ctx.Err())
		},
		func(context.Context) error { return nil })
	steps := []Step{{Fault: db, Quiet: time.Millisecond, Active: 300 * time.Millisecond, With: []Overlap{{Fault: stuck, After: 50 * time.Millisecond}}}}
	start := time.Now()
	ivs := Run(t.Context(), steps, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the step took %v, want about 300ms", d)
	}
	if d := time.Duration(pausedFor.Load()); d > 2*time.Second {
		t.Errorf("the database stayed paused %v, want about 300ms", d)
	}
	if len(ivs) != 2 || ivs[1].Err != "start: agent-0 not serving" {
		t.Errorf("intervals %v, want the clock's start error in one line", ivs)
	}
}
