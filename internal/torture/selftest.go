package torture

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
	"github.com/floe-io/floe/internal/kproxy"
	"github.com/floe-io/floe/internal/workload"
)

// SelfCase is one injected bug of the self-test and what the checker
// found.
type SelfCase struct {
	Fault     string         `json:"fault"`
	Want      []string       `json:"want"`
	Found     map[string]int `json:"found"`
	Injection string         `json:"injection,omitempty"`
	Passed    bool           `json:"passed"`
	Why       string         `json:"why,omitempty"`
}

// SelfReport is the self-test's verdict.
type SelfReport struct {
	Passed bool       `json:"passed"`
	Cases  []SelfCase `json:"cases"`
	// Anomalies counts what the checker reported over all cases, all of
	// them injected.
	Anomalies       int            `json:"anomalies"`
	AnomaliesByKind map[string]int `json:"anomalies_by_kind"`
	Acknowledged    int            `json:"acknowledged"`
}

// selfFaults are the bugs the self-test injects through kproxy, and the
// anomaly kinds each must produce, exactly. A clean run comes first.
var selfFaults = []struct {
	fault kproxy.Fault
	want  []checker.Kind
	// count checks the numbers against what the proxy did.
	count func(res checker.Result, inj kproxy.Injection) string
}{
	{kproxy.None, nil, nil},
	{kproxy.DropRecord, []checker.Kind{checker.LostWrite, checker.PollSkip}, func(res checker.Result, inj kproxy.Injection) string {
		if n := res.AnomaliesByKind[checker.LostWrite]; n != 1 {
			return fmt.Sprintf("%d lost writes, want the 1 dropped", n)
		}
		where := fmt.Sprintf("%s/%d", inj.Topic, inj.Partition)
		for _, a := range res.Anomalies {
			if a.Partition != where || a.Offset != inj.Offset+1 {
				return fmt.Sprintf("%s at %s@%d, want %s@%d", a.Kind, a.Partition, a.Offset, where, inj.Offset+1)
			}
		}
		return ""
	}},
	{kproxy.SwapRecords, []checker.Kind{checker.Reordered, checker.AckOffsetMismatch}, func(res checker.Result, inj kproxy.Injection) string {
		if res.AnomaliesByKind[checker.Reordered] != 1 || res.AnomaliesByKind[checker.AckOffsetMismatch] != 2 {
			return fmt.Sprintf("want 1 reordering and 2 mismatched acknowledgements, got %v", res.AnomaliesByKind)
		}
		return ""
	}},
	{kproxy.ReorderBatches, []checker.Kind{checker.LostWrite, checker.PollSkip}, func(res checker.Result, inj kproxy.Injection) string {
		if n := res.AnomaliesByKind[checker.LostWrite]; n != inj.Records {
			return fmt.Sprintf("%d lost writes, want the %d records of the batch moved back", n, inj.Records)
		}
		return ""
	}},
	{kproxy.DuplicateBatch, []checker.Kind{checker.Duplicate}, func(res checker.Result, inj kproxy.Injection) string {
		if n := res.AnomaliesByKind[checker.Duplicate]; n != inj.Records {
			return fmt.Sprintf("%d duplicates, want one per record of the copied batch (%d)", n, inj.Records)
		}
		return ""
	}},
}

// SelfTest starts a cluster, and for a clean proxy and each bug kproxy
// injects (a dropped record, two records swapped, two batches reordered,
// a batch written twice), runs the workload through the proxy on a new
// topic and checks that the checker reports exactly the anomalies the
// bug implies. Passed is true when every case does.
func SelfTest(ctx context.Context, o Options) (SelfReport, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if o.Duration <= 0 || o.Duration > 30*time.Second {
		o.Duration = 3 * time.Second
	}
	c, err := StartCluster(ctx, ClusterOptions{Agents: o.Agents, Floe: o.Floe, S3: o.S3, Seed: o.Seed, Log: o.AgentLog})
	if err != nil {
		return SelfReport{}, err
	}
	defer c.Close()
	rep := SelfReport{Passed: true, AnomaliesByKind: map[string]int{}}
	for _, sf := range selfFaults {
		c.Proxy.Arm(sf.fault)
		f, err := os.CreateTemp("", "floe-selftest-*.jsonl")
		if err != nil {
			return rep, err
		}
		path := f.Name()
		_, err = workload.Run(ctx, workload.Config{
			Brokers:           c.Brokers,
			Topic:             fmt.Sprintf("selftest-%s-%d", sf.fault, o.Seed),
			Partitions:        3,
			Seed:              o.Seed,
			Duration:          o.Duration,
			MaxRecordsPerSend: 5,
			DrainTimeout:      30 * time.Second,
		}, history.NewWriter(f))
		f.Close()
		if err != nil {
			return rep, fmt.Errorf("self-test %s: workload: %w", sf.fault, err)
		}
		ops, err := readHistory(path)
		if err != nil {
			return rep, err
		}
		res := checker.Check(ops)
		inj, chosen := c.Proxy.Injected()
		sc := SelfCase{Fault: sf.fault.String(), Found: map[string]int{}, Passed: true}
		for _, k := range sf.want {
			sc.Want = append(sc.Want, string(k))
		}
		for k, n := range res.AnomaliesByKind {
			sc.Found[string(k)] = n
			rep.AnomaliesByKind[string(k)] += n
		}
		rep.Anomalies += len(res.Anomalies)
		rep.Acknowledged += res.Acknowledged
		if chosen {
			sc.Injection = fmt.Sprintf("%s/%d@%d (%d records)", inj.Topic, inj.Partition, inj.Offset, inj.Records)
		}
		got := slices.Sorted(maps.Keys(res.AnomaliesByKind))
		want := slices.Sorted(slices.Values(sf.want))
		switch {
		case sf.fault != kproxy.None && !chosen:
			sc.Passed, sc.Why = false, "the proxy found no batch to act on"
		case !res.FinalRead:
			sc.Passed, sc.Why = false, "the final read did not complete"
		case !slices.Equal(got, want):
			sc.Passed, sc.Why = false, fmt.Sprintf("anomaly kinds %v, want exactly %v", got, want)
		case sf.count != nil:
			if why := sf.count(res, inj); why != "" {
				sc.Passed, sc.Why = false, why
			}
		}
		if sc.Passed {
			os.Remove(path)
		} else {
			sc.Why += " (history in " + path + ")"
			rep.Passed = false
		}
		logf("self-test %s: found %v, want %v: passed %v %s", sc.Fault, sc.Found, sc.Want, sc.Passed, sc.Why)
		rep.Cases = append(rep.Cases, sc)
	}
	c.Proxy.Arm(kproxy.None)
	return rep, nil
}
