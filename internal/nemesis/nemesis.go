// Package nemesis injects the faults floe torture and the cluster tests
// control: agents killed and restarted or paused, the PostgreSQL
// metadata store restarted or paused, the bucket erroring behind an HTTP
// fault proxy, and clients partitioned from an agent behind a Kafka proxy
// that can blackhole. Each fault is a small value with Start and Heal; a
// Schedule drawn from a seed says which fault starts when and for how
// long, and Run applies it and records what was active when, so that a
// history can be judged per fault.
package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"

	"time"
)

// Fault is one way to break the cluster. Start breaks it, Heal mends it;
// Heal after Start must leave the cluster as it was (an agent killed is
// restarted, a server paused resumes).
type Fault interface {
	// Kind names the class of fault (kill, pause, db-restart, db-pause,
	// bucket-errors, partition).
	Kind() string
	// Target names what it acts on (an agent's name, "postgres",
	// "bucket").
	Target() string
	Start(ctx context.Context) error
	Heal(ctx context.Context) error
}

// Step is one entry of a schedule: after Quiet with nothing broken,
// Fault is active for Active.
type Step struct {
	Fault  Fault
	Quiet  time.Duration
	Active time.Duration
}

// ScheduleOptions bound the schedule's draws.
type ScheduleOptions struct {
	// Duration is the total the schedule covers; the last step ends
	// before it.
	Duration time.Duration
	// QuietMin/QuietMax bound the time between two faults (default 2s
	// and 5s); ActiveMin/ActiveMax the time a fault lasts (3s and 8s).
	QuietMin, QuietMax   time.Duration
	ActiveMin, ActiveMax time.Duration
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// NewSchedule draws a schedule from seed: one fault at a time, its kind
// chosen uniformly among the kinds of faults and then one fault of that
// kind (a target) uniformly, separated by quiet periods, until
// o.Duration is used up. The same seed and faults give the same
// schedule.
func NewSchedule(seed int64, faults []Fault, o ScheduleOptions) []Step {
	if o.QuietMin <= 0 {
		o.QuietMin = 2 * time.Second
	}
	if o.QuietMax <= 0 {
		o.QuietMax = 5 * time.Second
	}
	if o.ActiveMin <= 0 {
		o.ActiveMin = 3 * time.Second
	}
	if o.ActiveMax <= 0 {
		o.ActiveMax = 8 * time.Second
	}
	if len(faults) == 0 {
		return nil
	}
	var kinds []string
	byKind := map[string][]Fault{}
	for _, f := range faults {
		if byKind[f.Kind()] == nil {
			kinds = append(kinds, f.Kind())
		}
		byKind[f.Kind()] = append(byKind[f.Kind()], f)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973))
	var steps []Step
	var used time.Duration
	for {
		of := byKind[kinds[rng.IntN(len(kinds))]]
		f := of[0]
		if len(of) > 1 {
			f = of[rng.IntN(len(of))]
		}
		s := Step{
			Fault:  f,
			Quiet:  between(rng, o.QuietMin, o.QuietMax),
			Active: between(rng, o.ActiveMin, o.ActiveMax),
		}
		if used+s.Quiet+s.Active > o.Duration {
			return steps
		}
		used += s.Quiet + s.Active
		steps = append(steps, s)
	}
}

// Interval is a fault that was active from Start to End.
type Interval struct {
	Kind, Target string
	Start, End   time.Time
	// Err is the error of Start or Heal, if any.
	Err string
}

func (iv Interval) String() string {
	s := fmt.Sprintf("%s %s for %v", iv.Kind, iv.Target, iv.End.Sub(iv.Start).Round(time.Millisecond))
	if iv.Err != "" {
		s += " (" + iv.Err + ")"
	}
	return s
}

// Log receives a line per fault started and healed; nil discards them.
type Log func(format string, args ...any)

// Run applies the schedule: each step waits its quiet time, starts its
// fault, waits its active time and heals it. When ctx ends it heals the
// fault active (with a fresh context) and returns. It returns the
// intervals during which faults were active.
func Run(ctx context.Context, steps []Step, log Log) []Interval {
	if log == nil {
		log = func(string, ...any) {}
	}
	var out []Interval
	for _, s := range steps {
		if !sleep(ctx, s.Quiet) {
			break
		}
		iv := Interval{Kind: s.Fault.Kind(), Target: s.Fault.Target(), Start: time.Now()}
		log("nemesis: %s %s: start (for %v)", iv.Kind, iv.Target, s.Active.Round(time.Millisecond))
		if err := s.Fault.Start(ctx); err != nil {
			iv.Err = "start: " + err.Error()
			log("nemesis: %s %s: start failed: %v", iv.Kind, iv.Target, err)
		}
		sleep(ctx, s.Active)
		hctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		if err := s.Fault.Heal(hctx); err != nil {
			if iv.Err != "" {
				iv.Err += "; "
			}
			iv.Err += "heal: " + err.Error()
			log("nemesis: %s %s: heal failed: %v", iv.Kind, iv.Target, err)
		}
		cancel()
		iv.End = time.Now()
		log("nemesis: %s %s: healed", iv.Kind, iv.Target)
		out = append(out, iv)
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// funcFault is a Fault made of two functions.
type funcFault struct {
	kind, target string
	start, heal  func(ctx context.Context) error
}

func (f *funcFault) Kind() string                    { return f.kind }
func (f *funcFault) Target() string                  { return f.target }
func (f *funcFault) Start(ctx context.Context) error { return f.start(ctx) }
func (f *funcFault) Heal(ctx context.Context) error  { return f.heal(ctx) }

// New makes a Fault of two functions.
func New(kind, target string, start, heal func(ctx context.Context) error) Fault {
	return &funcFault{kind: kind, target: target, start: start, heal: heal}
}
