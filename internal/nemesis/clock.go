package nemesis

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// ClockSkewFlag is the agent's (hidden) flag that offsets its clock.
const ClockSkewFlag = "--clock-skew"

// ClockOptions bound the skews a clock fault draws.
type ClockOptions struct {
	// Min and Max bound the skew's size (default 1s and 10m); it is
	// drawn log-uniformly between them, ahead or behind with equal odds,
	// so that seconds are as likely as minutes.
	Min, Max time.Duration
	// StopTimeout bounds the graceful stop before a restart (default
	// 15s; SIGKILL after it).
	StopTimeout time.Duration
}

// clockFault restarts an agent with its clock skewed, and without.
type clockFault struct {
	p   *Proc
	o   ClockOptions
	mu  sync.Mutex
	rng *rand.Rand
	// skew is the skew of the last Start.
	skew time.Duration
}

// Clock is the fault that restarts p (SIGTERM, then a new start) with
// ClockSkewFlag set to a skew drawn from seed (a new one each time it
// starts: the same seed and schedule give the same skews), and on Heal
// restarts it without. A restart, not a jump of a running clock: Go
// measures durations on the monotonic clock, which a wall-clock step
// does not move, so a skew from the start is what a process with a
// wrong clock sees; a running clock offset by a jump would stretch or
// shrink the durations measured across it, which no host does to Go.
func Clock(p *Proc, seed int64, o ClockOptions) Fault {
	if o.Min <= 0 {
		o.Min = time.Second
	}
	if o.Max < o.Min {
		o.Max = max(o.Min, 10*time.Minute)
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 15 * time.Second
	}
	return &clockFault{p: p, o: o, rng: rand.New(rand.NewPCG(uint64(seed), 0x636c6f636b))}
}

func (f *clockFault) Kind() string   { return "clock" }
func (f *clockFault) Target() string { return f.p.Name }

// Detail names the skew of the last Start.
func (f *clockFault) Detail() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("skew %+v", f.skew)
}

func (f *clockFault) draw() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	lo, hi := math.Log(float64(f.o.Min)), math.Log(float64(f.o.Max))
	d := time.Duration(math.Exp(lo + f.rng.Float64()*(hi-lo))).Round(time.Millisecond)
	if f.rng.IntN(2) == 0 {
		d = -d
	}
	f.skew = d
	return d
}

func (f *clockFault) Start(ctx context.Context) error {
	skew := f.draw()
	f.p.SetExtraArgs(ClockSkewFlag + "=" + skew.String())
	return f.p.Restart(ctx, f.o.StopTimeout)
}

func (f *clockFault) Heal(ctx context.Context) error {
	f.p.SetExtraArgs()
	return f.p.Restart(ctx, f.o.StopTimeout)
}
