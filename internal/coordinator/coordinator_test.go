package coordinator_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newCoordinator(t *testing.T, s coordinator.Store, now func() time.Time) *coordinator.Coordinator {
	t.Helper()
	opts := coordinator.Options{Groups: groups.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second}}
	if now != nil {
		opts.Now = now
	}
	c := coordinator.New(s, opts)
	t.Cleanup(c.Close)
	return c
}

func join(t *testing.T, c *coordinator.Coordinator, group, member string) groups.JoinResponse {
	t.Helper()
	ctx := context.Background()
	return c.Join(ctx, group, groups.JoinRequest{
		Version: 3, MemberID: member, ClientID: "c", SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		ProtocolType: "consumer", Protocols: []groups.Protocol{{Name: "range", Metadata: []byte("m")}},
	})(ctx)
}

// A group moves to a second coordinator on the same store: members keep
// their generation there, and the first coordinator, once the second has
// saved a newer state, can no longer accept commits or save the group.
func TestHandoverAndFencing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	topic, _ := s.Topic(ctx, "t")
	first, second := newCoordinator(t, s, nil), newCoordinator(t, s, nil)

	j := join(t, first, "g", "")
	if j.Err != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(j.Err))
	}
	sync := first.Sync(ctx, "g", groups.SyncRequest{MemberID: j.MemberID, Generation: j.Generation,
		Assignments: map[string][]byte{j.MemberID: []byte("a")}})(ctx)
	if sync.Err != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(sync.Err))
	}
	commit := func(c *coordinator.Coordinator, member string, gen int32, offset int64) int16 {
		code, _ := c.CommitOffsets(ctx, "g", member, "", gen, 8, []metastore.CommittedOffset{{TopicID: topic.ID, Offset: offset, LeaderEpoch: -1}}, nil)
		return code
	}
	if code := commit(first, j.MemberID, j.Generation, 10); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}

	// The second coordinator takes the stable group over from the store.
	if code := second.Heartbeat(ctx, "g", j.MemberID, "", j.Generation); code != 0 {
		t.Fatalf("heartbeat on the new coordinator: %v", kerr.ErrorForCode(code))
	}
	if code := commit(second, j.MemberID, j.Generation, 20); code != 0 {
		t.Fatalf("commit on the new coordinator: %v", kerr.ErrorForCode(code))
	}
	if d, _ := second.Describe(ctx, "g"); d.State != groups.Stable.String() || d.Generation != j.Generation || string(d.Members[0].Assignment) != "a" {
		t.Fatalf("taken over: %+v", d)
	}
	// A rebalance on the second coordinator saves a new generation ...
	j2 := join(t, second, "g", j.MemberID)
	if s := second.Sync(ctx, "g", groups.SyncRequest{MemberID: j2.MemberID, Generation: j2.Generation})(ctx); s.Err != 0 {
		t.Fatalf("sync on the new coordinator: %v", kerr.ErrorForCode(s.Err))
	}
	// ... so the first one, still holding the old state, is fenced.
	if code := commit(first, j.MemberID, j.Generation, 5); code != kerr.NotCoordinator.Code {
		t.Fatalf("stale coordinator's commit: %v, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
	offs, _ := s.FetchOffsets(ctx, "g")
	if len(offs) != 1 || offs[0].Offset != 20 {
		t.Fatalf("stored offsets %+v, want 20", offs)
	}
}

// offsets.retention.minutes: offsets of a group without members expire;
// a group with members keeps them.
func TestOffsetRetention(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	topic, _ := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	clk := &clock{now: time.Now()}
	c := newCoordinator(t, s, clk.Now)
	off := []metastore.CommittedOffset{{TopicID: topic.ID, Offset: 1, LeaderEpoch: -1, CommittedAt: clk.Now()}}
	if code, _ := c.CommitOffsets(ctx, "simple", "", "", -1, 8, off, nil); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	j := join(t, c, "busy", "")
	if code, _ := c.CommitOffsets(ctx, "busy", j.MemberID, "", j.Generation, 8, nil, nil); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit before sync: %v", kerr.ErrorForCode(code))
	}
	if err := s.CommitOffsets(ctx, "busy", off); err != nil {
		t.Fatal(err)
	}
	clk.advance(8 * 24 * time.Hour)
	c.ExpireOffsets(ctx)
	if offs, _ := s.FetchOffsets(ctx, "simple"); len(offs) != 0 {
		t.Errorf("empty group kept %d offsets past retention", len(offs))
	}
	if offs, _ := s.FetchOffsets(ctx, "busy"); len(offs) != 1 {
		t.Errorf("group with members lost its offsets")
	}
	if list, _ := c.List(ctx); len(list) != 1 || list[0].Name != "busy" {
		t.Errorf("groups after retention: %+v", list)
	}
}

// TestListLeavesOutGroupsThatMoved: once the membership says another
// agent coordinates a group, List stops naming it at once, before the
// background sweep drops it, so that Kafka clients (kadm merges every
// agent's ListGroups) do not see a group its coordinator has deleted.
func TestListLeavesOutGroupsThatMoved(t *testing.T) {
	s := openStore(t)
	var mu sync.Mutex
	owned := true
	c := coordinator.New(s, coordinator.Options{
		Groups: groups.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second},
		Owns: func(string) bool {
			mu.Lock()
			defer mu.Unlock()
			return owned
		},
	})
	t.Cleanup(c.Close)
	if j := join(t, c, "g", ""); j.Err != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(j.Err))
	}
	names := func() []string {
		list, err := c.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(); len(got) != 1 || got[0] != "g" {
		t.Fatalf("List while owned: %v", got)
	}
	mu.Lock()
	owned = false
	mu.Unlock()
	if got := names(); len(got) != 0 {
		t.Fatalf("List after the group moved: %v, want none", got)
	}
}
