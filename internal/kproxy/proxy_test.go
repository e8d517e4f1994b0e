package kproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
	"github.com/floe-io/floe/internal/kproxy"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/workload"
)

const partitions = 3

// record runs the kafka workload through a proxy with fault armed, in
// front of an in-process agent, and checks the history.
func record(t *testing.T, fault kproxy.Fault, seed int64) (checker.Result, kproxy.Injection, bool) {
	return recordWorkload(t, "kafka", fault, seed)
}

// recordWorkload is record for any workload.
func recordWorkload(t *testing.T, name string, fault kproxy.Fault, seed int64) (checker.Result, kproxy.Injection, bool) {
	t.Helper()
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	}})
	p, addr, err := kproxy.Start(a.Addr(), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Arm(fault)
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := workload.Run(ctx, workload.Config{
		Workload:          name,
		Brokers:           []string{addr},
		Topic:             fmt.Sprintf("proxied-%s-%s", name, fault),
		Seed:              seed,
		Partitions:        partitions,
		Duration:          1500 * time.Millisecond,
		MaxRecordsPerSend: 5,
		DrainTimeout:      10 * time.Second,
	}, history.NewWriter(&buf))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := history.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	res := checker.Check(ops)
	inj, ok := p.Injected()
	var out bytes.Buffer
	res.WriteText(&out, nil)
	t.Logf("fault %s: %+v (chosen %v); %+v\n%s", fault, inj, ok, sum, out.String())
	return res, inj, ok
}

