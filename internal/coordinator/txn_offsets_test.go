package coordinator_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
)

// TestValidateTxnCommit: TxnOffsetCommit's group check (KIP-447).
func TestValidateTxnCommit(t *testing.T) {
	ctx := context.Background()
	c := newCoordinator(t, openStore(t), nil)
	check := func(what string, got, want int16) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}
	check("no group metadata", c.ValidateTxnCommit(ctx, "g", "", "", -1, 3), 0)
	check("a generation in an unknown group, v5", c.ValidateTxnCommit(ctx, "g", "m", "", 1, 5), kerr.IllegalGeneration.Code)
	check("a generation in an unknown group, v6", c.ValidateTxnCommit(ctx, "g", "m", "", 1, 6), kerr.GroupIDNotFound.Code)

	j := join(t, c, "g", "")
	// The group completes its rebalance: a transactional commit of the
	// member's generation is accepted (a plain one would wait).
	check("member during the rebalance", c.ValidateTxnCommit(ctx, "g", j.MemberID, "", j.Generation, 3), 0)
	check("no group metadata, with members", c.ValidateTxnCommit(ctx, "g", "", "", -1, 3), 0)
	if s := c.Sync(ctx, "g", groups.SyncRequest{MemberID: j.MemberID, Generation: j.Generation})(ctx); s.Err != 0 {
		t.Fatal(kerr.ErrorForCode(s.Err))
	}
	check("member", c.ValidateTxnCommit(ctx, "g", j.MemberID, "", j.Generation, 3), 0)
	check("old generation", c.ValidateTxnCommit(ctx, "g", j.MemberID, "", j.Generation-1, 3), kerr.IllegalGeneration.Code)
	check("unknown member", c.ValidateTxnCommit(ctx, "g", "nobody", "", j.Generation, 3), kerr.UnknownMemberID.Code)
}
