// Package torture runs `floe torture` as users run it: short runs with
// agents killed, paused and restarted with a skewed clock, clients
// partitioned from agents and agents from the database and the bucket
// (overlapping), the database restarted and paused and the bucket
// failing, which must check valid, and the self-test, which must find exactly the bugs
// it injects. The servers come from scripts/services (eval
// "$(scripts/services postgres s3)"); without them the tests skip,
// unless FLOE_REQUIRE_SERVICES=1.
package torture

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
)

var floeBin string

func TestMain(m *testing.M) { testutil.RunWithFloeBinary(m, "torture", &floeBin) }

func requireServices(t *testing.T) {
	t.Helper()
	// floe torture runs a PostgreSQL server of its own, with the
	// binaries scripts/services postgres installs.
	testutil.RequirePostgres(t)
	testutil.RequireS3(t)
}

// torture runs floe torture with args and --json, and returns the JSON
// object of its last line and its exit error.
func torture(t *testing.T, timeout time.Duration, args ...string) (map[string]any, error) {
	t.Helper()
	cmd := exec.Command(floeBin, append([]string{"torture", "--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("floe torture %v still running after %v\nstdout:\n%s\nstderr:\n%s", args, timeout, stdout.String(), stderr.String())
	}
	t.Logf("floe torture %v (exit: %v):\n%s%s", args, err, stderr.String(), stdout.String())
	out := strings.TrimSpace(stdout.String())
	last := out[strings.LastIndexByte(out, '\n')+1:]
	var rep map[string]any
	if jerr := json.Unmarshal([]byte(last), &rep); jerr != nil {
		t.Fatalf("last line of floe torture's output is not JSON (%v): %q", jerr, last)
	}
	return rep, err
}

// TestTortureShortRun: three agents, SIGKILLed and restarted or
// SIGSTOPped, and clients partitioned from one agent at a time, for
// 60 s; the history must check valid.
func TestTortureShortRun(t *testing.T) {
	requireServices(t)
	rep, err := torture(t, 4*time.Minute, "--agents", "3", "--faults", "kill,pause,partition", "--duration", "60s", "--seed", "12")
	if err != nil {
		t.Errorf("floe torture exited with %v, want 0", err)
	}
	if n, _ := rep["anomalies"].(float64); n != 0 || rep["valid"] != true {
		t.Errorf("anomalies %v (%v), want none", rep["anomalies"], rep["anomalies_by_kind"])
	}
	if n, _ := rep["acknowledged"].(float64); n < 100 {
		t.Errorf("%v values acknowledged, want at least 100", rep["acknowledged"])
	}
	if rep["final_read"] != true {
		t.Errorf("the final read did not complete")
	}
	if applied, _ := rep["faults_applied"].([]any); len(applied) == 0 {
		t.Errorf("no fault was applied")
	}
}

// TestTortureDatabaseAndBucket: the database stopped as in a crash
// (pg_ctl stop -m immediate) and paused, and bucket requests failing,
// for 45 s (seed 22 applies each). It is also the regression test of
// the torture's finding: with synchronous_commit off, an immediate stop
// lost acknowledged commits, and the history showed lost writes and
// offsets given twice (docs/correctness.md).
func TestTortureDatabaseAndBucket(t *testing.T) {
	requireServices(t)
	rep, err := torture(t, 4*time.Minute, "--agents", "3", "--faults", "db-restart,db-pause,bucket-errors", "--duration", "45s", "--seed", "22")
	if err != nil {
		t.Errorf("floe torture exited with %v, want 0", err)
	}
	if n, _ := rep["anomalies"].(float64); n != 0 || rep["valid"] != true {
		t.Errorf("anomalies %v (%v), want none", rep["anomalies"], rep["anomalies_by_kind"])
	}
	if rep["final_read"] != true {
		t.Errorf("the final read did not complete")
	}
	applied, _ := rep["faults_applied"].([]any)
	restarted := false
	for _, f := range applied {
		s, _ := f.(string)
		restarted = restarted || strings.HasPrefix(s, "db-restart")
	}
	if !restarted {
		t.Errorf("the database was not restarted: %v", applied)
	}
}

// TestTortureOverlappingPartitionsAndClock: one agent restarted with a
// skewed clock while another is cut off the database and a third off
// the bucket, overlapping (seed 9 applies all three in its first step,
// then a clock and a bucket partition together), for 25 s; the history
// must check valid.
func TestTortureOverlappingPartitionsAndClock(t *testing.T) {
	requireServices(t)
	rep, err := torture(t, 3*time.Minute, "--agents", "3", "--faults", "clock,db-partition,bucket-partition", "--overlap", "3", "--duration", "25s", "--seed", "9")
	if err != nil {
		t.Errorf("floe torture exited with %v, want 0", err)
	}
	if n, _ := rep["anomalies"].(float64); n != 0 || rep["valid"] != true {
		t.Errorf("anomalies %v (%v), want none", rep["anomalies"], rep["anomalies_by_kind"])
	}
	if rep["final_read"] != true {
		t.Errorf("the final read did not complete")
	}
	applied, _ := rep["faults_applied"].([]any)
	kinds := map[string]int{}
	for _, f := range applied {
		s, _ := f.(string)
		kind, _, _ := strings.Cut(s, " ")
		kinds[kind]++
	}
	if kinds["clock"] == 0 || kinds["db-partition"] == 0 || kinds["bucket-partition"] == 0 || len(applied) < 4 {
		t.Errorf("faults applied %v: want clock, db-partition and bucket-partition, overlapping", applied)
	}
}

// TestTortureSelfTest: the checker must report exactly the bugs kproxy
// injects (a dropped record, swapped records, reordered batches, a
// duplicated batch), and nothing on a clean run.
func TestTortureSelfTest(t *testing.T) {
	requireServices(t)
	rep, err := torture(t, 4*time.Minute, "--self-test", "--agents", "2", "--seed", "7")
	if err != nil {
		t.Errorf("floe torture --self-test exited with %v, want 0", err)
	}
	if rep["passed"] != true {
		t.Errorf("the self-test did not pass: %v", rep["cases"])
	}
	if cases, _ := rep["cases"].([]any); len(cases) != 5 {
		t.Errorf("%d self-test cases, want 5 (a clean run and four bugs)", len(cases))
	}
}

// TestTortureTransactions: the txn workload (transactional producers
// that commit or abort, an idempotent one beside them, consumers at
// read_committed and one at read_uncommitted) while agents are
// SIGKILLed and restarted, for 20 s (the nemesis's first 15 s always
// hold a kill or two: seed 3 kills agent-2 for 5.6 s); the history must
// check valid, with transactions committed and aborted.
func TestTortureTransactions(t *testing.T) {
	requireServices(t)
	rep, err := torture(t, 3*time.Minute, "--workload", "txn", "--agents", "3", "--faults", "kill", "--duration", "20s", "--seed", "3")
	if err != nil {
		t.Errorf("floe torture exited with %v, want 0", err)
	}
	if n, _ := rep["anomalies"].(float64); n != 0 || rep["valid"] != true {
		t.Errorf("anomalies %v (%v), want none", rep["anomalies"], rep["anomalies_by_kind"])
	}
	if rep["final_read"] != true {
		t.Errorf("the final read did not complete")
	}
	if n, _ := rep["acknowledged"].(float64); n < 100 {
		t.Errorf("%v values acknowledged, want at least 100", rep["acknowledged"])
	}
	txns, _ := rep["transactions"].(map[string]any)
	if c, _ := txns["committed"].(float64); c < 20 {
		t.Errorf("transactions %v: want at least 20 committed", txns)
	}
	if a, _ := txns["aborted"].(float64); a < 1 {
		t.Errorf("transactions %v: want some aborted", txns)
	}
	applied, _ := rep["faults_applied"].([]any)
	if len(applied) == 0 {
		t.Errorf("no fault was applied")
	}
}
