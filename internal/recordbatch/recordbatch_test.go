package recordbatch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/recordbatch"
)

var codecs = []struct {
	name   string
	codec  recordbatch.Codec
	xerial bool
}{
	{"none", recordbatch.None, false},
	{"gzip", recordbatch.Gzip, false},
	{"snappy-raw", recordbatch.Snappy, false},
	{"snappy-xerial", recordbatch.Snappy, true},
	{"lz4", recordbatch.LZ4, false},
	{"zstd", recordbatch.Zstd, false},
}

// recordSets are the record lists every codec must round-trip.
func recordSets() map[string][]recordbatch.Record {
	many := make([]recordbatch.Record, 500)
	for i := range many {
		many[i] = recordbatch.Record{
			Timestamp: 1_700_000_000_000 + int64(i%7)*1000 - 3000,
			Key:       fmt.Appendf(nil, "key-%d", i),
			Value:     bytes.Repeat([]byte{byte(i)}, i%300),
		}
	}
	return map[string][]recordbatch.Record{
		"one": {{Timestamp: 1000, Key: []byte("k"), Value: []byte("v")}},
		"nulls": {
			{Timestamp: 5, Key: nil, Value: nil},
			{Timestamp: 6, Key: []byte{}, Value: []byte{}},
			{Timestamp: 4, Key: nil, Value: []byte("only value")},
		},
		"headers": {{
			Timestamp: -1,
			Key:       []byte("k"),
			Value:     []byte("v"),
			Headers: []recordbatch.RecordHeader{
				{Key: "trace", Value: []byte("abc")},
				{Key: "", Value: nil},
				{Key: "empty", Value: []byte{}},
			},
		}},
		"many": many,
		// Larger than one xerial block (32 KiB), so framing has several.
		"big": {{Timestamp: 9, Value: bytes.Repeat([]byte("floe "), 30_000)}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range codecs {
		for name, recs := range recordSets() {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				const base = 1234
				b := recordbatch.Build(recordbatch.BuildOptions{
					BaseOffset:    base,
					Codec:         c.codec,
					SnappyXerial:  c.xerial,
					ProducerID:    77,
					ProducerEpoch: 3,
					BaseSequence:  10,
				}, recs...)
				h, err := recordbatch.Validate(b)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if h.Compression() != c.codec || h.NumRecords != int32(len(recs)) || h.BaseOffset != base {
					t.Fatalf("header %+v", h)
				}
				if h.ProducerID != 77 || h.ProducerEpoch != 3 || h.BaseSequence != 10 {
					t.Fatalf("producer fields %+v", h)
				}
				if c.xerial != bytes.HasPrefix(b[recordbatch.HeaderSize:], []byte("\x82SNAPPY\x00")) {
					t.Fatalf("xerial framing = %v, want %v", !c.xerial, c.xerial)
				}
				got, err := recordbatch.Records(b)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				want := make([]recordbatch.Record, len(recs))
				for i, r := range recs {
					r.Offset = base + int64(i)
					want[i] = r
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("records differ:\n got %.300v\nwant %.300v", got, want)
				}
			})
		}
	}
}

func TestHeaderFields(t *testing.T) {
	b := recordbatch.Build(recordbatch.BuildOptions{
		Codec:                recordbatch.Zstd,
		PartitionLeaderEpoch: 9,
		Transactional:        true,
		LogAppendTime:        true,
	}, recordbatch.Record{Timestamp: 50}, recordbatch.Record{Timestamp: 20})
	h, err := recordbatch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"codec", h.Compression().String(), "zstd"},
		{"timestamp type", h.TimestampType(), recordbatch.LogAppendTime},
		{"log append", h.IsLogAppendTime(), true},
		{"transactional", h.IsTransactional(), true},
		{"control", h.IsControl(), false},
		{"size", h.Size(), len(b)},
		{"epoch", h.PartitionLeaderEpoch, int32(9)},
		{"first ts", h.FirstTimestamp, int64(50)},
		{"max ts", h.MaxTimestamp, int64(50)},
		{"last delta", h.LastOffsetDelta, int32(1)},
		{"no producer", [3]int64{h.ProducerID, int64(h.ProducerEpoch), int64(h.BaseSequence)}, [3]int64{-1, -1, -1}},
		{"unknown codec", recordbatch.Codec(6).String(), "codec(6)"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// LogAppendTime: every record carries the batch's max timestamp.
	recs, err := recordbatch.Records(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp != 50 {
			t.Errorf("record %d timestamp %d, want 50", r.Offset, r.Timestamp)
		}
	}
}

