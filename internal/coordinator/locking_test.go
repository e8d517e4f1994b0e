package coordinator_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// slowSaves holds every save of one group until released.
type slowSaves struct {
	*embedded.Store
	group   string
	entered chan struct{} // a save of group has begun
	release chan struct{}
}

func (s *slowSaves) SaveGroup(ctx context.Context, g metastore.Group) (int64, error) {
	if g.Name == s.group {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-s.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Store.SaveGroup(ctx, g)
}

// within runs f and fails the test if it has not returned after d.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %s", what, d)
		panic("unreachable")
	}
}

// A group whose save hangs in the metadata store holds up only that
// group's own requests, and those only until their context ends: other
// groups' heartbeats and ListGroups go on. The save, once it completes,
// answers the sync that waited for it.
func TestSlowSaveBlocksOnlyItsGroup(t *testing.T) {
	ctx := context.Background()
	s := &slowSaves{Store: openStore(t), group: "slow", entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := newCoordinator(t, s, nil)
	var once sync.Once
	release := func() { once.Do(func() { close(s.release) }) }
	t.Cleanup(release) // before c.Close, which waits for the save

	fast := join(t, c, "fast", "")
	if fast.Err != 0 {
		t.Fatalf("join fast: %v", kerr.ErrorForCode(fast.Err))
	}
	sync := c.Sync(ctx, "fast", groups.SyncRequest{MemberID: fast.MemberID, Generation: fast.Generation,
		Assignments: map[string][]byte{fast.MemberID: []byte("a")}})(ctx)
	if sync.Err != 0 {
		t.Fatalf("sync fast: %v", kerr.ErrorForCode(sync.Err))
	}

	slow := join(t, c, "slow", "")
	if slow.Err != 0 {
		t.Fatalf("join slow: %v", kerr.ErrorForCode(slow.Err))
	}
	// The leader's sync makes the group stable, which is saved.
	slowSync := make(chan groups.SyncResponse, 1)
	go func() {
		slowSync <- c.Sync(ctx, "slow", groups.SyncRequest{MemberID: slow.MemberID, Generation: slow.Generation,
			Assignments: map[string][]byte{slow.MemberID: []byte("b")}})(ctx)
	}()
	select {
	case <-s.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow group's save never started")
	}

	if code := within(t, 5*time.Second, "heartbeat of another group", func() int16 {
		return c.Heartbeat(ctx, "fast", fast.MemberID, "", fast.Generation)
	}); code != 0 {
		t.Fatalf("heartbeat fast: %v", kerr.ErrorForCode(code))
	}
	list := within(t, 5*time.Second, "ListGroups", func() []coordinator.Summary {
		l, err := c.List(ctx)
		if err != nil {
			t.Error(err)
		}
		return l
	})
	if !slices.ContainsFunc(list, func(s coordinator.Summary) bool { return s.Name == "fast" }) {
		t.Errorf("ListGroups while another group saves: %+v, want fast listed", list)
	}
	// A request for the busy group gives up with its context.
	code := within(t, 5*time.Second, "heartbeat of the busy group", func() int16 {
		hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		return c.Heartbeat(hctx, "slow", "someone", "", 1)
	})
	if code != kerr.RequestTimedOut.Code {
		t.Errorf("heartbeat while the group saves: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}

	release()
	select {
	case r := <-slowSync:
		if r.Err != 0 || string(r.Assignment) != "b" {
			t.Fatalf("sync slow: %v, assignment %q", kerr.ErrorForCode(r.Err), r.Assignment)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sync of the slow group never answered")
	}
}
