package agent_test

import (
	"net"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/console"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestAgentsAnnounceTheirAdmin: an agent's registration carries its
// admin URL (the advertised Kafka host when the admin listener listens
// on all addresses; --admin-advertise when given), its version and when
// it began serving.
func TestAgentsAnnounceTheirAdmin(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.AdminListen = "0.0.0.0:0" }})
	b := agenttest.StartPeer(t, a, agenttest.Options{Config: func(cfg *agent.Config) { cfg.AdminAdvertise = "https://agent-b.internal:9644/" }})
	live, err := a.Store.LiveAgents(t.Context())
	if err != nil || len(live) != 2 {
		t.Fatalf("live agents: %+v %v", live, err)
	}
	_, adminPort, _ := net.SplitHostPort(a.AdminAddr())
	want := map[int32]string{a.NodeID(): "http://127.0.0.1:" + adminPort, b.NodeID(): "https://agent-b.internal:9644"}
	for _, l := range live {
		if l.Admin != want[l.NodeID] {
			t.Errorf("node %d registered admin %q, want %q", l.NodeID, l.Admin, want[l.NodeID])
		}
		if l.Version != console.BuildVersion() || l.Started.IsZero() || time.Since(l.Started) > time.Minute {
			t.Errorf("node %d registered version %q, started %v", l.NodeID, l.Version, l.Started)
		}
	}
}
