package quota

import "time"

// rate measures a value per second over the last n samples of w each, as
// Kafka's quota sensors do: a new sample starts when the current one is w
// old, samples older than n*w are forgotten, and the elapsed time is at
// least n-1 full samples, so that the first bytes of a client do not look
// like a burst.
type rate struct {
	samples []sample // oldest first, at most n
}

type sample struct {
	start time.Time
	value float64
}

func (r *rate) purge(now time.Time, n int, w time.Duration) {
	cut := now.Add(-time.Duration(n) * w)
	i := 0
	for i < len(r.samples) && !r.samples[i].start.After(cut) {
		i++
	}
	r.samples = r.samples[i:]
}

func (r *rate) record(now time.Time, v float64, n int, w time.Duration) {
	r.purge(now, n, w)
	if len(r.samples) == 0 || now.Sub(r.samples[len(r.samples)-1].start) >= w {
		if len(r.samples) == n {
			r.samples = r.samples[1:]
		}
		r.samples = append(r.samples, sample{start: now})
	}
	r.samples[len(r.samples)-1].value += v
}

// measure returns the rate and the window it was measured over.
func (r *rate) measure(now time.Time, n int, w time.Duration) (perSecond float64, window time.Duration) {
	r.purge(now, n, w)
	window = time.Duration(n-1) * w
	if len(r.samples) == 0 {
		return 0, window
	}
	var total float64
	for _, s := range r.samples {
		total += s.value
	}
	window = max(now.Sub(r.samples[0].start), window)
	return total / window.Seconds(), window
}

// throttle is Kafka's throttle time for a rate over quota q: the time
// the client must stay silent for its rate over the window to fall back
// to q, at most the whole window.
func (r *rate) throttle(now time.Time, q float64, n int, w time.Duration) time.Duration {
	perSecond, window := r.measure(now, n, w)
	if perSecond <= q || q <= 0 {
		return 0
	}
	d := time.Duration((perSecond - q) / q * float64(window))
	return min(d, time.Duration(n)*w)
}
