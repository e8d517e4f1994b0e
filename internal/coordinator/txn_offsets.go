package coordinator

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ValidateTxnCommit checks the group side of a TxnOffsetCommit (KIP-447):
// v3+ carries the member id, group instance id and generation, checked as
// an OffsetCommit's are, except that a group completing a rebalance
// accepts the commit (as Kafka's does for transactional commits). A
// request without them (generation -1, no member: v0-v2, or a producer
// not using a group's metadata) is not checked. It stores nothing: the
// offsets stay pending in the transaction
// (txncoord.Coordinator.CommitOffsets) until it commits. version is the
// TxnOffsetCommit version: a generation into a group that does not exist
// is GROUP_ID_NOT_FOUND from v6, ILLEGAL_GENERATION before, and so is a
// stale consumer-protocol member epoch.
func (c *Coordinator) ValidateTxnCommit(ctx context.Context, group, memberID, instanceID string, generation int32, version int16) int16 {
	if generation < 0 && memberID == "" && instanceID == "" {
		return 0
	}
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer c.unlock(e)
	if !e.stored && e.empty() && generation >= 0 {
		if version >= 6 {
			return kerr.GroupIDNotFound.Code
		}
		return kerr.IllegalGeneration.Code
	}
	if e.cg != nil {
		// Version 9 of OffsetCommit: the version check is the
		// non-transactional commit's alone.
		code, _ := e.cg.ValidateCommit(memberID, generation, 9, nil)
		if code == kerr.StaleMemberEpoch.Code && version < 6 {
			code = kerr.IllegalGeneration.Code
		}
		return code
	}
	code := e.g.ValidateCommit(c.opts.Now(), memberID, instanceID, generation)
	c.arm(e)
	if code == kerr.RebalanceInProgress.Code {
		// Member and generation matched; only a plain commit waits for
		// the assignment.
		code = 0
	}
	return code
}
