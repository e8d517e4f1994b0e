package coordinator

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
)

// FetchStableOffsets is FetchOffsets for a fetch that requires stable
// offsets (OffsetFetch v7+ with RequireStable, KIP-447): it also returns
// the partitions of which a transaction holds an offset of the group
// pending, which are answered UNSTABLE_OFFSET_COMMIT, so that a member
// does not start from an offset the transaction is about to replace and
// process again what the transaction has processed. The pending
// partitions are read first: a transaction that ends in between leaves
// its partitions unstable in this answer (the client asks again), never
// an offset stale.
func (c *Coordinator) FetchStableOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, []metastore.TopicPartition, int16) {
	if !c.opts.Owns(group) {
		return nil, nil, kerr.NotCoordinator.Code
	}
	pending, err := c.store.PendingTxnOffsets(ctx, group)
	if err != nil {
		return nil, nil, errCode(err)
	}
	offs, code := c.FetchOffsets(ctx, group)
	if code != 0 {
		return nil, nil, code
	}
	return offs, pending, 0
}

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
