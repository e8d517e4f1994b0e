package metastoretest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// testPeers covers what agents need to trust each other's cache requests:
// the peer address in their registrations, one cluster secret, and the
// ledger's object sizes.
func testPeers(t *testing.T, open func(t *testing.T) metastore.Store) {
	t.Run("PeerAddr", func(t *testing.T) {
		s := open(t)
		a := agent("a", -1)
		a.PeerAddr = "10.0.0.1:9095"
		if got := heartbeat(t, s, a, longTTL); got.PeerAddr != a.PeerAddr {
			t.Fatalf("Heartbeat: PeerAddr %q, want %q", got.PeerAddr, a.PeerAddr)
		}
		if live := liveAgents(t, s); len(live) != 1 || live[0].PeerAddr != a.PeerAddr {
			t.Fatalf("LiveAgents: %+v, want PeerAddr %q", live, a.PeerAddr)
		}
		a.PeerAddr = "" // an agent restarted without a peer listener
		heartbeat(t, s, a, longTTL)
		if live := liveAgents(t, s); len(live) != 1 || live[0].PeerAddr != "" {
			t.Fatalf("LiveAgents after a heartbeat without a peer address: %+v", live)
		}
	})

	// Consoles read each other's admin URL, version and start from the
	// registrations.
	t.Run("AdminVersionStarted", func(t *testing.T) {
		s := open(t)
		a := agent("a", -1)
		if live := heartbeat(t, s, a, longTTL); live.Admin != "" || live.Version != "" || !live.Started.IsZero() {
			t.Fatalf("Heartbeat without them: %+v", live)
		}
		a.Admin, a.Version = "https://10.0.0.1:9644", "v1.2.3 (0123456789ab)"
		a.Started = time.Date(2026, 12, 3, 12, 0, 0, 123456000, time.UTC)
		if got := heartbeat(t, s, a, longTTL); got.Admin != a.Admin || got.Version != a.Version || !got.Started.Equal(a.Started) {
			t.Fatalf("Heartbeat: admin %q version %q started %v, want %q %q %v", got.Admin, got.Version, got.Started, a.Admin, a.Version, a.Started)
		}
		live := liveAgents(t, s)
		if len(live) != 1 || live[0].Admin != a.Admin || live[0].Version != a.Version || !live[0].Started.Equal(a.Started) {
			t.Fatalf("LiveAgents: %+v, want admin %q version %q started %v", live, a.Admin, a.Version, a.Started)
		}
		a.Admin, a.Started = "", time.Time{} // restarted without an admin listener, not serving yet
		heartbeat(t, s, a, longTTL)
		if live := liveAgents(t, s); len(live) != 1 || live[0].Admin != "" || !live[0].Started.IsZero() || live[0].Version != a.Version {
			t.Fatalf("LiveAgents after a heartbeat without admin and start: %+v", live)
		}
	})

	t.Run("ClusterSecretIsOne", func(t *testing.T) {
		s := open(t)
		const callers = 8
		secrets := make([][]byte, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { secrets[i], errs[i] = s.ClusterSecret(t.Context()) })
		}
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("ClusterSecret: %v", errs[i])
			}
			if len(secrets[i]) != metastore.ClusterSecretBytes {
				t.Fatalf("ClusterSecret: %d bytes, want %d", len(secrets[i]), metastore.ClusterSecretBytes)
			}
			if !bytes.Equal(secrets[i], secrets[0]) {
				t.Fatalf("concurrent first calls disagree: %x and %x", secrets[0], secrets[i])
			}
		}
		if bytes.Equal(secrets[0], make([]byte, metastore.ClusterSecretBytes)) {
			t.Fatal("ClusterSecret is all zeros")
		}
		again, err := s.ClusterSecret(t.Context())
		if err != nil || !bytes.Equal(again, secrets[0]) {
			t.Fatalf("ClusterSecret later: %x, %v; want %x", again, err, secrets[0])
		}
		// Separate stores have separate secrets: nothing is built in.
		other, err := open(t).ClusterSecret(t.Context())
		if err != nil || bytes.Equal(other, secrets[0]) {
			t.Fatalf("another store's secret: %x, %v; want a different one", other, err)
		}
	})

	t.Run("ObjectSize", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 1)
		c := segment(batch(topic.ID, 0, 0, 300, 3))
		c.Size = 4096 // the object is larger than its batches (header, index)
		commitOK(t, s, c)
		if size, known, err := s.ObjectSize(t.Context(), c.Object); err != nil || !known || size != 4096 {
			t.Fatalf("ObjectSize(%s) = %d, %v, %v; want 4096, true", c.Object, size, known, err)
		}
		for _, key := range []string{"segments/never", "", c.Object + "x"} {
			if size, known, err := s.ObjectSize(t.Context(), key); err != nil || known || size != 0 {
				t.Fatalf("ObjectSize(%q) = %d, %v, %v; want unknown", key, size, known, err)
			}
		}
		// An unreferenced object is still in the bucket until forgotten.
		if _, err := s.DeleteTopic(t.Context(), "t"); err != nil {
			t.Fatal(err)
		}
		if size, known, err := s.ObjectSize(t.Context(), c.Object); err != nil || !known || size != 4096 {
			t.Fatalf("ObjectSize of an unreferenced object = %d, %v, %v; want 4096, true", size, known, err)
		}
		if err := s.ForgetObject(t.Context(), c.Object); err != nil {
			t.Fatal(err)
		}
		if _, known, err := s.ObjectSize(t.Context(), c.Object); err != nil || known {
			t.Fatalf("ObjectSize of a forgotten object: known %v, %v", known, err)
		}
	})
}
