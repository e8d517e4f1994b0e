package agent_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/produce"
)

// TestOutageManifestNameHeldByLiveAgent: an agent started with the
// outage manifest name of a live agent fails to start, before loading
// that name's manifests, and leaves nothing registered or listening; the
// name is in the live agent's registration; once that agent stops, the
// name can be used.
func TestOutageManifestNameHeldByLiveAgent(t *testing.T) {
	store, bucket := storeAndBucket(t)
	cfg := func(listen string) agent.Config {
		return agent.Config{Listen: listen, Outage: &produce.OutageOptions{ManifestName: "agent-0"}}
	}
	first, err := agent.Start(cfg(freeAddr(t)), store, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	live, err := store.LiveAgents(t.Context())
	if err != nil || len(live) != 1 || live[0].OutageManifest != "agent-0" {
		t.Fatalf("LiveAgents: %+v, %v; want one agent holding agent-0", live, err)
	}

	second := freeAddr(t)
	start := time.Now()
	_, err = agent.Start(cfg(second), store, bucket)
	if !errors.Is(err, metastore.ErrOutageManifestTaken) {
		t.Fatalf("second agent under agent-0: %v, want ErrOutageManifestTaken", err)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if live, err := store.LiveAgents(t.Context()); err != nil || len(live) != 1 {
		t.Fatalf("after the refused start: live agents %+v, %v; want only the first", live, err)
	}
	ln, err := net.Listen("tcp", second)
	if err != nil {
		t.Fatalf("Kafka address still taken after the refused start: %v", err)
	}
	ln.Close()

	// Another name, or none, starts beside it.
	other := cfg(freeAddr(t))
	other.Outage.ManifestName = "agent-1"
	a1, err := agent.Start(other, store, bucket)
	if err != nil {
		t.Fatal(err)
	}
	a1.Close()

	// Closed, the first agent deregisters and frees the name at once.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	next, err := agent.Start(cfg(second), store, bucket)
	if err != nil {
		t.Fatalf("start under agent-0 after its holder stopped: %v", err)
	}
	defer next.Close()
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("start after a graceful stop took %v: it waited for a registration that was gone", waited)
	}
}
