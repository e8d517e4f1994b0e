package cluster_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// TestAnnounce: the version given at Join, and the admin URL and start
// time given later, reach the registration other agents read, and stay
// in it across heartbeats.
func TestAnnounce(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := cluster.Join(t.Context(), store, cluster.Options{Host: "127.0.0.1", Port: 9092, NodeID: -1, Version: "v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	live, err := store.LiveAgents(t.Context())
	if err != nil || len(live) != 1 || live[0].Version != "v9.9.9" || live[0].Admin != "" || !live[0].Started.IsZero() {
		t.Fatalf("after Join: %+v, %v", live, err)
	}
	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	if err := m.Announce(t.Context(), "http://127.0.0.1:9644", started); err != nil {
		t.Fatal(err)
	}
	for range 2 { // Announce's own heartbeat, then one more from a peer's point of view
		live, err = store.LiveAgents(t.Context())
		if err != nil || len(live) != 1 || live[0].Admin != "http://127.0.0.1:9644" || !live[0].Started.Equal(started) || live[0].Version != "v9.9.9" {
			t.Fatalf("after Announce: %+v, %v", live, err)
		}
		if self := m.Self(); self.Admin != "http://127.0.0.1:9644" {
			t.Fatalf("Self after Announce: %+v", self)
		}
		if err := m.Announce(t.Context(), "http://127.0.0.1:9644", started); err != nil {
			t.Fatal(err)
		}
	}
}
