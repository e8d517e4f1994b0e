package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxUncompressedSize caps the decompressed records section of one batch.
// Kafka batches are normally a few MiB at most; a larger result means a
// hostile or broken batch, and decoding stops before allocating more.
const MaxUncompressedSize = 64 << 20

// xerialMagic starts the framed snappy format the Java client writes
// (snappy-java's SnappyOutputStream): the magic, then int32 version and
// int32 compatible-version, then repeated [int32 length][raw snappy block].
var xerialMagic = [8]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = len(xerialMagic) + 8

// zstdDecoder is one decoder shared by every call. It is the package's only
// state: a zstd.Decoder's DecodeAll is safe for concurrent use and
// expensive to build, so building one per batch would dominate decoding.
// It holds no data between calls.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxUncompressedSize),
		zstd.WithDecoderMaxWindow(MaxUncompressedSize),
	)
})

// Decompress returns src decompressed with codec c, as Kafka's clients
// compress (snappy either framed as the Java client writes it or one raw
// block), failing once the result would exceed limit bytes: src is
// hostile input. A corrupt or oversized src is an ErrCorrupt.
func Decompress(c Codec, src []byte, limit int) ([]byte, error) {
	return decompress(c, src, limit)
}

// decompress returns the uncompressed records section of a batch, failing
// once it would exceed limit bytes (MaxUncompressedSize outside tests).
func decompress(c Codec, src []byte, limit int) ([]byte, error) {
	switch c {
	case None:
		return src, nil
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, corrupt("gzip: %v", err)
		}
		return readCapped("gzip", zr, limit)
	case Snappy:
		if len(src) >= len(xerialMagic) && [8]byte(src[:8]) == xerialMagic {
			return decodeXerial(src, limit)
		}
		return decodeSnappyBlock(nil, src, limit)
	case LZ4:
		return readCapped("lz4", lz4.NewReader(bytes.NewReader(src)), limit)
	case Zstd:
		d, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := d.DecodeAll(src, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > limit {
			return nil, corrupt("zstd: decompresses to more than %d bytes", limit)
		}
		if err != nil {
			return nil, corrupt("zstd: %v", err)
		}
		return out, nil
	default:
		return nil, corrupt("unknown compression codec %d", int(c))
	}
}

// readCapped reads r to the end, failing once more than limit bytes come
// out.
func readCapped(name string, r io.Reader, limit int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, corrupt("%s: %v", name, err)
	}
	if len(out) > limit {
		return nil, corrupt("%s: decompresses to more than %d bytes", name, limit)
	}
	return out, nil
}

// decodeSnappyBlock appends one raw snappy block's content to dst, checking
// the declared length against limit before allocating.
func decodeSnappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, corrupt("snappy: %v", err)
	}
	if n > limit-len(dst) {
		return nil, corrupt("snappy: decompresses to more than %d bytes", limit)
	}
	// The slot has capacity n, exactly the decoded length, so Decode
	// writes into it rather than allocating.
	dst = growBy(dst, n)
	out, err := snappy.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return nil, corrupt("snappy: %v", err)
	}
	if len(out) != n {
		return nil, corrupt("snappy: decoded %d bytes, header said %d", len(out), n)
	}
	return dst[:len(dst)+n], nil
}

// growBy makes room for n more bytes after len(b).
func growBy(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

// decodeXerial decodes the Java client's framed snappy format.
func decodeXerial(src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderSize {
		return nil, corrupt("snappy: truncated xerial header")
	}
	// The version and compatible-version ints are not checked: snappy-java
	// has written 1/1 for a decade and readers have always ignored them.
	rest := src[xerialHeaderSize:]
	var out []byte
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, corrupt("snappy: truncated xerial block length")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, corrupt("snappy: xerial block of %d bytes, %d left", n, len(rest))
		}
		var err error
		if out, err = decodeSnappyBlock(out, rest[:n], limit); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}
