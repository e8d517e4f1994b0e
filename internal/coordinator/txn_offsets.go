package coordinator

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ValidateTxnCommit checks the group side of a TxnOffsetCommit (KIP-447):
// v3+ carries the member id, group instance id and generation, checked as
// an OffsetCommit's are; a request without them (generation -1, no
// member: v0-v2 or a producer not using a group's metadata) is not
// checked. It stores nothing: the offsets stay pending in the
// transaction (txncoord.Coordinator.CommitOffsets) until it commits.
// version is the TxnOffsetCommit version.
func (c *Coordinator) ValidateTxnCommit(ctx context.Context, group, memberID, instanceID string, generation int32, version int16) int16 {
	return kerr.CoordinatorNotAvailable.Code
}
