// Package sequence holds the idempotent-producer rules every metadata store
// backend applies when it commits a batch: which sequence numbers may
// follow which, what counts as a duplicate, and how a new producer epoch
// resets the sequence. It is pure data and decisions; the backends load and
// store the State and must never decide differently from it.
package sequence

import (
	"math"

	"github.com/floe-io/floe/internal/metastore"
)

// RecentBatches is how many accepted batches per producer and partition
// are remembered for duplicate detection; Kafka producers keep at most five
// requests in flight per connection, so a retry repeats one of these.
const RecentBatches = 5

// State is what one producer has written to one partition. The JSON field
// names are part of the embedded store's file format.
type State struct {
	Epoch   int16   `json:"epoch"`
	LastSeq int32   `json:"last_seq"`
	Recent  []Batch `json:"recent"` // oldest first, at most RecentBatches
}

// Batch is one accepted batch remembered for duplicate detection.
type Batch struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
}

// Last is the sequence number of the last record of a batch of
// offsetCount records starting at base. Sequences wrap from MaxInt32 to 0.
func Last(base int32, offsetCount int64) int32 {
	return int32((int64(base) + offsetCount - 1) % (math.MaxInt32 + 1))
}

// Next is the sequence number that follows seq.
func Next(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// Check decides whether a batch with the given epoch and sequence range may
// follow st (nil when the producer never wrote to the partition, or its
// state was lost: then any sequence is accepted, as Kafka does). A
// duplicate of one of the recent batches reports the offset it got then.
// err is metastore.ErrOutOfOrderSequence or ErrInvalidProducerEpoch.
func (st *State) Check(epoch int16, firstSeq, lastSeq int32) (dupBase int64, dup bool, err error) {
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
	if firstSeq != Next(st.LastSeq) {
		return 0, false, metastore.ErrOutOfOrderSequence
	}
	return 0, false, nil
}

// Accept returns the state after a batch that Check allowed was written at
// baseOffset. st may be nil; it is not modified.
func (st *State) Accept(epoch int16, firstSeq, lastSeq int32, baseOffset int64) *State {
	// The state and its batches in one allocation.
	x := new(struct {
		s   State
		buf [RecentBatches]Batch
	})
	next := &x.s
	next.Epoch, next.LastSeq, next.Recent = epoch, lastSeq, x.buf[:0]
	if st != nil && st.Epoch == epoch {
		kept := st.Recent
		if n := len(kept); n > RecentBatches-1 {
			kept = kept[n-(RecentBatches-1):]
		}
		next.Recent = append(next.Recent, kept...)
	}
	next.Recent = append(next.Recent, Batch{FirstSeq: firstSeq, LastSeq: lastSeq, BaseOffset: baseOffset})
	return next
}
