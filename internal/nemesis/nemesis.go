// Package nemesis injects the faults floe torture and the cluster tests
// control: agents killed and restarted, paused, or restarted with a
// skewed clock; the PostgreSQL metadata store restarted or paused; the
// bucket erroring behind an HTTP fault proxy; clients partitioned from
// an agent behind a Kafka proxy that can blackhole; and one agent
// partitioned from the database or the bucket behind a TCP proxy of its
// own. Each fault is a small value with Start and Heal; a schedule drawn
// from a seed says which faults start when and for how long (one at a
// time, or a few overlapping), and Run applies it and records what was
// active when, so that a history can be judged per fault. The processes
// it starts die with the process that started them.
package nemesis

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault is one way to break the cluster. Start breaks it, Heal mends it;
// Heal after Start must leave the cluster as it was (an agent killed is
// restarted, a server paused resumes).
type Fault interface {
	// Kind names the class of fault (kill, pause, clock, db-restart,
	// db-pause, db-partition, bucket-errors, bucket-partition,
	// partition).
	Kind() string
	// Target names what it acts on (an agent's name, "postgres",
	// "bucket").
	Target() string
	Start(ctx context.Context) error
	Heal(ctx context.Context) error
}

// Step is one entry of a schedule: after Quiet with nothing broken,
// Fault is active for Active. The faults of With start while it is
// (overlapping), each After the step's start, and every fault of the
// step is healed together when Active ends.
type Step struct {
	Fault  Fault
	Quiet  time.Duration
	Active time.Duration
	With   []Overlap
}

// Overlap is a fault started After the start of the step it belongs to.
type Overlap struct {
	Fault Fault
	After time.Duration
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
	// Overlap, if 2 or more, makes every step start 2 to Overlap faults
	// of different kinds on different targets (as many as there are),
	// the first at the step's start and the others within the first
	// half of its active time, healed together. 0 or 1: one fault at a
	// time, and the draws of a schedule without overlap.
	Overlap int
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// NewSchedule draws a schedule from seed: one fault at a time (or, with
// o.Overlap, a few), its kind chosen uniformly among the kinds of faults
// and then one fault of that kind (a target) uniformly, separated by
// quiet periods, until o.Duration is used up. The same seed, faults and
// options give the same schedule.
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
		if o.Overlap >= 2 {
			s.With = drawOverlaps(rng, kinds, byKind, f, s.Active, o.Overlap)
		}
		if used+s.Quiet+s.Active > o.Duration {
			return steps
		}
		used += s.Quiet + s.Active
		steps = append(steps, s)
	}
}

// drawOverlaps draws the faults that join a step's first fault: 1 to
// n-1 of them, each of a kind and on a target no other fault of the step
// has (two faults on one process or one server would undo each other),
// at times in the first half of active, in order.
func drawOverlaps(rng *rand.Rand, kinds []string, byKind map[string][]Fault, first Fault, active time.Duration, n int) []Overlap {
	usedKind := map[string]bool{first.Kind(): true}
	usedTarget := map[string]bool{first.Target(): true}
	want := 1 + rng.IntN(n-1)
	var out []Overlap
	for range want {
		var free []string
		for _, k := range kinds {
			if !usedKind[k] && slices.ContainsFunc(byKind[k], func(f Fault) bool { return !usedTarget[f.Target()] }) {
				free = append(free, k)
			}
		}
		if len(free) == 0 {
			break
		}
		k := free[rng.IntN(len(free))]
		var of []Fault
		for _, f := range byKind[k] {
			if !usedTarget[f.Target()] {
				of = append(of, f)
			}
		}
		f := of[rng.IntN(len(of))]
		usedKind[k], usedTarget[f.Target()] = true, true
		out = append(out, Overlap{Fault: f, After: between(rng, 0, active/2)})
	}
	slices.SortStableFunc(out, func(a, b Overlap) int { return cmp.Compare(a.After, b.After) })
	return out
}

// Interval is a fault that was active from Start to End.
type Interval struct {
	Kind, Target string
	// Detail says more of the fault, if it tells (a clock's skew).
	Detail     string
	Start, End time.Time
	// Err is the error of Start or Heal, if any.
	Err string
}

