package cluster_test

import (
	"fmt"
	"testing"

	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore"
)

func agents(n int) []metastore.AgentInfo {
	var out []metastore.AgentInfo
	for i := range n {
		out = append(out, metastore.AgentInfo{ID: fmt.Sprintf("agent-%d", i), NodeID: int32(i)})
	}
	return out
}

// Rendezvous hashing: keys spread evenly, and removing an agent moves only
// the keys it owned.
func TestOwnerSpreadsAndMovesOnlyTheDeadAgentsKeys(t *testing.T) {
	all := agents(4)
	counts := map[int32]int{}
	owners := map[string]int32{}
	for i := range 4000 {
		key := fmt.Sprintf("group-%d", i)
		o := cluster.Owner(all, key)
		counts[o.NodeID]++
		owners[key] = o.NodeID
	}
	for id, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("agent %d owns %d of 4000 keys, want about 1000", id, n)
		}
	}
	survivors := append(all[:2:2], all[3])
	moved := 0
	for key, before := range owners {
		after := cluster.Owner(survivors, key).NodeID
		if before != 2 && after != before {
			t.Fatalf("%s moved from live agent %d to %d", key, before, after)
		}
		if before == 2 {
			moved++
		}
	}
	if moved != counts[2] {
		t.Fatalf("moved %d keys, agent 2 owned %d", moved, counts[2])
	}
}
