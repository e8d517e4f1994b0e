package embedded

import (
	"math"

	"github.com/floe-io/floe/internal/metastore"
)

// recentBatchCount is how many accepted batches per producer and partition
// are remembered for duplicate detection; Kafka producers keep at most five
// requests in flight per connection, so a retry repeats one of these.
const recentBatchCount = 5

// sequenceState is what one producer has written to one partition. It is
// pure data: check and accept decide, the caller does the I/O.
type sequenceState struct {
	Epoch   int16         `json:"epoch"`
	LastSeq int32         `json:"last_seq"`
	Recent  []recentBatch `json:"recent"` // oldest first
}

type recentBatch struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
}

// lastSequence is the sequence number of the last record of a batch.
// Sequences wrap from MaxInt32 to 0.
func lastSequence(base int32, offsetCount int64) int32 {
	return int32((int64(base) + offsetCount - 1) % (math.MaxInt32 + 1))
}

func nextSequence(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// check decides whether a batch with the given epoch and sequence range may
// follow st (nil when the producer never wrote to the partition, or its
// state was lost: then any sequence is accepted, as Kafka does). A
// duplicate of one of the recent batches reports the offset it got then.
func (st *sequenceState) check(epoch int16, firstSeq, lastSeq int32) (dupBase int64, dup bool, err error) {
	if firstSeq < 0 {
		return 0, false, metastore.ErrOutOfOrderSequence
	}
	if st == nil {
		return 0, false, nil
	}
	switch {
	case epoch < st.Epoch:
		return 0, false, metastore.ErrInvalidProducerEpoch
	case epoch > st.Epoch:
		// A new epoch resets the sequence.
		if firstSeq != 0 {
			return 0, false, metastore.ErrOutOfOrderSequence
		}
		return 0, false, nil
	}
	for _, r := range st.Recent {
		if r.FirstSeq == firstSeq && r.LastSeq == lastSeq {
			return r.BaseOffset, true, nil
		}
	}
	if firstSeq != nextSequence(st.LastSeq) {
		return 0, false, metastore.ErrOutOfOrderSequence
	}
	return 0, false, nil
}

// accept returns the state after a batch that check allowed was written at
// baseOffset. st may be nil.
func (st *sequenceState) accept(epoch int16, firstSeq, lastSeq int32, baseOffset int64) *sequenceState {
	next := &sequenceState{Epoch: epoch, LastSeq: lastSeq}
	if st != nil && st.Epoch == epoch {
		next.Recent = append(next.Recent, st.Recent...)
	}
	next.Recent = append(next.Recent, recentBatch{FirstSeq: firstSeq, LastSeq: lastSeq, BaseOffset: baseOffset})
	if n := len(next.Recent); n > recentBatchCount {
		next.Recent = next.Recent[n-recentBatchCount:]
	}
	return next
}