func (iv Interval) String() string {
	s := fmt.Sprintf("%s %s for %v", iv.Kind, iv.Target, iv.End.Sub(iv.Start).Round(time.Millisecond))
	if iv.Detail != "" {
		s = fmt.Sprintf("%s %s (%s) for %v", iv.Kind, iv.Target, iv.Detail, iv.End.Sub(iv.Start).Round(time.Millisecond))
	}
	if iv.Err != "" {
		s += " (" + iv.Err + ")"
	}
	return s
}

// Log receives a line per fault started and healed; nil discards them.
type Log func(format string, args ...any)

// healRank orders the heals of faults healed together: the servers
// first, then the network, then the agents, whose restarts need the
// database and the bucket.
var healRank = map[string]int{
	"db-restart": 0, "db-pause": 0,
	"db-partition": 1, "bucket-partition": 1, "bucket-errors": 1, "partition": 1,
	"pause": 2,
	"kill":  3, "clock": 3,
}

// Run applies the schedule: each step waits its quiet time, starts its
// faults, waits its active time and heals them (servers, then network,
// then agents; among equals, the last started first). When ctx ends it
// heals the faults active (with a fresh context) and returns. It returns
// the intervals during which faults were active.
func Run(ctx context.Context, steps []Step, log Log) []Interval {
	if log == nil {
		log = func(string, ...any) {}
	}
	var out []Interval
	for _, s := range steps {
		if !sleep(ctx, s.Quiet) {
			break
		}
		began := time.Now()
		type active struct {
			f  Fault
			iv Interval
		}
		var on []*active
		// A start that cannot finish (an agent restarted while the
		// database is paused never serves) gives up when the step ends,
		// so that it does not hold the step's other faults longer.
		sctx, cancelStarts := context.WithDeadline(ctx, began.Add(s.Active))
		start := func(f Fault, d time.Duration) {
			a := &active{f: f, iv: Interval{Kind: f.Kind(), Target: f.Target(), Start: time.Now()}}
			err := f.Start(sctx)
			if dt, ok := f.(interface{ Detail() string }); ok {
				a.iv.Detail = dt.Detail()
			}
			log("nemesis: %s %s: start (for %v)%s", a.iv.Kind, a.iv.Target, d.Round(time.Millisecond), detail(a.iv.Detail))
			if err != nil {
				a.iv.Err = "start: " + firstLine(err)
				log("nemesis: %s %s: start failed: %v", a.iv.Kind, a.iv.Target, err)
			}
			on = append(on, a)
		}
		start(s.Fault, s.Active)
		for _, w := range s.With {
			if !sleep(ctx, w.After-time.Since(began)) {
				break
			}
			start(w.Fault, s.Active-time.Since(began))
		}
		sleep(ctx, s.Active-time.Since(began))
		cancelStarts()
		slices.Reverse(on)
		slices.SortStableFunc(on, func(a, b *active) int { return cmp.Compare(rank(a.iv.Kind), rank(b.iv.Kind)) })
		hctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		for _, a := range on {
			if err := a.f.Heal(hctx); err != nil {
				if a.iv.Err != "" {
					a.iv.Err += "; "
				}
				a.iv.Err += "heal: " + firstLine(err)
				log("nemesis: %s %s: heal failed: %v", a.iv.Kind, a.iv.Target, err)
			}
			a.iv.End = time.Now()
			log("nemesis: %s %s: healed", a.iv.Kind, a.iv.Target)
		}
		cancel()
		slices.SortStableFunc(on, func(a, b *active) int { return a.iv.Start.Compare(b.iv.Start) })
		for _, a := range on {
			out = append(out, a.iv)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

// firstLine is an error's first line, for an interval's one-line
// account (a process that failed to start quotes its output).
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSuffix(s, ":")
}

func rank(kind string) int {
	if r, ok := healRank[kind]; ok {
		return r
	}
	return 2
}

func detail(d string) string {
	if d == "" {
		return ""
	}
	return " " + d
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
