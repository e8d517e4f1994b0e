package main

import (
	"encoding/json"
	"os"
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

// floe bench --isolate runs each target of each run in a process of its
// own (this test binary, as the floe command) and reports as without it:
// the flags reach the child (the partitions, the topic configs, the
// catch-up size) and its report comes back, one per target and run, in
// order.
func TestBenchIsolate(t *testing.T) {
	t.Setenv("FLOE_TEST_AS_COMMAND", "1") // the children run main (TestMain)
	var out, errs strings.Builder
	err := run([]string{"bench", "--isolate", "--target", "kfake,floe", "--runs", "2", "--partitions", "3",
		"--topic-config", "retention.ms=3600000", "--topic-config", "max.message.bytes=2000000",
		"--catch-up", "256KiB", "--rate", "64KiB", "--floe-linger", "20ms", "--progress", "0", "--json"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var rep struct {
		Runs []struct {
			Target   string `json:"target"`
			Workload struct {
				Partitions   int               `json:"partitions_per_topic"`
				CatchUpMiB   float64           `json:"catch_up_mib"`
				TopicConfigs map[string]string `json:"topic_configs"`
			} `json:"workload"`
			Consistency struct {
				OK bool `json:"ok"`
			} `json:"consistency"`
		} `json:"runs"`
		Medians *struct {
			Runs int `json:"runs"`
		} `json:"medians"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rep.Runs) != 4 || rep.Medians == nil || rep.Medians.Runs != 2 {
		t.Fatalf("%d reports, medians %+v; want 4 reports and the medians of 2 runs\n%s", len(rep.Runs), rep.Medians, errs.String())
	}
	for i, r := range rep.Runs {
		want := []string{"kfake", "floe"}[i%2]
		if r.Target != want || r.Workload.Partitions != 3 || r.Workload.CatchUpMiB != 0.25 ||
			r.Workload.TopicConfigs["retention.ms"] != "3600000" || r.Workload.TopicConfigs["max.message.bytes"] != "2000000" {
			t.Errorf("report %d: %+v; want target %s, 3 partitions, a catch-up of 0.25 MiB and both topic configs", i, r, want)
		}
		if !r.Consistency.OK {
			t.Errorf("report %d (%s): consistency not ok", i, r.Target)
		}
	}
	if err := run([]string{"bench", "--isolate", "--runs", "1"}, &out, &errs); err == nil {
		t.Error("--isolate without --target accepted")
	}
}

// physicalMemory reads the machine's memory where /proc/meminfo exists,
// within what a machine can have.
func TestPhysicalMemory(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo here")
	}
	if got := physicalMemory(); got < 64<<20 || got > 1<<50 {
		t.Fatalf("physicalMemory() = %d bytes", got)
	}
}
