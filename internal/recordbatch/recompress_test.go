package recordbatch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/floe-io/floe/internal/recordbatch"
)

// TestRecompressEveryCodec: a batch of every codec and framing,
// recompressed to every codec at several levels, keeps its records byte
// for byte and every header field but the codec, length and CRC.
func TestRecompressEveryCodec(t *testing.T) {
	recs := []recordbatch.Record{
		{Timestamp: 1_700_000_000_010, Key: []byte("k1"), Value: bytes.Repeat([]byte("value "), 200)},
		{Timestamp: 1_700_000_000_005, Key: nil, Value: []byte("v2"), Headers: []recordbatch.RecordHeader{{Key: "h", Value: []byte("x")}, {Key: "n", Value: nil}}},
		{Timestamp: 1_700_000_000_020, Key: []byte{}, Value: nil},
	}
	levels := []recordbatch.Levels{
		recordbatch.DefaultLevels,
		{Gzip: 1, LZ4: 1, Zstd: -5},
		{Gzip: 9, LZ4: 17, Zstd: 22},
	}
	for _, from := range codecs {
		src := recordbatch.Build(recordbatch.BuildOptions{
			BaseOffset: 42, Codec: from.codec, SnappyXerial: from.xerial,
			ProducerID: 7, ProducerEpoch: 3, BaseSequence: 11, Transactional: true, PartitionLeaderEpoch: 5,
		}, recs...)
		srcHdr, err := recordbatch.Validate(src)
		if err != nil {
			t.Fatal(err)
		}
		srcBody := rawRecords(t, src)
		wantRecs, err := recordbatch.Records(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []recordbatch.Codec{recordbatch.None, recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
			for _, lv := range levels {
				out, err := recordbatch.Recompress(src, to, lv)
				if err != nil {
					t.Fatalf("%s → %s %+v: %v", from.name, to, lv, err)
				}
				h, err := recordbatch.Validate(out)
				if err != nil {
					t.Fatalf("%s → %s: recompressed batch invalid: %v", from.name, to, err)
				}
				if h.Compression() != to {
					t.Errorf("%s → %s: codec %s", from.name, to, h.Compression())
				}
				want := srcHdr
				want.Attributes = srcHdr.Attributes&^7 | int16(to)
				want.BatchLength, want.CRC = h.BatchLength, h.CRC
				if h != want {
					t.Errorf("%s → %s: header %+v, want %+v", from.name, to, h, want)
				}
				if got := rawRecords(t, out); !bytes.Equal(got, srcBody) {
					t.Errorf("%s → %s: records section differs", from.name, to)
				}
				got, err := recordbatch.Records(out)
				if err != nil || !reflect.DeepEqual(got, wantRecs) {
					t.Errorf("%s → %s: records %+v (err %v), want %+v", from.name, to, got, err, wantRecs)
				}
			}
		}
	}
}

// rawRecords is a batch's records section, uncompressed.
func rawRecords(t *testing.T, b []byte) []byte {
	t.Helper()
	h, err := recordbatch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := recordbatch.Decompress(h.Compression(), b[recordbatch.HeaderSize:], recordbatch.MaxUncompressedSize)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecompressRefusesBadRecords: a batch whose CRC is right but whose
// records do not decode, or hold more or fewer records than it says, is
// corrupt, not recompressed.
func TestRecompressRefusesBadRecords(t *testing.T) {
	good := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.None}, recordbatch.Record{Key: []byte("k"), Value: []byte("v")}, recordbatch.Record{Value: []byte("w")})
	// Claim one record only: the count and last offset delta agree, the
	// CRC is recomputed, but a record is left over.
	bad := bytes.Clone(good)
	bad[23+3] = 0 // lastOffsetDelta 1 → 0
	bad[57+3] = 1 // numRecords 2 → 1
	fixCRC(bad)
	if _, err := recordbatch.Validate(bad); err != nil {
		t.Fatalf("test batch should pass Validate: %v", err)
	}
	if _, err := recordbatch.Recompress(bad, recordbatch.Zstd, recordbatch.DefaultLevels); !errors.Is(err, recordbatch.ErrCorrupt) {
		t.Errorf("leftover record: err %v, want ErrCorrupt", err)
	}
	garbled := bytes.Clone(good)
	garbled[recordbatch.HeaderSize] = 0x7f // first record's length varint
	fixCRC(garbled)
	if _, err := recordbatch.Recompress(garbled, recordbatch.Gzip, recordbatch.DefaultLevels); !errors.Is(err, recordbatch.ErrCorrupt) {
		t.Errorf("garbled record: err %v, want ErrCorrupt", err)
	}
}

