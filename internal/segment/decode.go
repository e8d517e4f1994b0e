package segment

import (
	"cmp"
	"slices"

	"github.com/floe-io/floe/internal/recordbatch"
)

// Segment is a fully decoded and checked segment object, as `floe inspect`
// shows it.
type Segment struct {
	Header     Header
	Partitions []Partition // in index order
}

// Partition is one index entry with its batches.
type Partition struct {
	IndexEntry
	Batches []Batch
}

// Batch is one record batch inside a segment.
type Batch struct {
	ByteOffset int64 // absolute position in the object
	Header     recordbatch.Header
	Data       []byte // aliases the object
}

// Decode parses and checks a whole object: header, index checksum, that the
// object is exactly as long as the header says, that every entry's range
// lies in the data section without overlapping another, that no partition
// appears twice, and that each entry's bytes split into valid batches
// (CRC included) whose batch count, offset count and timestamps match the
// entry. Batch data aliases object.
func Decode(object []byte) (*Segment, error) {
	h, err := ReadHeader(object)
	if err != nil {
		return nil, err
	}
	if size := h.ObjectSize(); int64(len(object)) != size {
		return nil, corrupt("header says %d bytes, object has %d", size, len(object))
	}
	entries, err := ParseIndex(h, object)
	if err != nil {
		return nil, err
	}
	if err := checkRanges(h, entries); err != nil {
		return nil, err
	}
	seg := &Segment{Header: h, Partitions: make([]Partition, len(entries))}
	seen := make(map[partitionKey]bool, len(entries))
	for i, e := range entries {
		key := partitionKey{e.TopicID, e.Partition}
		if seen[key] {
			return nil, corrupt("entry %d: partition %s/%d listed twice", i, e.Topic, e.Partition)
		}
		seen[key] = true
		batches, err := decodeEntry(e, object)
		if err != nil {
			return nil, corruptWrap(err, "entry %d (%s/%d)", i, e.Topic, e.Partition)
		}
		seg.Partitions[i] = Partition{IndexEntry: e, Batches: batches}
	}
	return seg, nil
}

// checkRanges checks that entries lie inside the data section and do not
// overlap. Gaps are allowed by the format, though Builder leaves none.
func checkRanges(h Header, entries []IndexEntry) error {
	dataStart, dataEnd := uint64(h.DataOffset()), uint64(h.ObjectSize())
	order := make([]int, len(entries))
	for i, e := range entries {
		// Written this way so that a huge DataLength cannot overflow.
		if e.DataOffset < dataStart || e.DataOffset > dataEnd || e.DataLength > dataEnd-e.DataOffset {
			return corrupt("entry %d: bytes [%d, +%d) outside data section [%d, %d)", i, e.DataOffset, e.DataLength, dataStart, dataEnd)
		}
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(entries[a].DataOffset, entries[b].DataOffset) })
	for k := 1; k < len(order); k++ {
		prev, cur := entries[order[k-1]], entries[order[k]]
		if prev.DataOffset+prev.DataLength > cur.DataOffset {
			return corrupt("entries %d and %d overlap", order[k-1], order[k])
		}
	}
	return nil
}

// decodeEntry splits and validates one entry's batches and checks the
// entry's counts and timestamps against them.
func decodeEntry(e IndexEntry, object []byte) ([]Batch, error) {
	data := object[e.DataOffset : e.DataOffset+e.DataLength]
	raw, err := recordbatch.Split(data)
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)) != uint64(e.BatchCount) {
		return nil, corrupt("%d batches, index says %d", len(raw), e.BatchCount)
	}
	batches := make([]Batch, len(raw))
	var offsets uint64
	minTS, maxTS := int64(0), int64(0)
	pos := int64(e.DataOffset)
	for i, b := range raw {
		bh, err := recordbatch.Validate(b)
		if err != nil {
			return nil, corruptWrap(err, "batch %d at byte %d", i, pos)
		}
		batches[i] = Batch{ByteOffset: pos, Header: bh, Data: b}
		pos += int64(len(b))
		offsets += uint64(int64(bh.LastOffsetDelta) + 1)
		if i == 0 {
			minTS, maxTS = bh.FirstTimestamp, bh.MaxTimestamp
		}
		minTS, maxTS = min(minTS, bh.FirstTimestamp), max(maxTS, bh.MaxTimestamp)
	}
	if offsets != e.OffsetCount {
		return nil, corrupt("batches hold %d offsets, index says %d", offsets, e.OffsetCount)
	}
	if minTS != e.MinTimestamp || maxTS != e.MaxTimestamp {
		return nil, corrupt("batch timestamps span [%d, %d], index says [%d, %d]", minTS, maxTS, e.MinTimestamp, e.MaxTimestamp)
	}
	return batches, nil
}
