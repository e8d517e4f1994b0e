package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// TestMigrateAgentAdmin opens a database of schema version 8 with an
// agent registered then: migration 9 adds the admin URL, version and
// start, and the old row reads with them empty until it heartbeats them.
func TestMigrateAgentAdmin(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	if _, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "old", NodeID: 4, Host: "10.0.0.1", Port: 9092, Roles: []string{"fetch"}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.Close()
	admin(t, db, `ALTER TABLE agents DROP COLUMN admin, DROP COLUMN version, DROP COLUMN started`)
	// Later migrations go too, so that 9 is the first one missing: 10
	// (finalized feature levels), 11 (group configs), 12 (share groups'
	// membership) and 13 (agents' outage manifest names).
	admin(t, db, `DROP INDEX agents_outage_manifest`)
	admin(t, db, `ALTER TABLE agents DROP COLUMN outage_manifest`)
	admin(t, db, `DROP TABLE finalized_features, finalized_features_epoch`)
	admin(t, db, `DROP TABLE group_configs`)
	admin(t, db, `DROP TABLE share_groups`)
	admin(t, db, `DELETE FROM schema_migrations WHERE version >= 9`)

	s = openStore(t, db, postgres.Options{})
	live, err := s.LiveAgents(ctx)
	if err != nil || len(live) != 1 {
		t.Fatalf("LiveAgents after migration: %+v, %v", live, err)
	}
	if a := live[0]; a.ID != "old" || a.NodeID != 4 || a.Host != "10.0.0.1" || a.Admin != "" || a.Version != "" || !a.Started.IsZero() {
		t.Fatalf("old row after migration: %+v", a)
	}
	started := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "old", NodeID: 4, Host: "10.0.0.1", Port: 9092, Admin: "http://10.0.0.1:9644", Version: "v2", Started: started}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if live, err := s.LiveAgents(ctx); err != nil || len(live) != 1 || live[0].Admin != "http://10.0.0.1:9644" || !live[0].Started.Equal(started) {
		t.Fatalf("after a heartbeat with them: %+v, %v", live, err)
	}
}

// TestMigrateFeatures opens a database of schema version 9, which has no
// finalized feature levels: migration 10 adds their tables, the levels
// read as never finalized, and the first update finalizes them at epoch
// 1.
func TestMigrateFeatures(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	s.Close()
	admin(t, db, `DROP TABLE finalized_features, finalized_features_epoch`)
	admin(t, db, `DROP TABLE group_configs, share_groups`) // 11, 12 and 13 go too: 10 is the first missing
	admin(t, db, `DROP INDEX agents_outage_manifest`)
	admin(t, db, `ALTER TABLE agents DROP COLUMN outage_manifest`)
	admin(t, db, `DELETE FROM schema_migrations WHERE version >= 10`)

	s = openStore(t, db, postgres.Options{})
	f, err := s.FinalizedFeatures(ctx)
	if err != nil || f.Epoch != 0 || len(f.Levels) != 0 {
		t.Fatalf("features after migration: %+v, %v", f, err)
	}
	if f, err = s.UpdateFeatures(ctx, 0, map[string]int16{"transaction.version": 2}); err != nil || f.Epoch != 1 {
		t.Fatalf("first update: %+v, %v", f, err)
	}
	s.Close()
	s = openStore(t, db, postgres.Options{})
	if f, err = s.FinalizedFeatures(ctx); err != nil || f.Epoch != 1 || f.Levels["transaction.version"] != 2 {
		t.Fatalf("features after a reopen: %+v, %v", f, err)
	}
}

// TestMigrateAgentOutageManifest opens a database of schema version 12,
// whose agents hold no outage manifest name: migration 13 adds the
// column, old rows read as holding none, and the name is then checked
// across agents.
func TestMigrateAgentOutageManifest(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	s.Close()
	admin(t, db, `DROP INDEX agents_outage_manifest`)
	admin(t, db, `ALTER TABLE agents DROP COLUMN outage_manifest`)
	admin(t, db, `DELETE FROM schema_migrations WHERE version >= 13`)
	// A row as a version-12 binary writes it.
	admin(t, db, `INSERT INTO agents (id, node_id, host, port, zone, roles, expires, peer_addr, listeners)
		VALUES ('old', 4, '10.0.0.1', 9092, '', '[]', now() + INTERVAL '1 hour', '', '{}')`)

	s = openStore(t, db, postgres.Options{})
	live, err := s.LiveAgents(ctx)
	if err != nil || len(live) != 1 || live[0].ID != "old" || live[0].OutageManifest != "" {
		t.Fatalf("LiveAgents after migration: %+v, %v", live, err)
	}
	if _, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "old", Host: "10.0.0.1", Port: 9092, OutageManifest: "a1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err = s.Heartbeat(ctx, metastore.AgentInfo{ID: "new", NodeID: -1, Host: "10.0.0.2", Port: 9092, OutageManifest: "a1"}, time.Hour)
	if !errors.Is(err, metastore.ErrOutageManifestTaken) {
		t.Fatalf("second agent under a1 after migration: %v, want ErrOutageManifestTaken", err)
	}
	if live, err := s.LiveAgents(ctx); err != nil || len(live) != 1 || live[0].OutageManifest != "a1" {
		t.Fatalf("LiveAgents: %+v, %v; want old holding a1", live, err)
	}
}
