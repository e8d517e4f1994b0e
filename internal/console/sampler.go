package console

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// sample is one reading of the agent's counters and the topics' ends.
type sample struct {
	at time.Time
	// metrics maps "name{k=v,...}" (labels sorted) to a counter's or
	// gauge's value; histograms and summaries give name_count and
	// name_sum.
	metrics map[string]float64
	// ends is each topic's sum of high watermarks (nil if it could not
	// be read).
	ends map[string]int64
}

// sampler keeps the last samples, for rates and trends.
type sampler struct {
	c    *Console
	mu   sync.Mutex
	ring []sample
	max  int
}

func newSampler(c *Console, max int) *sampler { return &sampler{c: c, max: max} }

func (s *sampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.take(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) take(ctx context.Context) {
	sm := sample{at: time.Now(), metrics: gather(s.c)}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ends, err := s.c.admin.ListEndOffsets(ctx); err == nil {
		sm.ends = map[string]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				sm.ends[o.Topic] += o.Offset
			}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring = append(s.ring, sm)
	if len(s.ring) > s.max {
		s.ring = s.ring[len(s.ring)-s.max:]
	}
}

func gather(c *Console) map[string]float64 {
	out, err := gatherMetrics(c.opts.Gatherer)
	if err != nil {
		c.log.Debug("console: gathering metrics", "err", err)
	}
	return out
}

// gatherMetrics reads the floe_, process_ and go_goroutines series of g
// (what it could read, with the error of what it could not).
func gatherMetrics(g prometheus.Gatherer) (map[string]float64, error) {
	out := map[string]float64{}
	mfs, err := g.Gather()
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "floe_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "go_goroutines") {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := labelKey(m.GetLabel())
			switch {
			case m.Counter != nil:
				out[name+key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name+key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name+"_count"+key] = float64(m.Histogram.GetSampleCount())
				out[name+"_sum"+key] = m.Histogram.GetSampleSum()
			case m.Summary != nil:
				out[name+"_count"+key] = float64(m.Summary.GetSampleCount())
				out[name+"_sum"+key] = m.Summary.GetSampleSum()
			case m.Untyped != nil:
				out[name+key] = m.Untyped.GetValue()
			}
		}
	}
	return out, err
}

func labelKey(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// match reports whether a key is metric name with every label in want.
func match(key, name string, want ...string) bool {
	rest, ok := strings.CutPrefix(key, name)
	if !ok || (rest != "" && rest[0] != '{') {
		return false
	}
	for _, w := range want {
		if !strings.Contains(rest, w) {
			return false
		}
	}
	return true
}

// window returns the newest sample and the oldest one at most span older
// (ok is false with fewer than two samples).
func (s *sampler) window(span time.Duration) (old, cur sample, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) < 2 {
		return sample{}, sample{}, false
	}
	cur = s.ring[len(s.ring)-1]
	old = s.ring[len(s.ring)-2]
	for i := len(s.ring) - 2; i >= 0; i-- {
		if cur.at.Sub(s.ring[i].at) > span {
			break
		}
		old = s.ring[i]
	}
	return old, cur, true
}

// rateSpan is what rates are averaged over.
const rateSpan = time.Minute

// rate is the per-second increase, over the last minute, of the sum of
// the series of name with the labels in want ("k=v").
func (s *sampler) rate(name string, want ...string) float64 {
	old, cur, ok := s.window(rateSpan)
	if !ok {
		return 0
	}
	dt := cur.at.Sub(old.at).Seconds()
	if dt <= 0 {
		return 0
	}
	d := sum(cur.metrics, name, want...) - sum(old.metrics, name, want...)
	if d < 0 { // a counter restarted
		return 0
	}
	return d / dt
}

// value is the newest sample's sum of the series.
func (s *sampler) value(name string, want ...string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) == 0 {
		return 0
	}
	return sum(s.ring[len(s.ring)-1].metrics, name, want...)
}

func sum(m map[string]float64, name string, want ...string) float64 {
	t := 0.0
	for k, v := range m {
		if match(k, name, want...) {
			t += v
		}
	}
	return t
}

// topicRates are records per second appended to each topic over the
// last minute.
func (s *sampler) topicRates() map[string]float64 {
	old, cur, ok := s.window(rateSpan)
	out := map[string]float64{}
	if !ok || old.ends == nil || cur.ends == nil {
		return out
	}
	dt := cur.at.Sub(old.at).Seconds()
	for t, e := range cur.ends {
		if o, ok := old.ends[t]; ok && e >= o && dt > 0 {
			out[t] = float64(e-o) / dt
		}
	}
	return out
}

// series is the history of one series (oldest first), at most n points.
func (s *sampler) series(key string, n int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, sm := range s.ring {
		if v, ok := sm.metrics[key]; ok {
			out = append(out, int64(v))
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// warm reports whether rates have two samples to go on.
func (s *sampler) warm() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ring) >= 2
}

// fetchRates are the records and bytes per second this agent's Fetch
// answers carried over the last minute, by topic
// (floe_fetch_records_total, floe_fetch_bytes_total).
func (s *sampler) fetchRates() map[string]Served {
	out := map[string]Served{}
	old, cur, ok := s.window(rateSpan)
	if !ok {
		return out
	}
	dt := cur.at.Sub(old.at).Seconds()
	if dt <= 0 {
		return out
	}
	for k, v := range cur.metrics {
		for _, m := range []struct {
			prefix string
			set    func(*Served, float64)
		}{
			{"floe_fetch_records_total{topic=", func(s *Served, r float64) { s.Records = r }},
			{"floe_fetch_bytes_total{topic=", func(s *Served, r float64) { s.Bytes = r }},
		} {
			topic, ok := strings.CutPrefix(k, m.prefix)
			if !ok || !strings.HasSuffix(topic, "}") {
				continue
			}
			topic = strings.TrimSuffix(topic, "}")
			d := v - old.metrics[k] // a series new since old started at 0
			if d < 0 {
				d = 0
			}
			sv := out[topic]
			m.set(&sv, d/dt)
			out[topic] = sv
		}
	}
	return out
}
