package protocol

import (
	"context"

	"github.com/floe-io/floe/internal/metastore"
)

// Transactions coordinates the transactional ids this agent owns
// (docs/transactions.md). Each call answers a Kafka error code, chosen
// for the request's version (v).
type Transactions interface {
	// InitProducerID gives a transactional producer its id and epoch,
	// fencing earlier producers of the id (producerID and epoch -1 unless
	// the client recovers, KIP-360).
	InitProducerID(ctx context.Context, v int16, transactionalID string, timeoutMs int32, producerID int64, epoch int16) (int64, int16, int16)
	// AddPartitions adds partitions to the ongoing transaction, or with
	// verifyOnly checks that they are in it. It answers one code for all
	// of them, or per partition (codes, in order) when that code is 0.
	AddPartitions(ctx context.Context, v int16, transactionalID string, producerID int64, epoch int16, parts []metastore.TopicPartition, verifyOnly bool) (int16, []int16)
	// AddOffsets adds a group's offsets to the ongoing transaction.
	AddOffsets(ctx context.Context, v int16, transactionalID string, producerID int64, epoch int16, group string) int16
	// EndTxn commits or aborts the ongoing transaction and answers the
	// producer's id and epoch after it (a new epoch with transaction
	// version 2).
	EndTxn(ctx context.Context, v int16, transactionalID string, producerID int64, epoch int16, commit bool) (int64, int16, int16)
}
