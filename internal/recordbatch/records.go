package recordbatch

import (
	"encoding/binary"
	"math"
)

// Record is one decoded record of a batch.
//
// Key, Value and header values alias the batch (uncompressed) or the
// decompressed buffer; copy them before modifying the batch.
type Record struct {
	Offset    int64 // BaseOffset + offsetDelta
	Timestamp int64 // MaxTimestamp for LogAppendTime batches
	Key       []byte
	Value     []byte // nil when null
	Headers   []RecordHeader
}

// RecordHeader is one record header. Value is nil when null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// minRecordSize is the smallest encoding of a record: one-byte varints for
// length, timestampDelta, offsetDelta, key length, value length and header
// count, plus the attributes byte. It bounds preallocation.
const minRecordSize = 7

// Records decodes every record of b, which must be exactly one batch (as
// returned by Split). It decompresses the records section if needed but
// does not check the CRC; call Validate first for untrusted input.
func Records(b []byte) ([]Record, error) {
	h, payload, err := open(b)
	if err != nil {
		return nil, err
	}
	recs := make([]Record, 0, min(int(h.NumRecords), len(payload)/minRecordSize+1))
	err = eachRecord(h, payload, func(r Record) bool {
		recs = append(recs, r)
		return true
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// FirstTimestampAtOrAfter returns the offset of the first record in batch b
// whose timestamp is at least ts, as ListOffsets by timestamp needs. found
// is false when every record is older than ts.
func FirstTimestampAtOrAfter(b []byte, ts int64) (offset int64, found bool, err error) {
	h, payload, err := open(b)
	if err != nil {
		return 0, false, err
	}
	// Every record is decoded, not only up to the match: the batch either
	// decodes cleanly or is reported as corrupt, never half-trusted.
	err = eachRecord(h, payload, func(r Record) bool {
		if !found && r.Timestamp >= ts {
			offset, found = r.Offset, true
		}
		return true
	})
	if err != nil {
		return 0, false, err
	}
	return offset, found, nil
}

// MaxTimestampOffset returns the offset and timestamp of the first record in
// batch b holding the batch's largest record timestamp. The record
// timestamps are used rather than the header's MaxTimestamp, which the
// client sets and Floe does not rewrite.
func MaxTimestampOffset(b []byte) (offset, ts int64, err error) {
	h, payload, err := open(b)
	if err != nil {
		return 0, 0, err
	}
	n := 0
	err = eachRecord(h, payload, func(r Record) bool {
		if n == 0 || r.Timestamp > ts {
			offset, ts = r.Offset, r.Timestamp
		}
		n++
		return true
	})
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, corrupt("batch has no records")
	}
	return offset, ts, nil
}

// open parses the header of b, which must be exactly one batch, and returns
// the uncompressed records section.
func open(b []byte) (Header, []byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, nil, err
	}
	if h.Size() != len(b) {
		return Header{}, nil, corrupt("batch length says %d bytes, have %d", h.Size(), len(b))
	}
	if h.NumRecords < 0 {
		return Header{}, nil, corrupt("record count %d", h.NumRecords)
	}
	payload, err := decompress(h.Compression(), b[HeaderSize:], MaxUncompressedSize)
	if err != nil {
		return Header{}, nil, err
	}
	return h, payload, nil
}

// eachRecord decodes h.NumRecords records from payload, calling fn for each
// until it returns false. The payload must be used up exactly.
func eachRecord(h Header, payload []byte, fn func(Record) bool) error {
	d := decoder{buf: payload}
	for i := range int(h.NumRecords) {
		r, err := d.record(h)
		if err != nil {
			return corrupt("record %d: %v", i, err)
		}
		if !fn(r) {
			return nil
		}
	}
	if len(d.buf) != 0 {
		return corrupt("%d bytes after the last record", len(d.buf))
	}
	return nil
}

// decoder walks a records section. Its errors are plain; eachRecord wraps
// them in ErrCorrupt with the record's index.
type decoder struct{ buf []byte }

type decodeError string

func (e decodeError) Error() string { return string(e) }

const (
	errShort    = decodeError("truncated")
	errVarint   = decodeError("bad varint")
	errLength   = decodeError("bad length")
	errOverflow = decodeError("varint out of int32 range")
	errTrailing = decodeError("record length does not match its fields")
	errNullKey  = decodeError("null header key")
)

// record decodes one record:
//
//	length varint | attributes int8 | timestampDelta varlong |
//	offsetDelta varint | keyLength varint | key | valueLength varint |
//	value | headerCount varint | headers
func (d *decoder) record(h Header) (Record, error) {
	n, err := d.varint32()
	if err != nil {
		return Record{}, err
	}
	if n < 0 || int(n) > len(d.buf) {
		return Record{}, errLength
	}
	body := decoder{buf: d.buf[:n]}
	d.buf = d.buf[n:]

	if len(body.buf) < 1 {
		return Record{}, errShort
	}
	body.buf = body.buf[1:] // attributes: unused in v2
	tsDelta, err := body.varint64()
	if err != nil {
		return Record{}, err
	}
	offDelta, err := body.varint32()
	if err != nil {
		return Record{}, err
	}
	r := Record{
		Offset:    h.BaseOffset + int64(offDelta),
		Timestamp: h.FirstTimestamp + tsDelta,
	}
	if h.IsLogAppendTime() {
		r.Timestamp = h.MaxTimestamp
	}
	if r.Key, err = body.bytes(); err != nil {
		return Record{}, err
	}
	if r.Value, err = body.bytes(); err != nil {
		return Record{}, err
	}
	count, err := body.varint32()
	if err != nil {
		return Record{}, err
	}
	// A header takes at least two bytes (two one-byte lengths).
	if count < 0 || int(count) > len(body.buf)/2 {
		return Record{}, errLength
	}
	if count > 0 {
		r.Headers = make([]RecordHeader, count)
		for i := range r.Headers {
			k, err := body.bytes()
			if err != nil {
				return Record{}, err
			}
			if k == nil {
				return Record{}, errNullKey
			}
			v, err := body.bytes()
			if err != nil {
				return Record{}, err
			}
			r.Headers[i] = RecordHeader{Key: string(k), Value: v}
		}
	}
	if len(body.buf) != 0 {
		return Record{}, errTrailing
	}
	return r, nil
}

// varint64 reads a zigzag varint, Kafka's varlong (at most 10 bytes).
func (d *decoder) varint64() (int64, error) {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		if n == 0 {
			return 0, errShort
		}
		return 0, errVarint
	}
	d.buf = d.buf[n:]
	return v, nil
}

// varint32 reads a zigzag varint that must fit in an int32.
func (d *decoder) varint32() (int32, error) {
	v, err := d.varint64()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, errOverflow
	}
	return int32(v), nil
}

// bytes reads a varint length and that many bytes; length -1 is null.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.varint32()
	if err != nil {
		return nil, err
	}
	switch {
	case n == -1:
		return nil, nil
	case n < -1 || int(n) > len(d.buf):
		return nil, errLength
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b, nil
}
