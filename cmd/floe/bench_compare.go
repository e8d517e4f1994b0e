package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/floe-io/floe/internal/bench"
)

// benchMetastoreCompare is "floe bench metastore --compare URL [--rounds
// N]": the same load on --metastore and on URL, alternately, N rounds, in
// one run, then each run and the ratio of the medians (for example
// `floe control` against the PostgreSQL it would replace,
// docs/benchmarks.md). handled is false when args have no --compare.
func benchMetastoreCompare(ctx context.Context, args []string, stdout, stderr io.Writer) (handled bool, err error) {
	var compare, base string
	rounds := 1
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "compare" && name != "rounds" && name != "metastore" && name != "json") {
			rest = append(rest, a)
			continue
		}
		if name == "json" {
			continue // the comparison prints its own report
		}
		if !hasValue {
			if i+1 >= len(args) {
				return true, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "compare":
			compare = value
		case "metastore":
			base = value
		case "rounds":
			rounds, err = strconv.Atoi(value)
			if err != nil || rounds < 1 || rounds > 100 {
				return true, fmt.Errorf("--rounds %q: want 1 to 100", value)
			}
		}
	}
	if compare == "" {
		return false, nil
	}
	targets := []string{base, compare}
	reports := make([][]*bench.MetastoreReport, len(targets))
	for round := 1; round <= rounds; round++ {
		for i, url := range targets {
			runArgs := slices.Clone(rest)
			if url != "" {
				runArgs = append(runArgs, "--metastore", url)
			}
			runArgs = append(runArgs, "--json")
			var out bytes.Buffer
			fmt.Fprintf(stderr, "floe bench metastore: round %d of %d, %s\n", round, rounds, targetName(url))
			if err := benchMetastoreCmd(ctx, runArgs, &out, stderr); err != nil {
				return true, fmt.Errorf("round %d, %s: %w", round, targetName(url), err)
			}
			var rep bench.MetastoreReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				return true, fmt.Errorf("round %d, %s: report: %w", round, targetName(url), err)
			}
			reports[i] = append(reports[i], &rep)
			fmt.Fprintf(stdout, "round %d  %-60s  %6.0f commits/s  p50 %7.2f ms  p99 %7.2f ms  errors %d\n",
				round, targetName(url), rep.CommitsPerSec, rep.Commit.P50, rep.Commit.P99, rep.CommitErrors)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ntarget\tmedian commits/s\tmedian p99 ms\tcommits/s ratio\tp99 ratio")
	baseRate, baseP99 := medianOf(reports[0], rate), medianOf(reports[0], p99)
	for i, url := range targets {
		r, p := medianOf(reports[i], rate), medianOf(reports[i], p99)
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f×\t%.2f×\n", targetName(url), r, p, r/baseRate, p/baseP99)
	}
	return true, tw.Flush()
}

func rate(r *bench.MetastoreReport) float64 { return r.CommitsPerSec }
func p99(r *bench.MetastoreReport) float64  { return r.Commit.P99 }

func medianOf(rs []*bench.MetastoreReport, f func(*bench.MetastoreReport) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

func targetName(url string) string {
	if url == "" {
		return "embedded (temporary file)"
	}
	return redactedURL(url)
}
