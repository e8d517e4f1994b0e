// Package segment defines the object Floe writes to the bucket on every
// produce flush, and compaction for the objects it writes: the record
// batches of many partitions in one immutable object, with an index up
// front so that a reader learns where each partition's bytes lie from one
// small GET of the object's first bytes, and then fetches one partition
// with one ranged GET. docs/segment-format.md is the specification; this
// package is its only implementation.
//
// A segment never contains offsets: they are assigned by the metadata commit
// after the object is written. Batches are stored byte for byte as they are
// handed in: as clients sent them, or as key compaction rebuilt them. This
// package must never rewrite a batch, never do I/O (callers hand it bytes),
// and never trust a length from an object beyond the bytes it was given.
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Layout of the fixed header, big-endian:
//
//	0  magic      [7]byte "FLOESEG"
//	7  version    uint8   1
//	8  flags      uint16  0 (no flags are defined in version 1)
//	10 indexLen   uint32  bytes of index after the header
//	14 indexCRC   uint32  CRC32C (Castagnoli) of the index bytes
//	18 dataLen    uint64  bytes of data after the index
//	26 headerCRC  uint32  CRC32C of bytes 0..25
const (
	// HeaderSize is the size of the fixed header at the start of an object.
	HeaderSize = 30
	// Version is the format version this package writes and reads.
	Version = 1

	offVersion   = 7
	offFlags     = 8
	offIndexLen  = 10
	offIndexCRC  = 14
	offDataLen   = 18
	offHeaderCRC = 26
)

// magic opens every segment object.
const magic = "FLOESEG"

// castagnoli is the CRC32C table used for the header and index checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt is returned (wrapped with detail) for objects that are
	// truncated, fail a checksum or contradict themselves.
	ErrCorrupt = errors.New("corrupt segment")
	// ErrNotSegment is returned (wrapped) when the bytes do not start with
	// the segment magic.
	ErrNotSegment = errors.New("not a segment object")
	// ErrUnsupportedVersion is returned (wrapped) for a version or flags this
	// package does not know; an older agent must not guess at a newer layout.
	ErrUnsupportedVersion = errors.New("unsupported segment version")
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Header is the fixed header of a segment object.
type Header struct {
	Version     uint8
	Flags       uint16
	IndexLength uint32
	IndexCRC    uint32
	DataLength  uint64
}

// IndexOffset is where the index starts in the object.
func (h Header) IndexOffset() int64 { return HeaderSize }

// DataOffset is where the data section starts in the object; reading this
// many bytes from the start of the object gives the header and the index.
func (h Header) DataOffset() int64 { return HeaderSize + int64(h.IndexLength) }

// ObjectSize is the size of the whole object.
func (h Header) ObjectSize() int64 { return h.DataOffset() + int64(h.DataLength) }

func (h Header) append(dst []byte) []byte {
	start := len(dst)
	be := binary.BigEndian
	dst = append(dst, magic...)
	dst = append(dst, h.Version)
	dst = be.AppendUint16(dst, h.Flags)
	dst = be.AppendUint32(dst, h.IndexLength)
	dst = be.AppendUint32(dst, h.IndexCRC)
	dst = be.AppendUint64(dst, h.DataLength)
	return be.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// ReadHeader parses the fixed header from b, which holds at least the first
// HeaderSize bytes of an object. It checks the magic, version, flags and the
// header's own checksum.
func ReadHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corrupt("header needs %d bytes, have %d", HeaderSize, len(b))
	}
	if string(b[:len(magic)]) != magic {
		return Header{}, fmt.Errorf("%w: magic %q", ErrNotSegment, b[:len(magic)])
	}
	be := binary.BigEndian
	if sum, want := crc32.Checksum(b[:offHeaderCRC], castagnoli), be.Uint32(b[offHeaderCRC:]); sum != want {
		return Header{}, corrupt("header crc %08x, computed %08x", want, sum)
	}
	h := Header{
		Version:     b[offVersion],
		Flags:       be.Uint16(b[offFlags:]),
		IndexLength: be.Uint32(b[offIndexLen:]),
		IndexCRC:    be.Uint32(b[offIndexCRC:]),
		DataLength:  be.Uint64(b[offDataLen:]),
	}
	if h.Version != Version {
		return Header{}, fmt.Errorf("%w: version %d", ErrUnsupportedVersion, h.Version)
	}
	if h.Flags != 0 {
		return Header{}, fmt.Errorf("%w: flags %#04x", ErrUnsupportedVersion, h.Flags)
	}
	if h.IndexLength < indexCountSize {
		return Header{}, corrupt("index length %d", h.IndexLength)
	}
	// Keep ObjectSize free of overflow whatever the header claims.
	if h.DataLength > 1<<62 {
		return Header{}, corrupt("data length %d", h.DataLength)
	}
	return h, nil
}

// corruptWrap adds context to err and marks it ErrCorrupt, keeping err
// itself (often a recordbatch error) visible to errors.Is.
func corruptWrap(err error, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, fmt.Sprintf(format, args...), err)
}
