package embedded

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// TestAgentPruning plants expired registrations: one expired moments ago
// keeps its node id when the agent comes back, one expired long ago is
// forgotten when a new agent registers.
func TestAgentPruning(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	now := time.Now()
	planted := map[string]agentRecord{
		"recent": {NodeID: 5, Expires: now.Add(-time.Minute)},
		"old":    {NodeID: 6, Expires: now.Add(-metastore.AgentPruneAfter - time.Minute)},
	}
	err = s.db.Update(func(tx kv.Tx) error {
		for id, rec := range planted {
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte(bucketAgents)).Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if live, err := s.LiveAgents(ctx); err != nil || len(live) != 0 {
		t.Fatalf("LiveAgents with only expired agents: %+v, %v", live, err)
	}

	if _, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "new", NodeID: -1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketAgents))
		if b.Get([]byte("old")) != nil {
			t.Error("agent expired long ago was not pruned")
		}
		if b.Get([]byte("recent")) == nil {
			t.Error("agent expired a minute ago was pruned")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "recent", NodeID: -1}, time.Minute)
	if err != nil || back.NodeID != 5 {
		t.Errorf("returning agent: NodeID %d, %v; want its old id 5", back.NodeID, err)
	}
}

// TestGroupKey checks the encoding that keeps one group's keys apart from
// another's whose name it prefixes.
func TestGroupKey(t *testing.T) {
	for _, name := range []string{"", "a", "ab", string(make([]byte, 1<<16-1))} {
		k, err := groupKey(name)
		if err != nil {
			t.Fatalf("groupKey(%d bytes): %v", len(name), err)
		}
		got, rest, err := decodeGroupKey(append(k, 1, 2, 3))
		if err != nil || got != name || len(rest) != 3 {
			t.Errorf("decodeGroupKey(groupKey(%d bytes)): %d bytes, rest %v, %v", len(name), len(got), rest, err)
		}
	}
	if _, err := groupKey(string(make([]byte, 1<<16))); err == nil {
		t.Error("groupKey accepted a name of 65536 bytes")
	}
	for _, k := range [][]byte{nil, {0}, {0, 2, 'a'}} {
		if _, _, err := decodeGroupKey(k); err == nil {
			t.Errorf("decodeGroupKey(%v) accepted a short key", k)
		}
	}
}

// TestAgentRecordBeforeAdmin decodes a registration written before
// agents recorded their admin URL, version and start: it is live, with
// those fields empty.
func TestAgentRecordBeforeAdmin(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	old := `{"node_id":3,"host":"10.0.0.1","port":9092,"zone":"a","roles":["fetch"],"peer":"10.0.0.1:9095","expires":"` + expires + `"}`
	err = s.db.Update(func(tx kv.Tx) error { return tx.Bucket([]byte(bucketAgents)).Put([]byte("old-agent"), []byte(old)) })
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.LiveAgents(t.Context())
	if err != nil || len(live) != 1 {
		t.Fatalf("LiveAgents: %+v, %v", live, err)
	}
	if a := live[0]; a.NodeID != 3 || a.Host != "10.0.0.1" || a.PeerAddr != "10.0.0.1:9095" || a.Admin != "" || a.Version != "" || !a.Started.IsZero() {
		t.Fatalf("old record decoded as %+v", a)
	}
}
