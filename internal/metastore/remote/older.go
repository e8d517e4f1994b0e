package remote

import (
	"fmt"

	"github.com/floe-io/floe/internal/metastore"
)

// olderArgs decode the arguments of journal rows and bucket log objects
// written in an older protocol version, for the ops whose encoding
// changed since; an op not here encodes its arguments as it always did.
var olderArgs = map[string]func(raw RawMessage, v int) (any, error){
	"CommitSegment": decodeSegmentCommitV1,
}

// batchCommitV1 is metastore.BatchCommit as version 1 encoded it: a map
// keyed by field name (the same fields, without the array tag).
type batchCommitV1 struct {
	TopicID       metastore.TopicID
	Partition     int32
	ByteOffset    int64
	ByteLength    int64
	OffsetCount   int64
	MaxTimestamp  int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
}

type segmentCommitV1 struct {
	Object  string
	Size    int64
	Batches []batchCommitV1
}

func decodeSegmentCommitV1(raw RawMessage, v int) (any, error) {
	if v != 1 {
		return nil, fmt.Errorf("CommitSegment: arguments of protocol version %d", v)
	}
	var old segmentCommitV1
	if len(raw) > 0 {
		if err := Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("CommitSegment: bad arguments (version 1): %w", err)
		}
	}
	c := metastore.SegmentCommit{Object: old.Object, Size: old.Size}
	if old.Batches != nil {
		c.Batches = make([]metastore.BatchCommit, len(old.Batches))
		for i, b := range old.Batches {
			c.Batches[i] = metastore.BatchCommit{
				TopicID: b.TopicID, Partition: b.Partition, ByteOffset: b.ByteOffset, ByteLength: b.ByteLength,
				OffsetCount: b.OffsetCount, MaxTimestamp: b.MaxTimestamp, ProducerID: b.ProducerID,
				ProducerEpoch: b.ProducerEpoch, BaseSequence: b.BaseSequence, Transactional: b.Transactional,
			}
		}
	}
	return c, nil
}
