package segment

import (
	"encoding/binary"
	"hash/crc32"
)

// Layout of the index, big-endian:
//
//	count        uint32
//	count × entry:
//	  topicID      [16]byte
//	  topicLen     uint16
//	  topic        [topicLen]byte
//	  partition    int32
//	  dataOffset   uint64  absolute position in the object
//	  dataLength   uint64
//	  batchCount   uint32
//	  offsetCount  uint64  sum of lastOffsetDelta+1 over the batches
//	  minTimestamp int64   smallest batch firstTimestamp
//	  maxTimestamp int64   largest batch maxTimestamp
const (
	indexCountSize = 4
	// minEntrySize is an entry with an empty topic name.
	minEntrySize = 16 + 2 + 4 + 8 + 8 + 4 + 8 + 8 + 8
	// MaxTopicLength is the longest topic name the index can hold; Kafka
	// itself allows 249 bytes.
	MaxTopicLength = 1<<16 - 1
)

// IndexEntry describes the bytes of one partition in a segment.
type IndexEntry struct {
	TopicID   [16]byte
	Topic     string // informational; TopicID is the identity
	Partition int32
	// DataOffset is the absolute position of the partition's first batch in
	// the object, DataLength the length of its batches together.
	DataOffset uint64
	DataLength uint64
	// BatchCount is the number of batches, OffsetCount the number of
	// offsets they take (the sum of lastOffsetDelta+1).
	BatchCount  uint32
	OffsetCount uint64
	// MinTimestamp and MaxTimestamp come from the batch headers as the
	// clients wrote them: the smallest firstTimestamp, the largest
	// maxTimestamp.
	MinTimestamp int64
	MaxTimestamp int64
}

func entrySize(topic string) int { return minEntrySize + len(topic) }

func (e *IndexEntry) append(dst []byte) []byte {
	be := binary.BigEndian
	dst = append(dst, e.TopicID[:]...)
	dst = be.AppendUint16(dst, uint16(len(e.Topic)))
	dst = append(dst, e.Topic...)
	dst = be.AppendUint32(dst, uint32(e.Partition))
	dst = be.AppendUint64(dst, e.DataOffset)
	dst = be.AppendUint64(dst, e.DataLength)
	dst = be.AppendUint32(dst, e.BatchCount)
	dst = be.AppendUint64(dst, e.OffsetCount)
	dst = be.AppendUint64(dst, uint64(e.MinTimestamp))
	return be.AppendUint64(dst, uint64(e.MaxTimestamp))
}

// ParseIndex parses the index described by h. b is the start of the object
// (the same bytes given to ReadHeader) and must hold at least h.DataOffset()
// bytes. The index checksum is verified before anything is parsed.
//
// ParseIndex checks only the index's own framing; Decode also checks the
// entries against the data.
func ParseIndex(h Header, b []byte) ([]IndexEntry, error) {
	end := h.DataOffset()
	if int64(len(b)) < end {
		return nil, corrupt("index ends at byte %d, have %d", end, len(b))
	}
	idx := b[HeaderSize:end]
	if sum := crc32.Checksum(idx, castagnoli); sum != h.IndexCRC {
		return nil, corrupt("index crc %08x, computed %08x", h.IndexCRC, sum)
	}
	if len(idx) < indexCountSize {
		return nil, corrupt("index of %d bytes", len(idx))
	}
	be := binary.BigEndian
	count := be.Uint32(idx)
	idx = idx[indexCountSize:]
	if uint64(count) > uint64(len(idx)/minEntrySize) {
		return nil, corrupt("index claims %d entries in %d bytes", count, len(idx))
	}
	entries := make([]IndexEntry, count)
	for i := range entries {
		if len(idx) < minEntrySize {
			return nil, corrupt("index entry %d truncated", i)
		}
		e := &entries[i]
		copy(e.TopicID[:], idx)
		n := int(be.Uint16(idx[16:]))
		idx = idx[18:]
		if len(idx) < n+minEntrySize-18 {
			return nil, corrupt("index entry %d truncated", i)
		}
		e.Topic = string(idx[:n])
		idx = idx[n:]
		e.Partition = int32(be.Uint32(idx))
		e.DataOffset = be.Uint64(idx[4:])
		e.DataLength = be.Uint64(idx[12:])
		e.BatchCount = be.Uint32(idx[20:])
		e.OffsetCount = be.Uint64(idx[24:])
		e.MinTimestamp = int64(be.Uint64(idx[32:]))
		e.MaxTimestamp = int64(be.Uint64(idx[40:]))
		idx = idx[48:]
	}
	if len(idx) != 0 {
		return nil, corrupt("%d bytes after the last index entry", len(idx))
	}
	return entries, nil
}
