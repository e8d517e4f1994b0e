package control_test

import (
	"os"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/testutil"
)

// TestBenchCommits drives a vcluster with floe bench metastore's load, in
// process, for profiling (go test -run BenchCommits -cpuprofile F); it
// runs only with FLOE_CONTROL_BENCH=1.
func TestBenchCommits(t *testing.T) {
	if os.Getenv("FLOE_CONTROL_BENCH") == "" {
		t.Skip("FLOE_CONTROL_BENCH not set")
	}
	cp := newControl(t)
	if dir := os.Getenv("FLOE_CONTROL_BENCH_DIR"); dir != "" {
		// Another server on the same journal, its state under dir (a
		// tmpfs, say).
		cp = startControlIn(t, cp.dbURL, dir)
	}
	key, err := cp.server.CreateVCluster(t.Context(), "bench")
	if err != nil {
		t.Fatal(err)
	}
	c := cp.client(t, "bench", key)
	rep, err := bench.RunMetastore(t.Context(), c, bench.MetastoreConfig{
		Agents: 50, PartitionsPerCommit: 10, Partitions: 1000, Readers: 10, ReadsPerSec: 2000,
		Duration: 8 * time.Second, Warmup: 2 * time.Second, Logger: testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(os.Stderr)
	st, _ := cp.server.Stats("bench")
	t.Logf("vcluster: %v", st)
}
