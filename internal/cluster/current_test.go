package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// TestCurrentDropsEarlierIncarnations: of registrations sharing an
// address or a node id, only the one renewed last stays, whoever looks
// (the restarted agent or another); self always stays; others are kept.
func TestCurrentDropsEarlierIncarnations(t *testing.T) {
	now := time.Now()
	agent := func(id string, node int32, port int32, renewed time.Duration) metastore.AgentInfo {
		return metastore.AgentInfo{ID: id, NodeID: node, Host: "127.0.0.1", Port: port, Expires: now.Add(renewed)}
	}
	// Node 14 was killed 3 s ago; node 15 restarted at its address.
	dead := agent("dead", 14, 9001, 2*time.Second)
	reborn := agent("reborn", 15, 9001, 5*time.Second)
	other := agent("other", 11, 9002, 4*time.Second)
	// A registration claiming node 11 from elsewhere, older than other's.
	stale := agent("stale", 11, 9003, time.Second)
	live := []metastore.AgentInfo{other, dead, reborn, stale}
	ids := func(as []metastore.AgentInfo) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tc := range []struct {
		self metastore.AgentInfo
		want []string
	}{
		{other, []string{"other", "reborn"}},
		{reborn, []string{"other", "reborn"}},
		// Self stays even if another registration looks newer.
		{stale, []string{"reborn", "stale"}},
	} {
		if got := ids(current(live, tc.self)); !slices.Equal(got, tc.want) {
			t.Errorf("as %s: live %v, want %v", tc.self.ID, got, tc.want)
		}
	}
	if got := ids(live); !slices.Equal(got, []string{"other", "dead", "reborn", "stale"}) {
		t.Errorf("current changed its argument: %v", got)
	}
}
