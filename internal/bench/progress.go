package bench

import (
	"fmt"
	"io"
	"time"
)

// progress prints a live status line while a run goes on: rates over the
// last interval, the produce p99 measured so far, consumer lag and errors.
type progress struct {
	w         io.Writer
	inPlace   bool
	interval  time.Duration
	name      string
	st        *stats
	consumers []*consumer
	started   time.Time
	last      time.Time
	lastAcked int64
	lastRead  int64
	printed   bool
}

func newProgress(cfg *Config, name string, st *stats, consumers []*consumer) *progress {
	now := time.Now()
	return &progress{w: cfg.Progress, inPlace: cfg.ProgressInPlace, interval: cfg.ProgressInterval,
		name: name, st: st, consumers: consumers, started: now, last: now}
}

func (p *progress) read() int64 {
	var n int64
	for _, c := range p.consumers {
		n += c.consumed.Load()
	}
	return n
}

func (p *progress) line(phase string) {
	if p == nil || p.w == nil {
		return
	}
	now := time.Now()
	secs := now.Sub(p.last).Seconds()
	if secs <= 0 {
		return
	}
	acked, read := p.st.acked.Load(), p.read()
	if p.consumers == nil {
		read = 0
	}
	produceRate := float64(acked-p.lastAcked) / secs
	readRate := float64(read-p.lastRead) / secs
	p.last, p.lastAcked, p.lastRead = now, acked, read
	lag := int64(0)
	if n := int64(len(p.consumers)); n > 0 {
		lag = acked - read/n
	}
	text := fmt.Sprintf("[%s] %5.1fs %-7s produced %s rec (%s rec/s)  produce p99 %s  consumed %s rec/s  lag %s  errors %d  behind %d",
		p.name, now.Sub(p.started).Seconds(), phase, count(acked), count(int64(produceRate)),
		ms(p.st.produceLat.Quantile(0.99)), count(int64(readRate)), count(lag),
		p.st.failed.Load()+p.st.consumeErrors.Load(), p.st.missed.Load())
	if p.inPlace {
		fmt.Fprintf(p.w, "\r\033[K%s", text)
	} else {
		fmt.Fprintln(p.w, text)
	}
	p.printed = true
}

func (p *progress) done() {
	if p != nil && p.w != nil && p.inPlace && p.printed {
		fmt.Fprintln(p.w)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

// count formats n with thousands separators.
func count(n int64) string {
	if n < 0 {
		return "-" + count(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
