package bench

import "strings"

// Preset is a named workload kept in the repository, so that the figures
// in docs/benchmarks.md can be reproduced with one command. Args are
// `floe bench` flags; flags given after --preset override them.
type Preset struct {
	Name  string
	Title string
	Why   string
	Args  []string
}

// CommandLine is the full command the preset stands for, quoted for a
// POSIX shell.
func (p Preset) CommandLine() string {
	args := make([]string, len(p.Args))
	for i, a := range p.Args {
		args[i] = a
		if strings.ContainsAny(a, "&?;|<>()$`\\\"' *") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return "floe bench " + strings.Join(args, " ")
}

// S3LatencyBucket is the bucket URL of the s3-latency preset: the
// versitygw server that `scripts/services s3` starts.
const S3LatencyBucket = "s3://floe-test?endpoint=http://127.0.0.1:7070&region=us-east-1&path_style=true"

// Presets returns the named scenarios, in the order of docs/benchmarks.md.
func Presets() []Preset {
	// Every preset runs Floe and kfake side by side, with Floe's bucket
	// slowed to resemble a cloud object store, for a time a 2-core
	// machine can afford.
	common := []string{"--target", "floe,kfake", "--bucket-latency", "20ms-50ms", "--warmup", "5s", "--duration", "20s"}
	with := func(args ...string) []string {
		return append(append([]string(nil), common...), args...)
	}
	live := []string{"--record-size", "1KiB", "--rate", "4MiB", "--producers", "1"}
	defaults := append(live, "--partitions", "12", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms")
	return []Preset{
		{
			Name:  "default",
			Title: "default agent linger 250 ms, 1 KiB records, 4 MiB/s",
			Why:   "the configuration Floe ships with; client linger 50 ms as the README recommends",
			Args:  with(defaults...),
		},
		{
			Name:  "low-latency",
			Title: "agent linger 50 ms",
			Why:   "trades 5× the PUTs (and their cost) for lower latency",
			Args:  with(append(live, "--partitions", "12", "--consumers", "1", "--floe-linger", "50ms", "--linger", "10ms")...),
		},
		{
			Name:  "max-throughput",
			Title: "as fast as two producers can go",
			Why:   "the throughput ceiling of this machine; latency here is queueing, not the floor",
			Args:  with("--record-size", "1KiB", "--rate", "max", "--producers", "2", "--partitions", "12", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms"),
		},
		{
			Name:  "partitions-1k",
			Title: "1,000 partitions at 4 MiB/s",
			Why:   "PUTs per second must not grow with partitions (compare with default)",
			Args:  with(append(live, "--partitions", "1000", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms")...),
		},
		{
			Name:  "partitions-10k",
			Title: "10,000 partitions at 4 MiB/s",
			Why:   "PUTs per second must not grow with partitions (compare with default)",
			Args:  with(append(live, "--partitions", "10000", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms")...),
		},
		{
			Name:  "partitions-10k-vs-12",
			Title: "10,000 partitions against 12, at 4 MiB/s",
			Why:   "produce p99 must not grow with partitions: each target runs 10,000 partitions, then the same workload at 12, and the ratios between the two are printed",
			Args:  with(append(live, "--partitions", "10000", "--vs-partitions", "12", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms")...),
		},
		{
			Name:  "fan-out",
			Title: "1 producer, 10 consumers",
			Why:   "ten independent readers of the live edge; GETs must not grow with readers (the bench does not use consumer groups: each consumer assigns itself every partition)",
			Args:  with(append(live, "--partitions", "12", "--consumers", "10", "--floe-linger", "250ms", "--linger", "50ms")...),
		},
		{
			Name:  "catch-up",
			Title: "catch-up read of 256 MiB of history",
			Why:   "history is written as fast as possible (into 8 MiB objects of all partitions), Floe is restarted so its cache is cold, then one consumer reads it all; no background job runs",
			Args:  with("--record-size", "1KiB", "--catch-up", "256MiB", "--producers", "2", "--partitions", "12", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms"),
		},
		{
			Name:  "catch-up-compacted",
			Title: "catch-up read of 256 MiB of compacted history",
			Why:   "as catch-up, but Floe compacts the history (few large objects, each partition's bytes contiguous) before the cold read",
			Args:  with("--record-size", "1KiB", "--catch-up", "256MiB", "--catch-up-compact", "--producers", "2", "--partitions", "12", "--consumers", "1", "--floe-linger", "250ms", "--linger", "50ms"),
		},
		{
			Name:  "s3-latency",
			Title: "default over S3: versitygw behind a proxy adding 20–50 ms per request",
			Why: "the default workload with the real S3 client (signing, retries, hedged GETs) and a network hop per request; " +
				"needs `eval \"$(scripts/services s3)\"` and its key pair as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; " +
				"--floe-bucket points it elsewhere, --target floe runs Floe alone",
			Args: append([]string{"--target", "floe,kfake", "--floe-bucket", S3LatencyBucket, "--bucket-proxy-latency", "20ms-50ms",
				"--warmup", "5s", "--duration", "20s"}, defaults...),
		},
	}
}

// FindPreset returns the preset with the given name.
func FindPreset(name string) (Preset, bool) {
	for _, p := range Presets() {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}
