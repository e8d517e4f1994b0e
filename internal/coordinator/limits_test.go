package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/groups"
)

// MaxGroups bounds the groups in memory: a request naming one more group
// is answered COORDINATOR_NOT_AVAILABLE, which clients retry, and groups
// already in memory are served as before.
func TestMaxGroups(t *testing.T) {
	s := openStore(t)
	c := coordinator.New(s, coordinator.Options{
		Groups:    groups.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second},
		MaxGroups: 2,
	})
	t.Cleanup(c.Close)
	for _, g := range []string{"a", "b"} {
		if r := join(t, c, g, ""); r.Err != kerr.MemberIDRequired.Code && r.Err != 0 {
			t.Fatalf("group %s: %v", g, kerr.ErrorForCode(r.Err))
		}
	}
	if r := join(t, c, "c", ""); r.Err != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("a third group: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(r.Err))
	}
	if code := c.Heartbeat(context.Background(), "a", "unknown", "", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("a group in memory: %v", kerr.ErrorForCode(code))
	}
}
