package main

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/testutil"
)

func TestWithPoolSize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		pool     int
	}{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?pool_max_conns=60&sslmode=disable", 60},
		{"postgres://u@h:5432/db?pool_max_conns=8", "postgres://u@h:5432/db?pool_max_conns=8", 8},
		{"embedded:///tmp/x.db", "embedded:///tmp/x.db", 0},
	} {
		got := withPoolSize(tc.in, 60)
		if got != tc.want {
			t.Errorf("withPoolSize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := poolSize(got); n != tc.pool {
			t.Errorf("poolSize(%q) = %d, want %d", got, n, tc.pool)
		}
	}
	if n := poolSize("postgres://u@h:5432/db?pool_max_conns=lots"); n != 0 {
		t.Errorf("poolSize of an unparsable pool_max_conns = %d, want 0", n)
	}
}

// floe bench metastore runs on a temporary embedded store and prints its
// report; bad flags are refused before anything runs.
func TestBenchMetastoreCommand(t *testing.T) {
	var out, errs strings.Builder
	err := run([]string{"bench", "metastore", "--agents", "2", "--partitions", "10", "--partitions-per-commit", "2",
		"--readers", "1", "--duration", "300ms", "--warmup", "0s", "--progress", "100ms"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "commits/s") || !strings.Contains(errs.String(), "[metastore]") {
		t.Errorf("report %q, progress %q", out.String(), errs.String())
	}
	if err := run([]string{"bench", "metastore", "--partitions", "1", "--partitions-per-commit", "2"}, &out, &errs); err == nil {
		t.Error("more partitions per commit than partitions accepted")
	}
	if err := run([]string{"bench", "metastore", "--segments-in-flight", "2", "--put-latency", "50ms-20ms"}, &out, &errs); err == nil {
		t.Error("a put latency range from 50ms down to 20ms accepted")
	}
	out.Reset()
	err = run([]string{"bench", "metastore", "--agents", "2", "--partitions", "10", "--partitions-per-commit", "2",
		"--readers", "0", "--duration", "300ms", "--warmup", "0s", "--progress", "0",
		"--segments-in-flight", "3", "--put-latency", "1ms-3ms"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "3 segments in flight, uploads of 1ms–3ms uniform") {
		t.Errorf("report %q", out.String())
	}
}

// --compare runs two stores alternately and prints the ratios.
func TestBenchMetastoreCompare(t *testing.T) {
	var out, errs strings.Builder
	a := "embedded://" + t.TempDir() + "/a.db"
	b := "embedded://" + t.TempDir() + "/b.db"
	err := run([]string{"bench", "metastore", "--metastore", a, "--compare", b, "--rounds", "2", "--agents", "2", "--partitions", "10",
		"--partitions-per-commit", "2", "--readers", "1", "--duration", "200ms", "--warmup", "0s", "--progress", "0"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	if got := strings.Count(out.String(), "commits/s  p50"); got != 4 {
		t.Errorf("%d runs reported, want 4:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), "commits/s ratio") || !strings.Contains(out.String(), "1.00×") {
		t.Errorf("no ratios:\n%s", out.String())
	}
	if err := run([]string{"bench", "metastore", "--compare", b, "--rounds", "0"}, &out, &errs); err == nil {
		t.Error("--rounds 0 accepted")
	}
}

// On PostgreSQL, --store-per-agent --relay-notices opens a store per
// simulated agent and relays their notices to each other; the report
// says so. --relay-notices alone is refused.
func TestBenchMetastoreRelayNotices(t *testing.T) {
	var out, errs strings.Builder
	if err := run([]string{"bench", "metastore", "--relay-notices"}, &out, &errs); err == nil {
		t.Error("--relay-notices without --store-per-agent accepted")
	}
	db := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_bench_relay_")
	err := run([]string{"bench", "metastore", "--metastore", db, "--store-per-agent", "--relay-notices", "--agents", "3", "--partitions", "10",
		"--partitions-per-commit", "2", "--readers", "1", "--duration", "300ms", "--warmup", "0s", "--progress", "0"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	// Each of the 3 stores: 2 connections plus its share of 1 reader.
	if !strings.Contains(out.String(), "3 store(s) opened apart (pools of 9 connections together), notices relayed between the stores") {
		t.Errorf("report %q", out.String())
	}
}
