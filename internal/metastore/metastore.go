// Package metastore defines Floe's metadata store: the strongly consistent
// place that sequences offsets and remembers which object holds which
// records. It holds topics, extents (offset range → object byte range),
// idempotent-producer state, consumer groups and their committed offsets,
// live agents, job leases and the object ledger. It never sees record
// payloads.
//
// Backends live in sub-packages (embedded, postgres) and must all pass
// the contract suite in metastoretest.
package metastore

import (
	"context"
	"errors"
	"time"
)

// TopicID identifies one incarnation of a topic: deleting and re-creating a
// topic with the same name gives a new ID. Its layout matches Kafka's topic
// UUID so it can be sent to clients as is.
type TopicID [16]byte

// Topic is a topic as the store knows it.
type Topic struct {
	ID         TopicID
	Name       string
	Partitions int32
	// Configs holds only the configs set explicitly on the topic; defaults
	// are resolved by the caller.
	Configs   map[string]string
	CreatedAt time.Time
}

// TopicSpec asks for a new topic.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// ConfigChange is one change to a topic config. A nil Value deletes the
// config (reverts it to the default).
type ConfigChange struct {
	Name  string
	Value *string
}

// SegmentCommit describes one uploaded segment object: every partition
// batch inside it, in object order. The store assigns offsets to all of them
// in one atomic step.
type SegmentCommit struct {
	Object  string // object key in the bucket
	Size    int64  // object size in bytes
	Batches []BatchCommit
}

// BatchCommit is one record batch inside a segment object.
type BatchCommit struct {
	// The control plane's protocol encodes a batch as an array of its
	// fields in this order (version 2; docs/control-plane.md): add fields
	// only at the end.
	_         struct{} `cbor:",toarray"`
	TopicID   TopicID
	Partition int32

	// Position of the batch inside the object.
	ByteOffset int64
	ByteLength int64

	// OffsetCount is the number of offsets the batch takes
	// (lastOffsetDelta + 1).
	OffsetCount  int64
	MaxTimestamp int64

	// Idempotent producer fields, copied from the batch header. ProducerID
	// < 0 means the batch is not idempotent and is not checked.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// Transactional is the batch header's transactional bit: the batch
	// belongs to its producer's ongoing transaction (TxnStore).
	Transactional bool
}

// BatchResult is the outcome of one BatchCommit, in the same order.
type BatchResult struct {
	// BaseOffset is the offset assigned to the first record of the batch,
	// or for a duplicate, the offset assigned when it was first written;
	// -1 when Err is set.
	BaseOffset int64
	// Duplicate reports that the batch repeated one already committed by
	// the same producer; it was not written again.
	Duplicate bool
	// LogStartOffset of the partition after the commit; -1 when Err is set.
	LogStartOffset int64
	// Err is nil, or one of ErrUnknownTopicOrPartition,
	// ErrOutOfOrderSequence, ErrInvalidProducerEpoch, ErrInvalidTxnState
	// (transactional batches, see TxnStore).
	Err error
}

// Extent is a contiguous offset range of one partition stored contiguously
// in one object. Consecutive batches of the same commit are merged into one
// extent; a batch rejected by the sequence checks splits it.
type Extent struct {
	TopicID   TopicID
	Partition int32

	BaseOffset int64 // first offset in the extent
	EndOffset  int64 // one past the last offset in the extent

	Object     string
	ObjectSize int64 // size of the whole object, for block-aligned reads
	ByteOffset int64
	ByteLength int64

	MaxTimestamp int64
	CommittedAt  time.Time
}

// PartitionOffsets are the bounds of a partition's log.
type PartitionOffsets struct {
	LogStartOffset int64
	HighWatermark  int64 // next offset to be assigned
	// LastStableOffset is the first offset of the oldest transaction
	// still open on the partition, or HighWatermark when none is; never
	// below LogStartOffset (NewPartitionOffsets).
	LastStableOffset int64
}

// Errors returned by stores. Callers map them to Kafka error codes.
var (
	ErrTopicExists             = errors.New("topic already exists")
	ErrUnknownTopicOrPartition = errors.New("unknown topic or partition")
	ErrInvalidPartitions       = errors.New("invalid partition count")
	ErrOutOfOrderSequence      = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch    = errors.New("invalid producer epoch")
	ErrUnknownProducerID       = errors.New("unknown producer id")
	ErrClosed                  = errors.New("metadata store closed")
)

// The store is split by role, so that each part of an agent names what
// it needs (the writer sequences commits, the reader reads extents, the
// jobs lease and trim) and a backend's contract is checked one role at a
// time. Store is all of them: what a backend implements and what an agent
// wires together. All methods of every role are safe for concurrent use.

