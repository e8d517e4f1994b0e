package metastore

import (
	"errors"
	"fmt"
	"time"
)

// Rules of the Sequencer shared by the backends, so that they decide
// alike; like package sequence, they do no I/O.

// ValidateCommit rejects commits no correct agent sends; they fail as a
// whole rather than per batch.
func ValidateCommit(c SegmentCommit) error {
	if c.Object == "" {
		return errors.New("empty object key")
	}
	if c.Size < 0 {
		return fmt.Errorf("negative object size %d", c.Size)
	}
	for i, b := range c.Batches {
		switch {
		case b.OffsetCount < 1:
			return fmt.Errorf("batch %d: offset count %d < 1", i, b.OffsetCount)
		case b.ByteOffset < 0 || b.ByteLength < 0 || b.ByteOffset+b.ByteLength > c.Size:
			return fmt.Errorf("batch %d: bytes [%d, +%d) outside object of %d bytes", i, b.ByteOffset, b.ByteLength, c.Size)
		}
	}
	return nil
}

// ValidateCommits is ValidateCommit for a group of segments committed in
// one transaction (GroupSequencer): each must be valid and their objects
// distinct.
func ValidateCommits(cs []SegmentCommit) error {
	if len(cs) == 0 {
		return errors.New("no segment to commit")
	}
	seen := make(map[string]bool, len(cs))
	for i, c := range cs {
		if err := ValidateCommit(c); err != nil {
			return fmt.Errorf("segment %d (%s): %w", i, c.Object, err)
		}
		if seen[c.Object] {
			return fmt.Errorf("segment %d: object %s twice in one commit", i, c.Object)
		}
		seen[c.Object] = true
	}
	return nil
}

// CommitExtents gathers the extents of one segment commit, for backends:
// consecutive accepted batches of a partition whose bytes follow each
// other in the object become one extent; a rejected batch of the
// partition (EndRun) ends the run even if the next batch's bytes follow.
// Every backend merges by this one rule, so extents look the same
// whichever store recorded them.
type CommitExtents struct {
	commit      SegmentCommit
	committedAt time.Time // zero: the backend sets it when it writes
	// Extents in the order they were opened.
	Extents []Extent
	open    map[TopicPartition]int // index in Extents of a partition's open run
}

// NewCommitExtents starts gathering the extents of c, sized for one per
// batch up to presizedExtents: grown one append at a time, they and the
// map took a commit of ten batches of ten partitions seven allocations
// and 8 KB, and a commit of 1,500 partitions twice its extents' size in
// copies (a segment's batches are mostly of different partitions: a
// client sends one batch per partition in a request).
func NewCommitExtents(c SegmentCommit, committedAt time.Time) *CommitExtents {
	n := min(len(c.Batches), presizedExtents)
	return &CommitExtents{
		commit:      c,
		committedAt: committedAt,
		Extents:     make([]Extent, 0, n),
		open:        make(map[TopicPartition]int, n),
	}
}

const presizedExtents = 1 << 14

// Add records an accepted batch assigned base as its first offset.
func (x *CommitExtents) Add(b BatchCommit, base int64) {
	tp := TopicPartition{TopicID: b.TopicID, Partition: b.Partition}
	if i, ok := x.open[tp]; ok {
		e := &x.Extents[i]
		if e.ByteOffset+e.ByteLength == b.ByteOffset {
			e.EndOffset += b.OffsetCount
			e.ByteLength += b.ByteLength
			e.MaxTimestamp = max(e.MaxTimestamp, b.MaxTimestamp)
			return
		}
	}
	x.open[tp] = len(x.Extents)
	x.Extents = append(x.Extents, Extent{
		TopicID:      b.TopicID,
		Partition:    b.Partition,
		BaseOffset:   base,
		EndOffset:    base + b.OffsetCount,
		Object:       x.commit.Object,
		ObjectSize:   x.commit.Size,
		ByteOffset:   b.ByteOffset,
		ByteLength:   b.ByteLength,
		MaxTimestamp: b.MaxTimestamp,
		CommittedAt:  x.committedAt,
	})
}

// NextSegment starts gathering the extents of c, the next segment of a
// group committed together (GroupSequencer): later batches go to c's
// object, and no run continues across objects, whatever their bytes.
func (x *CommitExtents) NextSegment(c SegmentCommit) {
	x.commit = c
	clear(x.open)
}

// EndRun ends a partition's open run: the next accepted batch starts a new
// extent.
func (x *CommitExtents) EndRun(id TopicID, partition int32) {
	delete(x.open, TopicPartition{TopicID: id, Partition: partition})
}

// RejectedBatch is the result of a batch the commit refused: Kafka answers
// -1 for its offsets.
func RejectedBatch(err error) BatchResult {
	return BatchResult{BaseOffset: -1, LogStartOffset: -1, Err: err}
}
