package main

import (
	"strings"
	"testing"
)

func TestWithPoolSize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?pool_max_conns=60&sslmode=disable"},
		{"postgres://u@h:5432/db?pool_max_conns=8", "postgres://u@h:5432/db?pool_max_conns=8"},
		{"embedded:///tmp/x.db", "embedded:///tmp/x.db"},
	} {
		if got := withPoolSize(tc.in, 60); got != tc.want {
			t.Errorf("withPoolSize(%q) = %q, want %q", tc.in, got, tc.want)
		}
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
}