// reseal rewrites the CRC after a test edits bytes inside the CRC range.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestValidateErrors(t *testing.T) {
	good := func() []byte {
		return recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Gzip},
			recordbatch.Record{Value: []byte("a")}, recordbatch.Record{Value: []byte("b")})
	}
	cases := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"empty", nil, recordbatch.ErrCorrupt},
		{"short header", good()[:40], recordbatch.ErrCorrupt},
		{"truncated", func() []byte { b := good(); return b[:len(b)-1] }(), recordbatch.ErrCorrupt},
		{"trailing byte", append(good(), 0), recordbatch.ErrCorrupt},
		{"crc flipped", func() []byte { b := good(); b[len(b)-1] ^= 1; return b }(), recordbatch.ErrCorrupt},
		{"crc field", func() []byte { b := good(); b[17] ^= 0x80; return b }(), recordbatch.ErrCorrupt},
		{"magic 1", func() []byte { b := good(); b[16] = 1; return b }(), recordbatch.ErrUnsupportedMagic},
		{"count mismatch", func() []byte {
			b := good()
			binary.BigEndian.PutUint32(b[57:], 3)
			return reseal(b)
		}(), recordbatch.ErrCorrupt},
		{"zero records", reseal(recordbatch.Build(recordbatch.BuildOptions{})), recordbatch.ErrCorrupt},
		{"unknown codec", func() []byte { b := good(); b[22] |= 7; return reseal(b) }(), recordbatch.ErrCorrupt},
		{"length too small", func() []byte {
			b := good()
			binary.BigEndian.PutUint32(b[8:], 10)
			return b
		}(), recordbatch.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := recordbatch.Validate(c.batch)
			if !errors.Is(err, c.want) {
				t.Fatalf("Validate error %v, want %v", err, c.want)
			}
		})
	}
	if _, err := recordbatch.Validate(good()); err != nil {
		t.Fatalf("good batch: %v", err)
	}
}

func TestSplit(t *testing.T) {
	var batches [][]byte
	for i, c := range []recordbatch.Codec{recordbatch.None, recordbatch.LZ4, recordbatch.Snappy} {
		recs := make([]recordbatch.Record, i+1)
		for j := range recs {
			recs[j] = recordbatch.Record{Value: fmt.Appendf(nil, "%d/%d", i, j)}
		}
		batches = append(batches, recordbatch.Build(recordbatch.BuildOptions{Codec: c}, recs...))
	}
	data := bytes.Join(batches, nil)
	got, err := recordbatch.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d batches, want 3", len(got))
	}
	off := 0
	for i, b := range got {
		if !bytes.Equal(b, batches[i]) {
			t.Errorf("batch %d differs", i)
		}
		if &b[0] != &data[off] {
			t.Errorf("batch %d was copied", i)
		}
		if _, err := recordbatch.Validate(b); err != nil {
			t.Errorf("batch %d: %v", i, err)
		}
		off += len(b)
	}

	bad := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, recordbatch.ErrCorrupt},
		{"truncated last", data[:len(data)-5], recordbatch.ErrCorrupt},
		{"trailing garbage", append(bytes.Clone(data), 1, 2, 3), recordbatch.ErrCorrupt},
		{"garbage", bytes.Repeat([]byte{0xff}, 100), recordbatch.ErrCorrupt},
		{"small length", func() []byte {
			b := bytes.Clone(batches[0])
			binary.BigEndian.PutUint32(b[8:], 48)
			return b
		}(), recordbatch.ErrCorrupt},
		{"huge length", func() []byte {
			b := bytes.Clone(batches[0])
			binary.BigEndian.PutUint32(b[8:], 0x7fffffff)
			return b
		}(), recordbatch.ErrCorrupt},
		{"magic 0", func() []byte {
			b := bytes.Clone(data)
			b[len(batches[0])+16] = 0
			return b
		}(), recordbatch.ErrUnsupportedMagic},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := recordbatch.Split(c.data); !errors.Is(err, c.want) {
				t.Fatalf("Split error %v, want %v", err, c.want)
			}
		})
	}
}

func TestPatchOutsideCRC(t *testing.T) {
	b := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Snappy},
		recordbatch.Record{Value: []byte("x")}, recordbatch.Record{Value: []byte("y")})
	recordbatch.SetBaseOffset(b, 1<<40)
	recordbatch.SetPartitionLeaderEpoch(b, 12)
	h, err := recordbatch.Validate(b)
	if err != nil {
		t.Fatalf("patched batch no longer valid: %v", err)
	}
	if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 12 {
		t.Fatalf("header %+v", h)
	}
	recs, err := recordbatch.Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if recs[1].Offset != 1<<40+1 {
		t.Fatalf("second record offset %d", recs[1].Offset)
	}
}

