package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// floe bench --runs 2 --vs-partitions N runs the workload twice at each
// partition count and reports every run's figures, the medians and the
// ratios between the partition counts; --runs 0 is refused.
func TestBenchRunsAndVsPartitions(t *testing.T) {
	var out, errs strings.Builder
	err := run([]string{"bench", "--target", "floe", "--runs", "2", "--partitions", "2", "--vs-partitions", "1",
		"--duration", "400ms", "--warmup", "0s", "--rate", "64KiB", "--floe-linger", "20ms", "--progress", "0", "--json"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var rep struct {
		Runs    []json.RawMessage `json:"runs"`
		Results []struct {
			Run     int    `json:"run"`
			Variant string `json:"variant"`
		} `json:"results"`
		Medians struct {
			Runs          int `json:"runs"`
			VariantRatios []struct {
				Name   string    `json:"name"`
				Metric string    `json:"metric"`
				Values []float64 `json:"values"`
			} `json:"variant_ratios"`
		} `json:"medians"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rep.Runs) != 4 || len(rep.Results) != 4 || rep.Medians.Runs != 2 {
		t.Fatalf("%d reports, %d results, medians of %d runs; want 4, 4, 2", len(rep.Runs), len(rep.Results), rep.Medians.Runs)
	}
	if rep.Results[0].Variant != "partitions=2" || rep.Results[1].Variant != "partitions=1" || rep.Results[2].Run != 2 {
		t.Errorf("results out of order: %+v", rep.Results)
	}
	found := false
	for _, r := range rep.Medians.VariantRatios {
		if r.Name == "floe: partitions=2 / partitions=1" && r.Metric == "produce p99 ms" && len(r.Values) == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("no per-run produce p99 ratio between the partition counts in %+v", rep.Medians.VariantRatios)
	}
	if err := run([]string{"bench", "--target", "floe", "--runs", "0"}, &out, &errs); err == nil {
		t.Error("--runs 0 accepted")
	}
}