// TestSetLogAppendTime: the batch stays valid, says LogAppendTime, and
// its maxTimestamp is the append time; records are untouched.
func TestSetLogAppendTime(t *testing.T) {
	b := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.LZ4, ProducerID: 9}, recordbatch.Record{Timestamp: 100, Value: []byte("v")})
	before, _ := recordbatch.Records(b)
	recordbatch.SetLogAppendTime(b, 123456)
	h, err := recordbatch.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.IsLogAppendTime() || h.MaxTimestamp != 123456 || h.Compression() != recordbatch.LZ4 || h.ProducerID != 9 {
		t.Errorf("header %+v", h)
	}
	after, _ := recordbatch.Records(b)
	// Readers take a LogAppendTime batch's records' timestamps from it.
	before[0].Timestamp = 123456
	if !reflect.DeepEqual(before, after) {
		t.Errorf("records: %+v, want %+v", after, before)
	}
}

// fixCRC recomputes a batch's CRC after a test changed it.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}

// FuzzRecompress: whatever the bytes, Recompress never panics, and what
// it returns is a valid batch of the asked codec holding the same
// records section as the input.
func FuzzRecompress(f *testing.F) {
	for _, b := range seedBatches() {
		for c := range 5 {
			f.Add(b, uint8(c), int8(3))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, codec uint8, level int8) {
		if _, err := recordbatch.Validate(data); err != nil {
			return
		}
		to := recordbatch.Codec(codec % 5)
		lv := recordbatch.Levels{Gzip: int(level % 10), LZ4: int(level % 18), Zstd: int(level)}
		out, err := recordbatch.Recompress(data, to, lv)
		if err != nil {
			if !errors.Is(err, recordbatch.ErrCorrupt) && !errors.Is(err, recordbatch.ErrUnsupportedMagic) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		h, err := recordbatch.Validate(out)
		if err != nil {
			t.Fatalf("recompressed batch invalid: %v", err)
		}
		if h.Compression() != to {
			t.Fatalf("codec %s, want %s", h.Compression(), to)
		}
		in, _ := recordbatch.ParseHeader(data)
		src, err := recordbatch.Decompress(in.Compression(), data[recordbatch.HeaderSize:], recordbatch.MaxUncompressedSize)
		if err != nil {
			t.Fatalf("input decompressed for Recompress but not now: %v", err)
		}
		got, err := recordbatch.Decompress(to, out[recordbatch.HeaderSize:], recordbatch.MaxUncompressedSize)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("records section differs (err %v)", err)
		}
	})
}

// BenchmarkRecompress measures the agent's cost per batch of a topic's
// compression.type: a 64-record batch of 1 KiB values (as floe bench
// writes them: an 8-byte time, then the same random filler), from the
// producer's codec to the topic's. b.SetBytes counts uncompressed record
// bytes, so MB/s is the rate one core recompresses at.
func BenchmarkRecompress(b *testing.B) {
	filler := make([]byte, 1016)
	for i := range filler {
		filler[i] = byte(i*7919 + i>>3)
	}
	var recs []recordbatch.Record
	for i := range 64 {
		v := binary.BigEndian.AppendUint64(nil, uint64(i)*1_000_003)
		recs = append(recs, recordbatch.Record{Timestamp: 1_700_000_000_000 + int64(i), Value: append(v, filler...)})
	}
	for _, pair := range []struct{ from, to recordbatch.Codec }{
		{recordbatch.LZ4, recordbatch.Zstd}, {recordbatch.LZ4, recordbatch.Gzip}, {recordbatch.LZ4, recordbatch.Snappy},
		{recordbatch.LZ4, recordbatch.None}, {recordbatch.None, recordbatch.LZ4}, {recordbatch.Zstd, recordbatch.LZ4},
	} {
		src := recordbatch.Build(recordbatch.BuildOptions{Codec: pair.from}, recs...)
		raw := len(rawRecords(&testing.T{}, src))
		b.Run(pair.from.String()+"-to-"+pair.to.String(), func(b *testing.B) {
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := recordbatch.Recompress(src, pair.to, recordbatch.DefaultLevels); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