func TestTimestampLookups(t *testing.T) {
	// Timestamps out of order, with a repeated maximum, as clients may send.
	ts := []int64{100, 300, 200, 300, 50}
	recs := make([]recordbatch.Record, len(ts))
	for i, v := range ts {
		recs[i] = recordbatch.Record{Timestamp: v}
	}
	b := recordbatch.Build(recordbatch.BuildOptions{BaseOffset: 10, Codec: recordbatch.LZ4}, recs...)

	cases := []struct {
		target int64
		offset int64
		found  bool
	}{
		{-1, 10, true},
		{100, 10, true},
		{101, 11, true},
		{250, 11, true},
		{300, 11, true},
		{301, 0, false},
	}
	for _, c := range cases {
		off, found, err := recordbatch.FirstTimestampAtOrAfter(b, c.target)
		if err != nil || off != c.offset || found != c.found {
			t.Errorf("FirstTimestampAtOrAfter(%d) = %d, %v, %v; want %d, %v", c.target, off, found, err, c.offset, c.found)
		}
	}
	off, maxTS, err := recordbatch.MaxTimestampOffset(b)
	if err != nil || off != 11 || maxTS != 300 {
		t.Errorf("MaxTimestampOffset = %d, %d, %v; want 11, 300", off, maxTS, err)
	}
}

// withPayload replaces the records section of a batch, keeping it valid.
func withPayload(codec recordbatch.Codec, numRecords int, payload []byte) []byte {
	b := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.None})
	b = append(b[:recordbatch.HeaderSize], payload...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint32(b[23:], uint32(numRecords-1))
	binary.BigEndian.PutUint32(b[57:], uint32(numRecords))
	return reseal(b)
}

func TestRecordsRejectsHostileInput(t *testing.T) {
	uvarint := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	cases := []struct {
		name  string
		batch []byte
	}{
		{"huge record count", withPayload(recordbatch.None, 1<<30, []byte{2, 0})},
		{"record length beyond data", withPayload(recordbatch.None, 1, []byte{100, 0, 0, 0})},
		{"negative key length", withPayload(recordbatch.None, 1, []byte{10, 0, 0, 0, 5, 0, 0})},
		{"trailing bytes", withPayload(recordbatch.None, 1, []byte{12, 0, 0, 0, 1, 1, 0, 9})},
		{"huge header count", withPayload(recordbatch.None, 1, []byte{12, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f})},
		{"snappy claims 1 GiB", withPayload(recordbatch.Snappy, 1, append(uvarint(1<<30), 0, 0))},
		{"xerial block beyond data", withPayload(recordbatch.Snappy, 1,
			append([]byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"), 0x7f, 0xff, 0xff, 0xff, 1))},
		{"gzip garbage", withPayload(recordbatch.Gzip, 1, []byte("not gzip"))},
		{"lz4 garbage", withPayload(recordbatch.LZ4, 1, []byte("not lz4 at all"))},
		{"zstd garbage", withPayload(recordbatch.Zstd, 1, []byte("not zstd at all"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := recordbatch.Records(c.batch); !errors.Is(err, recordbatch.ErrCorrupt) {
				t.Fatalf("Records error %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestDecompressionLimit(t *testing.T) {
	const limit = 1 << 20
	for _, c := range codecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			for _, n := range []int{limit, limit + 1} {
				// Zeros compress to almost nothing: the cap, not the input
				// size, must stop them.
				src, err := recordbatch.Compress(c.codec, c.xerial, make([]byte, n))
				if err != nil {
					t.Fatal(err)
				}
				out, err := recordbatch.Decompress(c.codec, src, limit)
				switch {
				case n <= limit && (err != nil || len(out) != n):
					t.Fatalf("%d bytes at limit %d: got %d bytes, %v", n, limit, len(out), err)
				case n > limit && !errors.Is(err, recordbatch.ErrCorrupt):
					t.Fatalf("%d bytes at limit %d: error %v, want ErrCorrupt", n, limit, err)
				}
			}
		})
	}
}

// TestDecompressionCap checks the real cap end to end through Records, for
// the codecs that are quick to build at 64 MiB (under -race, too).
func TestDecompressionCap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 64 MiB batches")
	}
	zeros := make([]byte, recordbatch.MaxUncompressedSize+1)
	for _, c := range []recordbatch.Codec{recordbatch.Snappy, recordbatch.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			b := recordbatch.Build(recordbatch.BuildOptions{Codec: c}, recordbatch.Record{Value: zeros})
			_, err := recordbatch.Records(b)
			if !errors.Is(err, recordbatch.ErrCorrupt) || !strings.Contains(err.Error(), "more than") {
				t.Fatalf("Records error %v, want the size cap", err)
			}
		})
	}
}
