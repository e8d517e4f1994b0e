package bench

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// The histogram is log-linear, like an HDR histogram with two significant
// digits: values below 2^subBits nanoseconds get one bucket each, and every
// power of two above that is split into 2^(subBits-1) equal buckets. A
// bucket's width is then at most 1/64 of its lower bound, so any reported
// percentile is within 1.6% of the exact one, whatever the range (a few
// microseconds to hours), in a fixed 30 KiB of counts.
const (
	subBits    = 7
	subCount   = 1 << subBits            // 128 single-value buckets
	halfCount  = subCount / 2            // buckets per power of two above them
	numBuckets = subCount + 57*halfCount // enough for any int64 value
)

// Histogram records durations and answers percentiles. It is safe for
// concurrent use; the zero value is not, use NewHistogram.
type Histogram struct {
	mu     sync.Mutex
	counts []uint64
	n      uint64
	sum    float64 // nanoseconds, for the mean
	min    int64
	max    int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // ≥ 1
	top := int(v >> shift)                   // in [halfCount, subCount)
	return subCount + (shift-1)*halfCount + (top - halfCount)
}

// bucketHigh is the largest value that falls into bucket i.
func bucketHigh(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := (i-subCount)/halfCount + 1
	top := int64((i-subCount)%halfCount + halfCount)
	return (top+1)<<shift - 1
}

// Record adds one duration. Negative durations (clock steps) count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	i := bucketOf(v)
	h.mu.Lock()
	h.counts[i]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
	h.mu.Unlock()
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts := append([]uint64(nil), o.counts...)
	n, sum, lo, hi := o.n, o.sum, o.min, o.max
	o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range counts {
		h.counts[i] += c
	}
	h.n += n
	h.sum += sum
	h.min = min(h.min, lo)
	h.max = max(h.max, hi)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile returns the smallest recorded value v (to within a bucket) such
// that at least q of all values are ≤ v: the bucket's upper bound, capped
// at the exact maximum. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.quantileLocked(q)
}

func (h *Histogram) quantileLocked(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketHigh(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary is a histogram's figures in milliseconds, ready to print or
// marshal.
type Summary struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the histogram's percentiles.
func (h *Histogram) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return Summary{}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Summary{
		Count: h.n,
		Min:   ms(time.Duration(h.min)),
		Mean:  h.sum / float64(h.n) / float64(time.Millisecond),
		P50:   ms(h.quantileLocked(0.50)),
		P90:   ms(h.quantileLocked(0.90)),
		P99:   ms(h.quantileLocked(0.99)),
		P999:  ms(h.quantileLocked(0.999)),
		Max:   ms(time.Duration(h.max)),
	}
}

// Ordered reports whether the summary's figures never decrease from min to
// max, as percentiles of one distribution must.
func (s Summary) Ordered() bool {
	v := []float64{s.Min, s.P50, s.P90, s.P99, s.P999, s.Max}
	for i := 1; i < len(v); i++ {
		if v[i] < v[i-1] {
			return false
		}
	}
	const eps = 1e-9 // the mean is a float sum; allow rounding
	return s.Mean >= s.Min-eps && s.Mean <= s.Max+eps
}
