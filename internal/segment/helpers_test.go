package segment_test

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/floe-io/floe/internal/segment"
)

func crcC(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// handBuild writes an object from the layout in docs/segment-format.md,
// independently of Builder, so tests can state any index, true or not.
func handBuild(entries []segment.IndexEntry, data []byte) []byte {
	be := binary.BigEndian
	index := be.AppendUint32(nil, uint32(len(entries)))
	for _, e := range entries {
		index = append(index, e.TopicID[:]...)
		index = be.AppendUint16(index, uint16(len(e.Topic)))
		index = append(index, e.Topic...)
		index = be.AppendUint32(index, uint32(e.Partition))
		index = be.AppendUint64(index, e.DataOffset)
		index = be.AppendUint64(index, e.DataLength)
		index = be.AppendUint32(index, e.BatchCount)
		index = be.AppendUint64(index, e.OffsetCount)
		index = be.AppendUint64(index, uint64(e.MinTimestamp))
		index = be.AppendUint64(index, uint64(e.MaxTimestamp))
	}
	obj := append([]byte("FLOESEG"), 1)
	obj = be.AppendUint16(obj, 0)
	obj = be.AppendUint32(obj, uint32(len(index)))
	obj = be.AppendUint32(obj, crcC(index))
	obj = be.AppendUint64(obj, uint64(len(data)))
	obj = be.AppendUint32(obj, crcC(obj))
	obj = append(obj, index...)
	return append(obj, data...)
}
