package objstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
)

// step is what one GetRange call of a scripted bucket does: wait delay
// (or until its ctx ends), then fail with err or read normally.
type step struct {
	delay time.Duration
	err   error
}

// scripted is a bucket whose GetRange calls follow a script, one step per
// call in call order; calls past the script do what rest says.
type scripted struct {
	objstore.Bucket
	mu       sync.Mutex
	script   []step
	rest     step
	calls    int
	canceled int // calls that ended because their ctx did
}

func (s *scripted) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	s.mu.Lock()
	st := s.rest
	if s.calls < len(s.script) {
		st = s.script[s.calls]
	}
	s.calls++
	s.mu.Unlock()
	timer := time.NewTimer(st.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		s.mu.Lock()
		s.canceled++
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	if st.err != nil {
		return nil, st.err
	}
	return s.Bucket.GetRange(ctx, key, offset, length)
}

func (s *scripted) counts() (calls, canceled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.canceled
}

const hedgeAfter = 20 * time.Millisecond

func TestHedge(t *testing.T) {
	// later is well after the threshold, so that the hedge has started
	// even on a loaded machine; slow is "never" for the test.
	const later, slow = 10 * hedgeAfter, 5 * time.Second
	tests := []struct {
		name         string
		script       []step
		wantErr      error
		wantCalls    int
		wantCanceled int
		wantOutcome  string // "" for no hedge
		maxTook      time.Duration
	}{
		{"fast: no hedge", []step{{}}, nil, 1, 0, "", slow / 2},
		{"hedge wins over a slow request", []step{{delay: slow}, {}}, nil, 2, 1, "won", slow / 2},
		{"original wins over a slower hedge", []step{{delay: later}, {delay: slow}}, nil, 2, 1, "lost", slow / 2},
		{"original fails after the hedge started", []step{{delay: later, err: errTransient}, {delay: 2 * later}}, nil, 2, 0, "won", slow / 2},
		{"hedge fails, original succeeds", []step{{delay: later}, {err: errTransient}}, nil, 2, 0, "lost", slow / 2},
		{"not found ends the wait", []step{{delay: slow}, {err: objstore.ErrNotFound}}, objstore.ErrNotFound, 2, 1, "failed", slow / 2},
		{"both fail: retried", []step{{delay: later, err: errTransient}, {err: errTransient}, {}}, nil, 3, 0, "failed", slow / 2},
		{"fails before the threshold: retried, no hedge", []step{{err: errTransient}, {}}, nil, 2, 0, "", slow / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			ctx := context.Background()
			local := openLocal(t)
			if err := local.Put(ctx, "k", []byte("value")); err != nil {
				t.Fatal(err)
			}
			s := &scripted{Bucket: local, script: tt.script}
			reg := prometheus.NewRegistry()
			o := fast
			o.HedgeAfter, o.Metrics = hedgeAfter, objstore.NewResilienceMetrics(reg)
			r := objstore.Resilient(s, o)

			start := time.Now()
			got, err := r.GetRange(ctx, "k", 0, -1)
			took := time.Since(start)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("GetRange = %q, %v; want %v", got, err, tt.wantErr)
				}
			} else if err != nil || string(got) != "value" {
				t.Errorf("GetRange = %q, %v; want the value", got, err)
			}
			if took > tt.maxTook {
				t.Errorf("GetRange took %v", took)
			}
			// The loser is canceled; wait for it to notice.
			deadline := time.Now().Add(time.Second)
			calls, canceled := s.counts()
			for canceled < tt.wantCanceled && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
				calls, canceled = s.counts()
			}
			if calls != tt.wantCalls || canceled != tt.wantCanceled {
				t.Errorf("%d calls, %d canceled; want %d, %d", calls, canceled, tt.wantCalls, tt.wantCanceled)
			}
			for _, outcome := range []string{"won", "lost", "failed"} {
				want := 0.0
				if outcome == tt.wantOutcome {
					want = 1
				}
				if got := metric(t, reg, "floe_objstore_hedges_total", map[string]string{"outcome": outcome}); got != want {
					t.Errorf("hedges{outcome=%s} = %v, want %v", outcome, got, want)
				}
			}
		})
	}
}

