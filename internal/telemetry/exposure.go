package telemetry

import (
	"math"
	"time"
)

// exposure holds the series clients' pushes keep current: for each
// client id, metric name and data point attributes, the latest value of
// a gauge (or of a sum that can go down) or the total of a monotonic
// sum. It is bounded in client ids and in series per client id; a series
// not updated for ttl is dropped, freeing its place. The receiver's
// mutex guards it.
type exposure struct {
	maxClients, maxSeries int
	ttl                   time.Duration

	series    map[seriesKey]*series
	perClient map[string]int
	lastSweep time.Time
}

// seriesKey names a series by its label values (already clipped, so that
// two keys never give one set of labels) and its family.
type seriesKey struct {
	client, metric, attrs string
	counter               bool
}

type series struct {
	value   float64
	updated time.Time
}

func newExposure(maxClients, maxSeries int, ttl time.Duration) *exposure {
	return &exposure{maxClients: maxClients, maxSeries: maxSeries, ttl: ttl, series: map[seriesKey]*series{}, perClient: map[string]int{}}
}

// update applies one data point and returns why it was dropped, or "".
// A delta sum adds to the series, a cumulative one replaces it; a
// monotonic sum's values are never negative.
func (x *exposure) update(client string, p point, now time.Time) string {
	if math.IsNaN(p.value) || math.IsInf(p.value, 0) || (p.kind == counter && p.value < 0) {
		return "value"
	}
	k := seriesKey{client: client, metric: p.metric, attrs: p.attrs, counter: p.kind == counter}
	s, ok := x.series[k]
	if !ok {
		if now.Sub(x.lastSweep) > x.ttl/3 {
			x.sweep(now)
		}
		n, known := x.perClient[client]
		switch {
		case !known && len(x.perClient) >= x.maxClients:
			return "clients"
		case n >= x.maxSeries:
			return "series"
		}
		s = &series{}
		x.series[k] = s
		x.perClient[client] = n + 1
	}
	if p.delta {
		s.value += p.value
	} else {
		// A cumulative total below the last one is a client restarted
		// under the same id: a counter reset, which Prometheus handles.
		s.value = p.value
	}
	s.updated = now
	return ""
}

// sweep drops the series not updated for ttl.
func (x *exposure) sweep(now time.Time) {
	x.lastSweep = now
	for k, s := range x.series {
		if now.Sub(s.updated) > x.ttl {
			delete(x.series, k)
			if x.perClient[k.client]--; x.perClient[k.client] <= 0 {
				delete(x.perClient, k.client)
			}
		}
	}
}
