package embedded_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// TestGroupsReopen checks that offsets, group records, agents and the node
// id counter are in the file, not in memory.
func TestGroupsReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CommitOffsets(ctx, "g", []metastore.CommittedOffset{
		{TopicID: topic.ID, Partition: 1, Offset: 12, LeaderEpoch: 3, Metadata: "m"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveGroup(ctx, metastore.Group{Name: "g", ProtocolType: "consumer", State: "Stable", Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "a", NodeID: -1, Host: "h", Port: 1}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if first.NodeID != 1 {
		t.Errorf("first assigned NodeID %d, want 1", first.NodeID)
	}

	type snapshot struct {
		offsets []metastore.CommittedOffset
		group   metastore.Group
		groups  []metastore.GroupSummary
		agents  []metastore.AgentInfo
	}
	snap := func(s *embedded.Store) snapshot {
		t.Helper()
		var sn snapshot
		var err error
		if sn.offsets, err = s.FetchOffsets(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		if sn.group, _, err = s.LoadGroup(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		if sn.groups, err = s.ListGroups(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.agents, err = s.LiveAgents(ctx); err != nil {
			t.Fatal(err)
		}
		return sn
	}
	before := snap(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	if after := snap(s); !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed across reopen:\nbefore %+v\nafter  %+v", before, after)
	}
	if v, err := s.SaveGroup(ctx, metastore.Group{Name: "g", State: "Empty", Version: before.group.Version}); err != nil || v != before.group.Version+1 {
		t.Errorf("SaveGroup after reopen: version %d, %v; want %d", v, err, before.group.Version+1)
	}
	// The counter, not the live agents, decides the next id: a
	// deregistered agent's id is not handed out again.
	if err := s.Deregister(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	next, err := s.Heartbeat(ctx, metastore.AgentInfo{ID: "b", NodeID: -1}, time.Hour)
	if err != nil || next.NodeID != 2 {
		t.Errorf("NodeID after reopen: %d, %v; want 2", next.NodeID, err)
	}
}
