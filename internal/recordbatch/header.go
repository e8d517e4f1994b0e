// Package recordbatch reads, checks and builds (for key compaction and
// tests) Kafka record batches in message format v2 (magic 2), the unit
// clients send in Produce and receive in Fetch.
//
// Floe stores batches exactly as clients sent them (only key compaction
// replaces a batch, with a new one built here), so this package is
// careful about the difference between what it parses and what it trusts:
// ParseHeader reads the fixed header, Validate checks a whole batch (length,
// magic, CRC32C, record count) before an agent accepts it, and Records
// decodes the records inside for the few paths that need them (timestamp
// lookups, inspect, compaction).
//
// This package must never modify a batch other than through SetBaseOffset
// and SetPartitionLeaderEpoch, whose fields lie outside the CRC, and the
// two changes a topic's configs ask of a broker, Recompress
// (compression.type, into a new batch) and SetLogAppendTime
// (message.timestamp.type), which recompute the CRC; never trust a
// length from the input beyond the bytes actually present; and never panic
// on hostile input. Every decompression is capped at MaxUncompressedSize.
package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of the fixed v2 batch header, from baseOffset up to
// and including the record count.
const HeaderSize = 61

// Offsets of the header fields inside a batch. The first 12 bytes
// (baseOffset, batchLength) are the "log overhead"; batchLength counts every
// byte after them.
const (
	offBaseOffset           = 0
	offBatchLength          = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21 // the CRC covers from here to the end
	offLastOffsetDelta      = 23
	offFirstTimestamp       = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offNumRecords           = 57

	logOverhead = 12
	// minBatchLength is the smallest batchLength that still holds a header.
	minBatchLength = HeaderSize - logOverhead
)

// Magic is the only message format version this package understands.
const Magic = 2

// Attribute bits of a v2 batch.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// castagnoli is the CRC32C table the v2 format uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt is returned (wrapped with detail) for malformed, truncated
	// or checksum-failing batches.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrUnsupportedMagic is returned (wrapped) for batches whose magic byte
	// is not 2: message formats v0 and v1 are not supported.
	ErrUnsupportedMagic = errors.New("unsupported record batch magic")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Codec is the compression codec of a batch (attribute bits 0-2).
type Codec int8

// The codecs defined by Kafka.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

var codecNames = [...]string{None: "none", Gzip: "gzip", Snappy: "snappy", LZ4: "lz4", Zstd: "zstd"}

func (c Codec) String() string {
	if c >= 0 && int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Valid reports whether c is one of the codecs Kafka defines.
func (c Codec) Valid() bool { return c >= None && c <= Zstd }

// TimestampType says who set the record timestamps (attribute bit 3).
type TimestampType int8

// The two timestamp types.
const (
	CreateTime    TimestampType = 0
	LogAppendTime TimestampType = 1
)

func (t TimestampType) String() string {
	if t == LogAppendTime {
		return "LogAppendTime"
	}
	return "CreateTime"
}

// Header is the fixed part of a v2 record batch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Compression returns the batch's codec.
func (h Header) Compression() Codec { return Codec(h.Attributes & attrCodecMask) }

// TimestampType returns who set the timestamps of the batch's records.
func (h Header) TimestampType() TimestampType {
	if h.IsLogAppendTime() {
		return LogAppendTime
	}
	return CreateTime
}

// IsLogAppendTime reports whether the broker's append time replaces the
// records' own timestamps; every record then has MaxTimestamp.
func (h Header) IsLogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// IsTransactional reports whether the batch belongs to a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds control records (transaction
// markers) rather than data.
func (h Header) IsControl() bool { return h.Attributes&attrControl != 0 }

// Size returns the number of bytes the whole batch occupies.
func (h Header) Size() int { return logOverhead + int(h.BatchLength) }

// ParseHeader reads the fixed header at the start of b without checking the
// CRC. It fails if b is shorter than HeaderSize, if the magic is not 2, or if
// batchLength is too small to hold a header; it does not require the rest of
// the batch to be present.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corrupt("header needs %d bytes, have %d", HeaderSize, len(b))
	}
	be := binary.BigEndian
	h := Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offPartitionLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
	if h.Magic != Magic {
		return Header{}, fmt.Errorf("%w: %d", ErrUnsupportedMagic, h.Magic)
	}
	if h.BatchLength < minBatchLength {
		return Header{}, corrupt("batch length %d below minimum %d", h.BatchLength, minBatchLength)
	}
	return h, nil
}

// Validate checks that b is exactly one complete, intact v2 batch: the
// length matches, the magic is 2, the codec is known, the CRC32C over
// attributes..end matches, and the batch holds at least one record with
// NumRecords == LastOffsetDelta+1 (and, uncompressed, no more records than
// its bytes can hold). It does not decode the records and does
// not check timestamps, which clients may set as they like.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	if h.Size() != len(b) {
		return Header{}, corrupt("batch length says %d bytes, have %d", h.Size(), len(b))
	}
	if sum := crc32.Checksum(b[offAttributes:], castagnoli); sum != h.CRC {
		return Header{}, corrupt("crc %08x, computed %08x", h.CRC, sum)
	}
	if !h.Compression().Valid() {
		return Header{}, corrupt("unknown compression codec %d", int(h.Compression()))
	}
	if h.NumRecords < 1 {
		return Header{}, corrupt("record count %d", h.NumRecords)
	}
	if int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return Header{}, corrupt("record count %d does not match last offset delta %d", h.NumRecords, h.LastOffsetDelta)
	}
	if h.Compression() == None && int64(h.NumRecords)*minRecordSize > int64(len(b)-HeaderSize) {
		// Offsets are assigned by this count: a small batch must not
		// claim more records than its bytes can hold. (A compressed
		// batch's count is checked when it is decoded.)
		return Header{}, corrupt("record count %d in %d bytes of records", h.NumRecords, len(b)-HeaderSize)
	}
	return h, nil
}

// Split cuts data, the concatenated batches of one produce partition, into
// one sub-slice per batch without copying. It checks framing only (lengths
// and magic), not CRCs; call Validate on each batch for that. Empty data,
// a truncated batch, or trailing bytes are errors.
func Split(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, corrupt("no batches")
	}
	var batches [][]byte
	for rest, pos := data, 0; len(rest) > 0; {
		if len(rest) < HeaderSize {
			return nil, corrupt("truncated batch at byte %d: %d bytes left", pos, len(rest))
		}
		n := int64(int32(binary.BigEndian.Uint32(rest[offBatchLength:])))
		if n < minBatchLength {
			return nil, corrupt("batch at byte %d: length %d below minimum %d", pos, n, minBatchLength)
		}
		if n > int64(len(rest)-logOverhead) {
			return nil, corrupt("truncated batch at byte %d: length %d, %d bytes left", pos, n, len(rest)-logOverhead)
		}
		if m := int8(rest[offMagic]); m != Magic {
			return nil, fmt.Errorf("%w: %d (batch at byte %d)", ErrUnsupportedMagic, m, pos)
		}
		size := logOverhead + int(n)
		batches = append(batches, rest[:size:size])
		rest = rest[size:]
		pos += size
	}
	return batches, nil
}

// SetBaseOffset overwrites the batch's baseOffset in place. The field lies
// outside the CRC, so the batch stays valid. b must hold at least HeaderSize
// bytes.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:offBaseOffset+8], uint64(off))
}

// SetPartitionLeaderEpoch overwrites the batch's partitionLeaderEpoch in
// place. The field lies outside the CRC, so the batch stays valid. b must
// hold at least HeaderSize bytes.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:offPartitionLeaderEpoch+4], uint32(epoch))
}