// Store is the metadata store: every role, plus Close.
type Store interface {
	TopicStore
	Sequencer
	ExtentReader
	ProducerStore
	QuotaStore
	GroupStore
	AgentRegistry
	CommitWatcher
	TopicWatcher
	JobStore
	ACLStore
	UserStore
	TxnStore
	ShareStore
	GroupConfigStore

	Close() error
}

// TopicReader looks topics up.
type TopicReader interface {
	// Topic returns one topic by name (ErrUnknownTopicOrPartition).
	Topic(ctx context.Context, name string) (Topic, error)
	// Topics returns all topics, sorted by name.
	Topics(ctx context.Context) ([]Topic, error)
}

// TopicStore creates, changes and deletes topics.
type TopicStore interface {
	TopicReader
	// CreateTopic creates a topic with a fresh TopicID.
	// Fails with ErrTopicExists if the name is taken, ErrInvalidPartitions
	// if spec.Partitions < 1.
	CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error)
	// DeleteTopic removes a topic and its extents, producer state and
	// every group's committed offsets for it.
	// The objects are left for the cleaner. ErrUnknownTopicOrPartition if
	// there is no such topic.
	DeleteTopic(ctx context.Context, name string) (Topic, error)
	// CreatePartitions raises the partition count to total.
	// ErrInvalidPartitions unless total > current count.
	CreatePartitions(ctx context.Context, name string, total int32) (Topic, error)
	// AlterTopicConfigs applies changes to the explicit configs of a topic.
	AlterTopicConfigs(ctx context.Context, name string, changes []ConfigChange) (Topic, error)
}

// Sequencer assigns offsets: it is the one place where records of a
// partition get their order.
type Sequencer interface {
	// CommitSegment atomically assigns offsets to every batch of an
	// uploaded object, checking idempotent-producer sequences, and records
	// the extents. Either every accepted batch becomes visible or none
	// does; a returned error means nothing was committed. Per-batch
	// rejections are reported in the results, not as an error.
	CommitSegment(ctx context.Context, c SegmentCommit) ([]BatchResult, error)
}

// GroupSequencer is a Sequencer that can also commit several segments in
// one transaction. An agent whose later uploads finished while an earlier
// commit ran folds them into its next commit (produce.Writer), so that a
// store serving many agents runs fewer, larger transactions.
type GroupSequencer interface {
	Sequencer
	// CommitSegments commits cs as CommitSegment would commit them one
	// after another, in order, but in one transaction: every accepted
	// batch of every segment becomes visible or none does. results[i]
	// are the results of cs[i]'s batches. The objects must differ.
	CommitSegments(ctx context.Context, cs []SegmentCommit) (results [][]BatchResult, err error)
}

// ErrGroupsUnsupported is CommitSegments' answer, having committed
// nothing, from a store that cannot commit groups after all (a control
// plane of an older build): commit the segments one by one.
var ErrGroupsUnsupported = errors.New("the metadata store does not commit segments in groups")

// ExtentReader reads partitions' offsets and extents, for fetches and
// offset lookups. Each call is one consistent read.
type ExtentReader interface {
	// Offsets returns the log start offset, the high watermark and the
	// last stable offset.
	Offsets(ctx context.Context, id TopicID, partition int32) (PartitionOffsets, error)
	// Extents returns, in offset order, up to limit extents whose
	// EndOffset > from (so the first one contains from, or starts after
	// it). limit <= 0 means no limit.
	Extents(ctx context.Context, id TopicID, partition int32, from int64, limit int) ([]Extent, error)
	// ExtentAtTimestamp returns the first extent (in offset order) whose
	// MaxTimestamp >= ts; found is false if there is none.
	ExtentAtTimestamp(ctx context.Context, id TopicID, partition int32, ts int64) (e Extent, found bool, err error)
	// ExtentWithMaxTimestamp returns the extent holding the largest
	// timestamp of the partition (the first one on ties); found is false
	// for an empty partition.
	ExtentWithMaxTimestamp(ctx context.Context, id TopicID, partition int32) (e Extent, found bool, err error)
}

// ProducerStore hands out idempotent producers' ids and epochs; the
// sequence checks themselves are the Sequencer's.
type ProducerStore interface {
	// InitProducerID allocates a producer id (producerID < 0) or bumps the
	// epoch of an existing one (producerID >= 0 with its current epoch),
	// as InitProducerId does for non-transactional producers (KIP-360).
	// A stale epoch gives ErrInvalidProducerEpoch, an unknown id
	// ErrUnknownProducerID.
	InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error)
}