// TestHedgeCallerCancels checks that canceling the caller stops both
// requests of a hedged GET.
func TestHedgeCallerCancels(t *testing.T) {
	checkNoLeaks(t)
	s := &scripted{Bucket: openLocal(t), script: []step{{delay: time.Minute}, {delay: time.Minute}}}
	o := fast
	o.HedgeAfter = hedgeAfter
	r := objstore.Resilient(s, o)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(5*hedgeAfter, cancel)
	if _, err := r.GetRange(ctx, "k", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("GetRange = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		calls, canceled := s.counts()
		if calls == 2 && canceled == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls, %d canceled; want both requests canceled", calls, canceled)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHedgeWithFaultyLatency hedges over the faulty wrapper: every GET is
// slowed down, so each one is hedged and each hedge is as slow; the
// threshold must keep the extra load to one request per GET.
func TestHedgeWithFaultyLatency(t *testing.T) {
	checkNoLeaks(t)
	ctx := context.Background()
	f := faulty.New(openLocal(t))
	if err := f.Put(ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	f.SetLatency(faulty.Get, 3*hedgeAfter)
	o := fast
	o.HedgeAfter = hedgeAfter
	r := objstore.Resilient(f, o)
	for range 3 {
		if got, err := r.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "value" {
			t.Fatalf("GetRange = %q, %v", got, err)
		}
	}
	if got := f.Calls(faulty.Get); got != 6 {
		t.Errorf("%d GETs for 3 slow reads, want 6 (one hedge each)", got)
	}
}

// TestAdaptiveThreshold checks that the threshold starts at HedgeInitial,
// follows the p99 of recent GETs, and never drops below HedgeFloor.
func TestAdaptiveThreshold(t *testing.T) {
	ctx := context.Background()
	local := openLocal(t)
	if err := local.Put(ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	s := &scripted{Bucket: local}
	o := fast
	o.HedgeAfter, o.HedgeFloor, o.HedgeInitial = 0, 10*time.Millisecond, 10*time.Second
	o.HedgeWindow, o.HedgeMinSamples = 20, 10
	r := objstore.Resilient(s, o)
	if got := r.HedgeThreshold(); got != 10*time.Second {
		t.Errorf("threshold before any GET = %v, want HedgeInitial", got)
	}
	get := func(n int, delay time.Duration) {
		t.Helper()
		s.mu.Lock()
		s.rest = step{delay: delay}
		s.mu.Unlock()
		for range n {
			if _, err := r.GetRange(ctx, "k", 0, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	get(20, 0)
	if got := r.HedgeThreshold(); got != 10*time.Millisecond {
		t.Errorf("threshold after fast GETs = %v, want the 10ms floor", got)
	}
	// Latency rises: the window (20) fills with 30ms reads.
	// (The upper bound is loose: on a loaded machine one 30ms timer can
	// fire much later, and the p99 of 20 samples is their maximum.)
	get(20, 30*time.Millisecond)
	if got := r.HedgeThreshold(); got < 30*time.Millisecond || got > 5*time.Second {
		t.Errorf("threshold after 30ms GETs = %v, want about 30ms", got)
	}
	// Without samples, the floor rules.
	o.HedgeFloor = 50 * time.Millisecond
	if got := objstore.Resilient(s, o).HedgeThreshold(); got != 10*time.Second {
		t.Errorf("fresh threshold = %v, want HedgeInitial", got)
	}
	o.HedgeInitial = time.Millisecond
	if got := objstore.Resilient(s, o).HedgeThreshold(); got != 50*time.Millisecond {
		t.Errorf("fresh threshold with HedgeInitial below the floor = %v, want the floor", got)
	}
}
