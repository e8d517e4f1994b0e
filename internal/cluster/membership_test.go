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

// An agent restarted at its address (a new process id and node id) owns
// exactly the keys it owned before: groups and transactions do not move
// at every restart of any agent.
func TestOwnerKeepsKeysAcrossRestartAtTheSameAddress(t *testing.T) {
	var before []metastore.AgentInfo
	for i := range 3 {
		before = append(before, metastore.AgentInfo{ID: fmt.Sprintf("process-%d", i), NodeID: int32(i), Host: "127.0.0.1", Port: int32(9092 + i)})
	}
	after := append([]metastore.AgentInfo(nil), before...)
	after[1].ID, after[1].NodeID = "process-1-restarted", 7
	owned := 0
	for i := range 3000 {
		key := fmt.Sprintf("group-%d", i)
		b, a := cluster.Owner(before, key), cluster.Owner(after, key)
		if b.Port != a.Port {
			t.Fatalf("%s moved from %s:%d to %s:%d when agent 1 restarted at its address", key, b.Host, b.Port, a.Host, a.Port)
		}
		if a.ID == "process-1-restarted" {
			owned++
		}
	}
	if owned < 800 {
		t.Fatalf("the restarted agent owns %d of 3000 keys, want about 1000", owned)
	}
	// At another address it is another agent: its keys move.
	after[1].Port = 9999
	moved := 0
	for i := range 3000 {
		key := fmt.Sprintf("group-%d", i)
		if cluster.Owner(before, key).Port != cluster.Owner(after, key).Port {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key moved when agent 1 came back at another address")
	}
}