// TestCheckerCatchesInjectedBugs is the checker's self-test: through a
// clean proxy the history is valid; with each fault the checker reports
// exactly the anomalies that fault implies, at the batch it chose.
func TestCheckerCatchesInjectedBugs(t *testing.T) {
	cases := []struct {
		fault kproxy.Fault
		kinds []checker.Kind
		check func(t *testing.T, res checker.Result, inj kproxy.Injection)
	}{
		{kproxy.None, nil, nil},
		{kproxy.DropRecord, []checker.Kind{checker.LostWrite, checker.PollSkip}, func(t *testing.T, res checker.Result, inj kproxy.Injection) {
			if n := res.AnomaliesByKind[checker.LostWrite]; n != 1 {
				t.Errorf("%d lost writes, want the one dropped", n)
			}
			where := fmt.Sprintf("%s/%d", inj.Topic, inj.Partition)
			for _, a := range res.Anomalies {
				if a.Partition != where || a.Offset != inj.Offset+1 {
					t.Errorf("%s at %s@%d, want %s@%d", a.Kind, a.Partition, a.Offset, where, inj.Offset+1)
				}
			}
		}},
		{kproxy.SwapRecords, []checker.Kind{checker.Reordered, checker.AckOffsetMismatch}, func(t *testing.T, res checker.Result, inj kproxy.Injection) {
			if res.AnomaliesByKind[checker.Reordered] != 1 || res.AnomaliesByKind[checker.AckOffsetMismatch] != 2 {
				t.Errorf("want one reordering and two mismatched acks: %v", res.AnomaliesByKind)
			}
		}},
		{kproxy.ReorderBatches, []checker.Kind{checker.LostWrite, checker.PollSkip}, func(t *testing.T, res checker.Result, inj kproxy.Injection) {
			// franz-go drops the earlier batch once it has read the later:
			// the final read, which gets both at once, loses all of it.
			if n := res.AnomaliesByKind[checker.LostWrite]; n != inj.Records {
				t.Errorf("%d lost writes, want the %d records of the batch moved back", n, inj.Records)
			}
		}},
		{kproxy.RewindCommits, []checker.Kind{checker.CommitRegressed, checker.CommitUnknown}, func(t *testing.T, res checker.Result, inj kproxy.Injection) {
			// One of each per partition the group committed to, found when
			// the committed offsets are read back at the end: below the
			// last acknowledged commit, and an offset no member sent.
			for _, k := range []checker.Kind{checker.CommitRegressed, checker.CommitUnknown} {
				if n := res.AnomaliesByKind[k]; n < 1 || n > partitions {
					t.Errorf("%d %s, want 1 to %d", n, k, partitions)
				}
			}
		}},
		{kproxy.AdvanceCommits, []checker.Kind{checker.CommitUnknown}, func(t *testing.T, res checker.Result, inj kproxy.Injection) {
			if n := res.AnomaliesByKind[checker.CommitUnknown]; n < 1 || n > partitions {
				t.Errorf("%d unknown committed offsets, want 1 to %d", n, partitions)
			}
		}},
		{kproxy.DuplicateBatch, []checker.Kind{checker.Duplicate}, func(t *testing.T, res checker.Result, inj kproxy.Injection) {
			if n := res.AnomaliesByKind[checker.Duplicate]; n != inj.Records {
				t.Errorf("%d duplicates, want one per record of the copied batch (%d)", n, inj.Records)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.fault.String(), func(t *testing.T) {
			res, inj, chosen := record(t, tc.fault, 11)
			if tc.fault != kproxy.None && !chosen {
				t.Fatalf("the fault found no batch to act on")
			}
			byKind := maps.Clone(res.AnomaliesByKind)
			if tc.fault == kproxy.AdvanceCommits {
				// The committed offsets read back at the end show it
				// always. A member given a partition after an advanced
				// commit starts past a record nobody in the group read,
				// and its next commit skips it too; whether that happens
				// depends on when members rejoin, so it may be reported.
				delete(byKind, checker.CommitSkip)
			}
			got := slices.Sorted(maps.Keys(byKind))
			want := slices.Clone(tc.kinds)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("anomaly kinds %v, want %v", got, want)
			}
			if !res.FinalRead {
				t.Errorf("the final read did not complete")
			}
			if tc.check != nil {
				tc.check(t, res, inj)
			}
		})
	}
}

// TestCheckerCatchesTxnBugs is the checker's self-test for transactions:
// the txn workload through a clean proxy checks valid; when the proxy
// hides the aborted index, read_committed consumers read aborted
// transactions' values and the checker reports them and nothing else;
// when it serves read_committed fetches as read_uncommitted, consumers
// also read transactions before they commit, their own included, and
// past transactions still open.
func TestCheckerCatchesTxnBugs(t *testing.T) {
	cases := []struct {
		fault kproxy.Fault
		// must be reported; may be reported besides
		must, may []checker.Kind
	}{
		{kproxy.None, nil, nil},
		{kproxy.HideAborts, []checker.Kind{checker.AbortedRead}, nil},
		{kproxy.ReadUncommitted, []checker.Kind{checker.AbortedRead, checker.ReadPastOpenTransaction},
			[]checker.Kind{checker.OwnUncommittedRead}},
	}
	for _, tc := range cases {
		t.Run(tc.fault.String(), func(t *testing.T) {
			res, _, chosen := recordWorkload(t, "txn", tc.fault, 5)
			if tc.fault != kproxy.None && !chosen {
				t.Fatalf("the fault found nothing to act on")
			}
			if !res.FinalRead {
				t.Errorf("the final read did not complete")
			}
			if res.Transactions.Committed == 0 || res.Transactions.Aborted == 0 {
				t.Fatalf("transactions %+v: want some committed and some aborted", res.Transactions)
			}
			for _, k := range tc.must {
				if res.AnomaliesByKind[k] == 0 {
					t.Errorf("no %s: %v", k, res.AnomaliesByKind)
				}
			}
			for k := range res.AnomaliesByKind {
				if !slices.Contains(tc.must, k) && !slices.Contains(tc.may, k) {
					t.Errorf("%d %s, want none", res.AnomaliesByKind[k], k)
				}
			}
			if n := res.AnomaliesByKind[checker.AbortedRead]; n > res.Aborted && tc.fault == kproxy.HideAborts {
				// Once per value: at most every aborted value.
				t.Errorf("%d aborted reads of %d aborted values", n, res.Aborted)
			}
		})
	}
}
