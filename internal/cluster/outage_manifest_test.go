package cluster_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// TestJoinOutageManifestName: the name is in the registration; a second
// agent under it is refused while the first heartbeats (after waiting a
// TTL for it to lapse), and joins once the first left; an agent whose
// killed previous run still holds the name joins when that registration
// lapses, without an operator.
func TestJoinOutageManifestName(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const ttl, interval = 600 * time.Millisecond, 100 * time.Millisecond
	opts := func(port int32) cluster.Options {
		return cluster.Options{Host: "127.0.0.1", Port: port, NodeID: -1, OutageManifest: "agent-0", TTL: ttl, HeartbeatInterval: interval}
	}
	first, err := cluster.Join(t.Context(), store, opts(9092))
	if err != nil {
		t.Fatal(err)
	}
	if first.Self().OutageManifest != "agent-0" {
		t.Fatalf("Self: %+v, want OutageManifest agent-0", first.Self())
	}
	live, err := store.LiveAgents(t.Context())
	if err != nil || len(live) != 1 || live[0].OutageManifest != "agent-0" {
		t.Fatalf("LiveAgents: %+v, %v; want one agent holding agent-0", live, err)
	}
	runCtx, stopFirst := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); first.Run(runCtx) }()

	start := time.Now()
	_, err = cluster.Join(t.Context(), store, opts(9093))
	if !errors.Is(err, metastore.ErrOutageManifestTaken) {
		t.Fatalf("second agent under agent-0 while the first heartbeats: %v, want ErrOutageManifestTaken", err)
	}
	if waited := time.Since(start); waited < ttl {
		t.Errorf("refused after %v, before a TTL (%v) could show the holder heartbeating", waited, ttl)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)

	// The first agent killed: it stops heartbeating without leaving.
	stopFirst()
	<-done
	start = time.Now()
	second, err := cluster.Join(t.Context(), store, opts(9092))
	if err != nil {
		t.Fatalf("restart under agent-0 after the holder stopped heartbeating: %v", err)
	}
	t.Logf("joined %v after the previous run stopped heartbeating", time.Since(start).Round(time.Millisecond))

	// Left gracefully: the name is free at once.
	if err := second.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), interval/2)
	defer cancel()
	if _, err := cluster.Join(ctx, store, opts(9094)); err != nil {
		t.Fatalf("join under agent-0 after its holder left: %v", err)
	}
	// Without a name nothing is checked.
	noName := opts(9095)
	noName.OutageManifest = ""
	if _, err := cluster.Join(t.Context(), store, noName); err != nil {
		t.Fatal(err)
	}
}
