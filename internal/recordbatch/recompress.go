package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Levels are the compression levels a topic asks for
// (compression.gzip.level, compression.lz4.level, compression.zstd.level).
type Levels struct {
	Gzip int // -1 (the codec's default) or 1..9
	LZ4  int // 1..17: 1 is lz4's fast mode, 2..9 its high-compression levels, above 9 as 9
	Zstd int // -131072..22, mapped to the encoder's four speeds
}

// DefaultLevels are Kafka's defaults.
var DefaultLevels = Levels{Gzip: -1, LZ4: 9, Zstd: 3}

// Recompress returns a copy of the batch b with its records section
// compressed with codec c at levels lv, as a broker does for a topic
// whose compression.type differs from the producer's codec. The records
// themselves (offset and timestamp deltas, keys, values, headers) are
// kept byte for byte, and so is every header field but the codec bits
// of the attributes, the batch length and the CRC, which is recomputed.
// b must have passed Validate; its records are decoded (decompression
// bounded by MaxUncompressedSize) and must be exactly NumRecords
// well-formed records, or Recompress fails with an ErrCorrupt.
func Recompress(b []byte, c Codec, lv Levels) ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("recompress: unknown codec %d", int(c))
	}
	h, payload, err := open(b)
	if err != nil {
		return nil, err
	}
	if err := eachRecord(h, payload, func(Record) bool { return true }); err != nil {
		return nil, err
	}
	body, err := compressLevel(c, payload, lv)
	if err != nil {
		return nil, fmt.Errorf("recompress to %s: %w", c, err)
	}
	out := make([]byte, HeaderSize, HeaderSize+len(body))
	copy(out, b[:HeaderSize])
	out = append(out, body...)
	be := binary.BigEndian
	be.PutUint32(out[offBatchLength:], uint32(len(out)-logOverhead))
	attrs := int16(be.Uint16(out[offAttributes:]))&^attrCodecMask | int16(c)
	be.PutUint16(out[offAttributes:], uint16(attrs))
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out, nil
}

// SetLogAppendTime marks the batch b as timestamped by the broker at ts
// (LogAppendTime, for a topic whose message.timestamp.type says so): the
// timestamp-type attribute bit is set and maxTimestamp becomes ts, as
// consumers then read every record's timestamp from it. Both fields lie
// inside the CRC, which is recomputed. b is changed in place and must
// hold a whole batch.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	be.PutUint16(b[offAttributes:], be.Uint16(b[offAttributes:])|attrLogAppendTime)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// compressLevel compresses a records section as Kafka's brokers write it:
// snappy in the Java client's framed format, lz4 in 64 KiB blocks.
func compressLevel(c Codec, src []byte, lv Levels) ([]byte, error) {
	switch c {
	case Gzip:
		level := lv.Gzip
		if level < 1 || level > 9 {
			level = gzip.DefaultCompression
		}
		p := &gzipWriters[level+1]
		zw, _ := p.Get().(*gzip.Writer)
		var buf bytes.Buffer
		buf.Grow(len(src)/2 + 64)
		if zw == nil {
			var err error
			if zw, err = gzip.NewWriterLevel(&buf, level); err != nil {
				return nil, err
			}
		} else {
			zw.Reset(&buf)
		}
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		p.Put(zw)
		return buf.Bytes(), nil
	case LZ4:
		level := min(max(lv.LZ4, 1), 9)
		p := &lz4Writers[level]
		zw, _ := p.Get().(*lz4.Writer)
		var buf bytes.Buffer
		buf.Grow(len(src)/2 + 64)
		if zw == nil {
			zw = lz4.NewWriter(&buf)
			lz4Level := lz4.Fast
			if level > 1 {
				lz4Level = lz4.Level1 << (level - 1)
			}
			if err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.CompressionLevelOption(lz4Level)); err != nil {
				return nil, err
			}
		} else {
			zw.Reset(&buf)
		}
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		p.Put(zw)
		return buf.Bytes(), nil
	case Zstd:
		enc, err := zstdEncoders[zstd.EncoderLevelFromZstd(lv.Zstd)]()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, make([]byte, 0, len(src)/2+64)), nil
	default:
		return compress(c, true, src)
	}
}

// Encoders kept between calls: building one costs far more than a small
// batch's compression. They hold no data between calls.
var (
	gzipWriters [11]sync.Pool // by level+1, level -1..9
	lz4Writers  [10]sync.Pool // by level 1..9
	// zstdEncoders by speed; an Encoder's EncodeAll is safe for
	// concurrent use.
	zstdEncoders = func() map[zstd.EncoderLevel]func() (*zstd.Encoder, error) {
		m := map[zstd.EncoderLevel]func() (*zstd.Encoder, error){}
		for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
			m[l] = sync.OnceValues(func() (*zstd.Encoder, error) {
				return zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1))
			})
		}
		return m
	}()
)
