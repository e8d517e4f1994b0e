package cluster

// A PostgreSQL server of the test's own, which it may stop and start
// without disturbing other tests that share the one of scripts/services:
// the nemesis's, which floe torture also uses.

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/nemesis"
)

// pgServer is nemesis's throwaway PostgreSQL (fsync off, synchronous
// commit on), on a free loopback port, removed when the test ends.
type pgServer struct{ *nemesis.Postgres }

// startPostgres starts one with the binaries of Debian's postgresql
// package (the ones scripts/services uses), or skips without them.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	if nemesis.PostgresBin() == "" {
		if os.Getenv("FLOE_REQUIRE_SERVICES") == "1" {
			t.Fatal("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql) and FLOE_REQUIRE_SERVICES=1")
		}
		t.Skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql)")
	}
	pg, err := nemesis.NewPostgres(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Remove)
	return &pgServer{pg}
}

func (s *pgServer) url() string { return s.URL() }

// start starts the server and waits until it accepts connections.
func (s *pgServer) start(t *testing.T) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stop shuts the server down the way an operator restarting it would:
// fast mode aborts open transactions and closes every connection.
func (s *pgServer) stop(t *testing.T) {
	t.Helper()
	if err := s.Stop(context.Background(), "fast"); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond every 50ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
