package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// BuildOptions sets the batch-level fields Build writes.
type BuildOptions struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Codec                Codec
	// SnappyXerial writes snappy data in the Java client's framed (xerial)
	// format instead of one raw block, as librdkafka and franz-go do.
	SnappyXerial bool
	// ProducerID 0 means "no producer" and is written as -1, with
	// ProducerEpoch and BaseSequence also -1, as non-idempotent clients send;
	// a batch for producer ID 0 itself cannot be built.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// FirstTimestamp is the batch's firstTimestamp; record timestamps are
	// stored as deltas from it. Zero means the first record's timestamp.
	FirstTimestamp int64
	Transactional  bool
	Control        bool
	LogAppendTime  bool
	// KeepOffsets rebuilds a batch that key compaction thinned out: each
	// record keeps its offset (delta Record.Offset - BaseOffset) and the
	// batch keeps LastOffsetDelta and MaxTimestamp as given, so the batch
	// still covers the offsets it covered, with gaps, as Kafka's cleaner
	// leaves them. It may hold no record at all.
	KeepOffsets     bool
	LastOffsetDelta int32
	MaxTimestamp    int64
}

// Build encodes records into a valid v2 batch, for key compaction, tests
// and tools. Record i gets offset delta i (Record.Offset is ignored) and
// the batch's maxTimestamp is the largest record timestamp, unless
// opts.KeepOffsets says otherwise. Build panics if compression fails,
// which only a bug can cause.
func Build(opts BuildOptions, records ...Record) []byte {
	return build(opts, opts.ProducerID == 0, records...)
}

// build is Build; noProducer writes -1 for the producer id, epoch and
// base sequence whatever opts says.
func build(opts BuildOptions, noProducer bool, records ...Record) []byte {
	first := opts.FirstTimestamp
	if first == 0 && len(records) > 0 {
		first = records[0].Timestamp
	}
	maxTS := first
	var body []byte
	for i, r := range records {
		if i == 0 || r.Timestamp > maxTS {
			maxTS = r.Timestamp
		}
		delta := int32(i)
		if opts.KeepOffsets {
			delta = int32(r.Offset - opts.BaseOffset)
		}
		body = appendRecord(body, delta, r.Timestamp-first, r)
	}
	lastDelta := int32(len(records) - 1)
	if opts.KeepOffsets {
		lastDelta, maxTS = opts.LastOffsetDelta, opts.MaxTimestamp
	}
	body, err := compress(opts.Codec, opts.SnappyXerial, body)
	if err != nil {
		panic(fmt.Sprintf("recordbatch.Build: %v", err))
	}

	attrs := int16(opts.Codec) & attrCodecMask
	if opts.LogAppendTime {
		attrs |= attrLogAppendTime
	}
	if opts.Transactional {
		attrs |= attrTransactional
	}
	if opts.Control {
		attrs |= attrControl
	}
	pid, epoch, seq := opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	if noProducer {
		pid, epoch, seq = -1, -1, -1
	}

	b := make([]byte, HeaderSize, HeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(opts.BaseOffset))
	be.PutUint32(b[offBatchLength:], uint32(HeaderSize-logOverhead+len(body)))
	be.PutUint32(b[offPartitionLeaderEpoch:], uint32(opts.PartitionLeaderEpoch))
	b[offMagic] = Magic
	be.PutUint16(b[offAttributes:], uint16(attrs))
	be.PutUint32(b[offLastOffsetDelta:], uint32(lastDelta))
	be.PutUint64(b[offFirstTimestamp:], uint64(first))
	be.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint32(b[offNumRecords:], uint32(len(records)))
	b = append(b, body...)
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func appendRecord(dst []byte, offsetDelta int32, tsDelta int64, r Record) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendBytes(body, r.Key)
	body = appendBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = appendBytes(body, []byte(h.Key))
		body = appendBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// appendBytes writes a varint length and b; nil is written as length -1.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// xerialBlockSize is snappy-java's default block size.
const xerialBlockSize = 32 << 10

func compress(c Codec, xerial bool, src []byte) ([]byte, error) {
	switch c {
	case None:
		return src, nil
	case Gzip:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Snappy:
		if !xerial {
			return snappy.Encode(nil, src), nil
		}
		out := append([]byte(nil), xerialMagic[:]...)
		out = binary.BigEndian.AppendUint32(out, 1) // version
		out = binary.BigEndian.AppendUint32(out, 1) // compatible version
		for len(src) > 0 {
			n := min(len(src), xerialBlockSize)
			block := snappy.Encode(nil, src[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
			out = append(out, block...)
			src = src[n:]
		}
		return out, nil
	case LZ4:
		var buf bytes.Buffer
		zw := lz4.NewWriter(&buf)
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Zstd:
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer zw.Close()
		return zw.EncodeAll(src, nil), nil
	default:
		return nil, fmt.Errorf("unknown codec %d", int(c))
	}
}
