package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// A bench invocation may repeat its workload (--runs) and run it in more
// than one variant (--vs-partitions): this file reduces such a set of
// reports to the medians docs/benchmarks.md reports, and the ratios
// between targets and between variants, each taken per run and then the
// median of those, so that a ratio always compares two runs made one
// after the other.

// Figures are the numbers of one report that the summary tables show.
type Figures struct {
	ProduceMiBps float64 `json:"produce_mib_per_sec"`
	ProduceP50   float64 `json:"produce_p50_ms"`
	ProduceP99   float64 `json:"produce_p99_ms"`
	ProduceP999  float64 `json:"produce_p999_ms"`
	EndToEndP99  float64 `json:"end_to_end_p99_ms"` // 0 when not measured
	ConsumeMiBps float64 `json:"consume_mib_per_sec"`
	PutsPerSec   float64 `json:"puts_per_sec"`      // 0 without server metrics
	PutUSDMonth  float64 `json:"put_usd_per_month"` // the PUT bill at PutsPerSec
	GetsPerSec   float64 `json:"gets_per_sec"`
	CommitMs     float64 `json:"avg_commit_ms"`
	CPUmsPerMiB  float64 `json:"process_cpu_ms_per_mib"`
	LoadBefore   float64 `json:"load_before"`
	LoadAfter    float64 `json:"load_after"`
}

// FiguresOf extracts the summary figures of a report. prices give the
// PUT bill.
func FiguresOf(rep *Report, prices Prices) Figures {
	prices.setDefaults()
	f := Figures{
		ProduceMiBps: rep.Produce.MiBPerSec,
		ProduceP50:   rep.Produce.Latency.P50,
		ProduceP99:   rep.Produce.Latency.P99,
		ProduceP999:  rep.Produce.Latency.P999,
		ConsumeMiBps: rep.Consume.MiBPerSec,
		LoadBefore:   rep.Load[0],
		LoadAfter:    rep.Load[1],
	}
	if rep.EndToEnd != nil {
		f.EndToEndP99 = rep.EndToEnd.P99
	}
	if s := rep.ServerFigures; s != nil {
		f.PutsPerSec, f.GetsPerSec, f.CommitMs = s.PutsPerSec, s.GetsPerSec, s.AvgCommitMilli
		f.PutUSDMonth = s.PutsPerSec * secondsPerMonth / 1000 * prices.PutPer1000
	}
	if mib := float64(rep.Produce.Bytes+rep.Consume.Bytes) / (1 << 20); mib > 0 {
		f.CPUmsPerMiB = rep.ClientCPUSeconds / mib * 1000
	}
	return f
}

// RunResult is one report of a repeated invocation, with the run and
// variant it belongs to.
type RunResult struct {
	Run     int     `json:"run"`     // from 1
	Variant string  `json:"variant"` // e.g. "partitions=12"; "" when there is one
	Target  string  `json:"target"`
	Figures Figures `json:"figures"`
}

// Median is the median of a figure over the runs of one variant and
// target, or of one ratio over the runs.
type Median struct {
	Variant string    `json:"variant,omitempty"`
	Name    string    `json:"name"` // a target, or "A / B" for a ratio
	Metric  string    `json:"metric"`
	Median  float64   `json:"median"`
	Values  []float64 `json:"values"` // run by run
}

// summaryMetrics lists the figures the summary reports, in table order.
var summaryMetrics = []struct {
	name string
	get  func(Figures) float64
	// ratio: also report A/B between targets and between variants.
	ratio bool
}{
	{"produce MiB/s", func(f Figures) float64 { return f.ProduceMiBps }, true},
	{"produce p50 ms", func(f Figures) float64 { return f.ProduceP50 }, true},
	{"produce p99 ms", func(f Figures) float64 { return f.ProduceP99 }, true},
	{"produce p99.9 ms", func(f Figures) float64 { return f.ProduceP999 }, false},
	{"end-to-end p99 ms", func(f Figures) float64 { return f.EndToEndP99 }, true},
	{"consume MiB/s", func(f Figures) float64 { return f.ConsumeMiBps }, true},
	{"PUT/s", func(f Figures) float64 { return f.PutsPerSec }, false},
	{"PUT $/month", func(f Figures) float64 { return f.PutUSDMonth }, false},
	{"GET/s", func(f Figures) float64 { return f.GetsPerSec }, false},
	{"commit ms", func(f Figures) float64 { return f.CommitMs }, false},
	{"CPU ms/MiB", func(f Figures) float64 { return f.CPUmsPerMiB }, true},
	{"load before", func(f Figures) float64 { return f.LoadBefore }, false},
	{"load after", func(f Figures) float64 { return f.LoadAfter }, false},
}

