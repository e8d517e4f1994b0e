package nemesis

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
