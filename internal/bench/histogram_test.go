package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The relative width of any bucket above the exact range.
const maxRelErr = 1.0 / halfCount

func TestBucketBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64}
	for range 100000 {
		values = append(values, rng.Int64N(1<<rng.IntN(62)+1))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		hi := bucketHigh(i)
		if hi < v {
			t.Fatalf("value %d above its bucket's upper bound %d", v, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d not above the previous bucket's upper bound %d", v, bucketHigh(i-1))
		}
		if float64(hi-v) > maxRelErr*float64(v) {
			t.Fatalf("bucket of %d reaches %d: wider than %.3f of the value", v, hi, maxRelErr)
		}
	}
}

func TestQuantilesAgainstExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name string
		draw func() time.Duration
	}{
		{"uniform 0-1s", func() time.Duration { return time.Duration(rng.Int64N(int64(time.Second))) }},
		{"exponential mean 30ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(30*time.Millisecond)) }},
		{"bimodal 5ms and 400ms", func() time.Duration {
			if rng.IntN(10) == 0 {
				return 400*time.Millisecond + time.Duration(rng.Int64N(int64(50*time.Millisecond)))
			}
			return 5*time.Millisecond + time.Duration(rng.Int64N(int64(time.Millisecond)))
		}},
		{"tiny values", func() time.Duration { return time.Duration(rng.Int64N(100)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			exact := make([]time.Duration, 20000)
			for i := range exact {
				exact[i] = tc.draw()
				h.Record(exact[i])
			}
			slices.Sort(exact)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(len(exact)))), 1)
				want := exact[rank-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > maxRelErr*float64(want) {
					t.Errorf("q%.3f = %v, exact %v: outside [exact, exact×(1+1/64)]", q, got, want)
				}
			}
			s := h.Summary()
			if s.Count != uint64(len(exact)) || !s.Ordered() {
				t.Errorf("summary %+v: count or order wrong", s)
			}
			if s.Max != float64(exact[len(exact)-1])/1e6 || s.Min != float64(exact[0])/1e6 {
				t.Errorf("min/max %v/%v, want exact %v/%v", s.Min, s.Max, exact[0], exact[len(exact)-1])
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.5) != 0 || h.Summary() != (Summary{}) {
		t.Fatal("an empty histogram must report zeros")
	}
	h.Record(-time.Second) // a clock step counts as 0
	h.Record(250 * time.Millisecond)
	if got := h.Quantile(1); got != 250*time.Millisecond {
		t.Fatalf("max quantile %v, want the exact maximum 250ms", got)
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Fatalf("median %v, want 0", got)
	}

	a, b, both := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 1000 {
		d := time.Duration(i) * time.Millisecond
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		both.Record(d)
	}
	a.Merge(b)
	if a.Summary() != both.Summary() {
		t.Fatalf("merged %+v, want %+v", a.Summary(), both.Summary())
	}
}

func TestSummaryOrdered(t *testing.T) {
	for _, tc := range []struct {
		s    Summary
		want bool
	}{
		{Summary{Min: 1, Mean: 2, P50: 2, P90: 3, P99: 4, P999: 5, Max: 6}, true},
		{Summary{Min: 1, Mean: 2, P50: 2, P90: 3, P99: 3, P999: 3, Max: 3}, true},
		{Summary{Min: 1, Mean: 2, P50: 3, P90: 2, P99: 4, P999: 5, Max: 6}, false},
		{Summary{Min: 1, Mean: 7, P50: 2, P90: 3, P99: 4, P999: 5, Max: 6}, false},
	} {
		if got := tc.s.Ordered(); got != tc.want {
			t.Errorf("%+v.Ordered() = %v, want %v", tc.s, got, tc.want)
		}
	}
}