// Medians holds the medians of a repeated invocation.
type Medians struct {
	Runs int `json:"runs"`
	// Figures: per variant and target, the median of each figure.
	Figures []Median `json:"medians"`
	// TargetRatios: per variant, the median over runs of first target /
	// second target (e.g. floe / kfake).
	TargetRatios []Median `json:"target_ratios,omitempty"`
	// VariantRatios: per target, the median over runs of first variant /
	// second variant (e.g. 10,000 partitions / 12).
	VariantRatios []Median `json:"variant_ratios,omitempty"`
}

// Summarize computes the medians of results, which hold every
// (run, variant, target) once.
func Summarize(results []RunResult) Medians {
	var s Medians
	var variants, targets []string
	byKey := map[[2]string]map[int]Figures{}
	for _, r := range results {
		s.Runs = max(s.Runs, r.Run)
		if !slices.Contains(variants, r.Variant) {
			variants = append(variants, r.Variant)
		}
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
		k := [2]string{r.Variant, r.Target}
		if byKey[k] == nil {
			byKey[k] = map[int]Figures{}
		}
		byKey[k][r.Run] = r.Figures
	}
	runs := func(k [2]string) []int {
		var out []int
		for run := range byKey[k] {
			out = append(out, run)
		}
		slices.Sort(out)
		return out
	}
	for _, v := range variants {
		for _, t := range targets {
			k := [2]string{v, t}
			for _, m := range summaryMetrics {
				var vals []float64
				for _, run := range runs(k) {
					vals = append(vals, m.get(byKey[k][run]))
				}
				if len(vals) > 0 {
					s.Figures = append(s.Figures, Median{Variant: v, Name: t, Metric: m.name, Median: median(vals), Values: vals})
				}
			}
		}
	}
	ratio := func(dst *[]Median, variant, name string, a, b map[int]Figures) {
		for _, m := range summaryMetrics {
			if !m.ratio {
				continue
			}
			var vals []float64
			for run := 1; run <= s.Runs; run++ {
				fa, okA := a[run]
				fb, okB := b[run]
				if okA && okB && m.get(fb) != 0 {
					vals = append(vals, m.get(fa)/m.get(fb))
				}
			}
			if len(vals) > 0 {
				*dst = append(*dst, Median{Variant: variant, Name: name, Metric: m.name, Median: median(vals), Values: vals})
			}
		}
	}
	if len(targets) == 2 {
		for _, v := range variants {
			ratio(&s.TargetRatios, v, targets[0]+" / "+targets[1], byKey[[2]string{v, targets[0]}], byKey[[2]string{v, targets[1]}])
		}
	}
	if len(variants) == 2 {
		for _, t := range targets {
			ratio(&s.VariantRatios, "", t+": "+variants[0]+" / "+variants[1], byKey[[2]string{variants[0], t}], byKey[[2]string{variants[1], t}])
		}
	}
	return s
}

// median returns the median of vals (the mean of the middle two for an
// even count); vals is not modified.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	v := slices.Clone(vals)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// WriteText renders the summary: one table of medians per variant and
// target, then the ratios.
func (s Medians) WriteText(w io.Writer) {
	fmt.Fprintf(w, "medians of %d run(s) (each value: the median, then run by run)\n\n", s.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "variant\ttarget\tmetric\tmedian\truns\t")
	for _, m := range s.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", orDash(m.Variant), m.Name, m.Metric, fig(m.Median), figs(m.Values))
	}
	tw.Flush()
	for _, group := range []struct {
		title string
		rows  []Median
	}{{"ratios between targets, run by run", s.TargetRatios}, {"ratios between variants, run by run", s.VariantRatios}} {
		if len(group.rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (median, then each run)\n\n", group.title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "variant\tratio\tmetric\tmedian\truns\t")
		for _, m := range group.rows {
			vals := make([]string, len(m.Values))
			for i, v := range m.Values {
				vals[i] = fmt.Sprintf("%.2f×", v)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f×\t%s\t\n", orDash(m.Variant), m.Name, m.Metric, m.Median, strings.Join(vals, ", "))
		}
		tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fig(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func figs(vals []float64) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = fig(v)
	}
	return strings.Join(out, ", ")
}
