package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestSummarizeMediansAndRatios(t *testing.T) {
	f := func(p99, put float64) Figures { return Figures{ProduceP99: p99, PutsPerSec: put} }
	var results []RunResult
	// Three runs, two variants, two targets; floe's p99 differs by run.
	floe10k := []float64{300, 900, 330}
	floe12 := []float64{200, 300, 300}
	kfake := []float64{30, 60, 40}
	for run := 1; run <= 3; run++ {
		results = append(results,
			RunResult{Run: run, Variant: "p=10000", Target: "floe", Figures: f(floe10k[run-1], 4)},
			RunResult{Run: run, Variant: "p=10000", Target: "kfake", Figures: f(kfake[run-1], 0)},
			RunResult{Run: run, Variant: "p=12", Target: "floe", Figures: f(floe12[run-1], 5)},
			RunResult{Run: run, Variant: "p=12", Target: "kfake", Figures: f(kfake[run-1], 0)},
		)
	}
	s := Summarize(results)
	if s.Runs != 3 {
		t.Fatalf("runs = %d, want 3", s.Runs)
	}
	find := func(rows []Median, variant, name, metric string) Median {
		t.Helper()
		for _, m := range rows {
			if m.Variant == variant && m.Name == name && m.Metric == metric {
				return m
			}
		}
		t.Fatalf("no %s %s %s in %+v", variant, name, metric, rows)
		return Median{}
	}
	if m := find(s.Figures, "p=10000", "floe", "produce p99 ms"); m.Median != 330 || len(m.Values) != 3 {
		t.Errorf("floe 10k p99 median = %v of %v, want 330 of 3 runs", m.Median, m.Values)
	}
	// Ratios are taken run by run, then the median: 300/30, 900/60, 330/40.
	if m := find(s.TargetRatios, "p=10000", "floe / kfake", "produce p99 ms"); m.Median != 10 {
		t.Errorf("floe/kfake p99 median ratio = %v (%v), want 10", m.Median, m.Values)
	}
	// 300/200, 900/300, 330/300 → 1.1, 1.5, 3: median 1.5.
	if m := find(s.VariantRatios, "", "floe: p=10000 / p=12", "produce p99 ms"); m.Median != 1.5 {
		t.Errorf("floe 10k/12 p99 median ratio = %v (%v), want 1.5", m.Median, m.Values)
	}
	// kfake's PUT/s is 0: no ratio row divides by it.
	for _, m := range s.TargetRatios {
		if m.Metric == "PUT/s" {
			t.Errorf("unexpected ratio row %+v", m)
		}
	}
	var out bytes.Buffer
	s.WriteText(&out)
	for _, want := range []string{"medians of 3 run(s)", "floe / kfake", "floe: p=10000 / p=12", "1.50×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMedianEvenAndOdd(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
