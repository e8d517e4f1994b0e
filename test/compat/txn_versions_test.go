package compat

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Which request versions clients send for transactions, read from the
// agent's floe_api_requests_total{api,version}: under transaction
// version 2 (the agent's default) franz-go sends Produce v12 instead of
// AddPartitionsToTxn, TxnOffsetCommit v5 instead of AddOffsetsToTxn, and
// EndTxn v5; pinned to transaction version 1, the older ones.

// apiVersions reads how many requests the agent answered, by "API vN".
func apiVersions(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "floe_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var api, version string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "api":
					api = l.GetValue()
				case "version":
					version = l.GetValue()
				}
			}
			out[api+" v"+version] += m.GetCounter().GetValue()
		}
	}
	return out
}

// versionsOf lists the versions of api seen, ascending.
func versionsOf(seen map[string]float64, api string) []int {
	var out []int
	for k, n := range seen {
		var v int
		if _, err := fmt.Sscanf(k, api+" v%d", &v); err == nil && n > 0 && k == api+" v"+strconv.Itoa(v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// checkTxnVersions fails t unless the transactional requests the agent
// answered are those of transaction version tv. Under 2: EndTxn v5,
// Produce v12+ and (if groups) TxnOffsetCommit v5 without AddOffsetsToTxn;
// franz-go decides at BeginTransaction, and a client that had not yet
// talked to any agent runs its first transaction under version 1 and opts
// in at its end, so up to opensUnder1 EndTxn v4 (and AddPartitionsToTxn
// only if there were some) are allowed. Under 1: EndTxn below v5,
// Produce below v12, AddPartitionsToTxn.
func checkTxnVersions(t *testing.T, reg *prometheus.Registry, tv int, groups bool, opensUnder1 int) {
	t.Helper()
	seen := apiVersions(t, reg)
	report := func(what string) {
		keys := slices.Sorted(maps.Keys(seen))
		t.Errorf("transaction version %d: %s; requests seen: %v", tv, what, keys)
	}
	end, produce := versionsOf(seen, "EndTxn"), versionsOf(seen, "Produce")
	adds, offsets := versionsOf(seen, "AddPartitionsToTxn"), versionsOf(seen, "AddOffsetsToTxn")
	commits := versionsOf(seen, "TxnOffsetCommit")
	t.Logf("transaction version %d: EndTxn %v (v4 %v, v5 %v), Produce %v, AddPartitionsToTxn %v, AddOffsetsToTxn %v, TxnOffsetCommit %v",
		tv, end, seen["EndTxn v4"], seen["EndTxn v5"], produce, adds, offsets, commits)
	switch tv {
	case 2:
		v4 := int(seen["EndTxn v4"])
		if seen["EndTxn v5"] == 0 || v4 > opensUnder1 || slices.ContainsFunc(end, func(v int) bool { return v < 4 }) {
			report(fmt.Sprintf("EndTxn versions %v (%d at v4), want v5 (at most %d at v4)", end, v4, opensUnder1))
		}
		if len(produce) == 0 || slices.Max(produce) < 12 {
			report(fmt.Sprintf("Produce versions %v, want v12 or v13", produce))
		}
		if len(adds) != 0 && v4 == 0 {
			report(fmt.Sprintf("AddPartitionsToTxn sent (%v)", adds))
		}
		if groups && (v4 == 0 && len(offsets) != 0 || !slices.Contains(commits, 5)) {
			report(fmt.Sprintf("AddOffsetsToTxn %v and TxnOffsetCommit %v, want none and v5", offsets, commits))
		}
	default:
		if len(end) == 0 || slices.Max(end) >= 5 {
			report(fmt.Sprintf("EndTxn versions %v, want below v5", end))
		}
		if len(produce) == 0 || slices.Max(produce) >= 12 {
			report(fmt.Sprintf("Produce versions %v, want below v12", produce))
		}
		if len(adds) == 0 {
			report("no AddPartitionsToTxn")
		}
		if groups && (len(offsets) == 0 || slices.Max(commits) >= 5) {
			report(fmt.Sprintf("AddOffsetsToTxn %v and TxnOffsetCommit %v, want some and below v5", offsets, commits))
		}
	}
}
