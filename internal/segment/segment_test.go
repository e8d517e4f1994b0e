package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

type add struct {
	topic     string
	partition int32
	batch     []byte
}

func topicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], "id:"+name)
	return id
}

func batch(n int, firstTS int64, codec recordbatch.Codec) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Timestamp: firstTS + int64(i)*10, Value: fmt.Appendf(nil, "v%d@%d", i, firstTS)}
	}
	return recordbatch.Build(recordbatch.BuildOptions{Codec: codec}, recs...)
}

// interleaved adds batches of three topics and five partitions in an order
// that interleaves partitions, as a produce flush sees them.
func interleaved() []add {
	return []add{
		{"orders", 0, batch(3, 1000, recordbatch.None)},
		{"clicks", 2, batch(1, 5000, recordbatch.Zstd)},
		{"orders", 1, batch(2, 900, recordbatch.Gzip)},
		{"orders", 0, batch(5, 800, recordbatch.LZ4)},
		{"audit", 0, batch(1, 7000, recordbatch.Snappy)},
		{"clicks", 2, batch(4, 4000, recordbatch.None)},
		{"orders", 0, batch(1, 1200, recordbatch.None)},
		{"clicks", 0, batch(2, 10, recordbatch.None)},
	}
}

func build(t *testing.T, adds []add) ([]byte, []segment.Placement, *segment.Builder) {
	t.Helper()
	b := segment.NewBuilder()
	for i, a := range adds {
		if got := b.Add(topicID(a.topic), a.topic, a.partition, a.batch); got != i {
			t.Fatalf("Add returned %d, want %d", got, i)
		}
	}
	obj, placements := b.Build()
	if len(obj) != b.Size() {
		t.Fatalf("object has %d bytes, Size said %d", len(obj), b.Size())
	}
	if b.Len() != len(adds) {
		t.Fatalf("Len %d, want %d", b.Len(), len(adds))
	}
	return obj, placements, b
}

func TestRoundTrip(t *testing.T) {
	adds := interleaved()
	obj, placements, _ := build(t, adds)

	// Every placement points at the batch as it was added.
	if len(placements) != len(adds) {
		t.Fatalf("%d placements for %d batches", len(placements), len(adds))
	}
	for i, p := range placements {
		a := adds[i]
		if p.TopicID != topicID(a.topic) || p.Partition != a.partition {
			t.Errorf("placement %d is for %x/%d", i, p.TopicID, p.Partition)
		}
		if got := obj[p.ByteOffset : p.ByteOffset+p.ByteLength]; !bytes.Equal(got, a.batch) {
			t.Errorf("placement %d does not hold the added batch", i)
		}
	}

	seg, err := segment.Decode(obj)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	// Partitions in first-arrival order, batches in arrival order.
	want := []struct {
		topic     string
		partition int32
		adds      []int
		offsets   uint64
		minTS     int64
		maxTS     int64
	}{
		{"orders", 0, []int{0, 3, 6}, 9, 800, 1200},
		{"clicks", 2, []int{1, 5}, 5, 4000, 5000},
		{"orders", 1, []int{2}, 2, 900, 910},
		{"audit", 0, []int{4}, 1, 7000, 7000},
		{"clicks", 0, []int{7}, 2, 10, 20},
	}
	if len(seg.Partitions) != len(want) {
		t.Fatalf("%d partitions, want %d", len(seg.Partitions), len(want))
	}
	for i, w := range want {
		p := seg.Partitions[i]
		if p.Topic != w.topic || p.TopicID != topicID(w.topic) || p.Partition != w.partition {
			t.Fatalf("partition %d is %s/%d, want %s/%d", i, p.Topic, p.Partition, w.topic, w.partition)
		}
		if int(p.BatchCount) != len(w.adds) || p.OffsetCount != w.offsets || p.MinTimestamp != w.minTS || p.MaxTimestamp != w.maxTS {
			t.Errorf("entry %d = %+v, want %d batches, %d offsets, ts [%d, %d]", i, p.IndexEntry, len(w.adds), w.offsets, w.minTS, w.maxTS)
		}
		for j, ai := range w.adds {
			got := p.Batches[j]
			if !bytes.Equal(got.Data, adds[ai].batch) || got.ByteOffset != placements[ai].ByteOffset {
				t.Errorf("partition %d batch %d is not add %d", i, j, ai)
			}
		}
		// One ranged GET per partition: its bytes are contiguous.
		first, last := placements[w.adds[0]], placements[w.adds[len(w.adds)-1]]
		if uint64(first.ByteOffset) != p.DataOffset || uint64(last.ByteOffset+last.ByteLength) != p.DataOffset+p.DataLength {
			t.Errorf("partition %d range [%d,+%d) does not match its placements", i, p.DataOffset, p.DataLength)
		}
	}

	// The header and index alone, as one small GET returns them.
	h, err := segment.ReadHeader(obj[:segment.HeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	prefix := obj[:h.DataOffset()]
	entries, err := segment.ParseIndex(h, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if e != seg.Partitions[i].IndexEntry {
			t.Errorf("entry %d from prefix differs from Decode", i)
		}
	}

	// Build is repeatable and does not disturb the builder.
	b := segment.NewBuilder()
	for _, a := range adds {
		b.Add(topicID(a.topic), a.topic, a.partition, a.batch)
	}
	first, _ := b.Build()
	second, _ := b.Build()
	if !bytes.Equal(first, second) || !bytes.Equal(first, obj) {
		t.Error("Build is not deterministic")
	}
}

func TestEmptyBuilder(t *testing.T) {
	b := segment.NewBuilder()
	obj, placements := b.Build()
	if len(placements) != 0 || len(obj) != b.Size() {
		t.Fatalf("%d placements, %d bytes (Size %d)", len(placements), len(obj), b.Size())
	}
	seg, err := segment.Decode(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(seg.Partitions) != 0 {
		t.Fatalf("%d partitions", len(seg.Partitions))
	}
}

func TestSizeTracksAdds(t *testing.T) {
	b := segment.NewBuilder()
	for _, a := range interleaved() {
		b.Add(topicID(a.topic), a.topic, a.partition, a.batch)
		obj, _ := b.Build()
		if len(obj) != b.Size() {
			t.Fatalf("after %d adds: object %d bytes, Size %d", b.Len(), len(obj), b.Size())
		}
	}
}

func TestCorruption(t *testing.T) {
	obj, _, _ := build(t, interleaved())
	h, err := segment.ReadHeader(obj)
	if err != nil {
		t.Fatal(err)
	}
	indexStart, dataStart := int(h.IndexOffset()), int(h.DataOffset())

	flip := func(pos int) []byte {
		c := bytes.Clone(obj)
		c[pos] ^= 0x01
		return c
	}
	cases := []struct {
		name   string
		object []byte
		want   error
	}{
		{"empty", nil, segment.ErrCorrupt},
		{"not a segment", []byte(strings.Repeat("x", 64)), segment.ErrNotSegment},
		{"header crc", flip(12), segment.ErrCorrupt},
		{"version", func() []byte {
			c := bytes.Clone(obj)
			c[7] = 2
			return reseal(c)
		}(), segment.ErrUnsupportedVersion},
		{"flags", func() []byte {
			c := bytes.Clone(obj)
			c[9] = 1
			return reseal(c)
		}(), segment.ErrUnsupportedVersion},
		{"index count", flip(indexStart + 3), segment.ErrCorrupt},
		{"index topic byte", flip(indexStart + 4 + 18), segment.ErrCorrupt},
		{"index last byte", flip(dataStart - 1), segment.ErrCorrupt},
		{"batch payload", flip(len(obj) - 1), recordbatch.ErrCorrupt},
		{"truncated header", obj[:segment.HeaderSize-1], segment.ErrCorrupt},
		{"truncated index", obj[:dataStart-1], segment.ErrCorrupt},
		{"truncated data", obj[:len(obj)-1], segment.ErrCorrupt},
		{"extra byte", append(bytes.Clone(obj), 0), segment.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := segment.Decode(c.object); !errors.Is(err, c.want) {
				t.Fatalf("Decode error %v, want %v", err, c.want)
			}
		})
	}
}

// reseal recomputes the header checksum after a test edits the header.
func reseal(obj []byte) []byte {
	h := obj[:segment.HeaderSize]
	binary.BigEndian.PutUint32(h[26:], crcC(h[:26]))
	return obj
}

// TestIndexLies builds objects whose index is well formed and correctly
// checksummed but disagrees with the data, which only Decode can notice.
func TestIndexLies(t *testing.T) {
	a := batch(2, 100, recordbatch.None)
	b := batch(3, 200, recordbatch.None)
	dataStart := uint64(segment.HeaderSize + 4 + 2*(66+1))
	good := func() []segment.IndexEntry {
		return []segment.IndexEntry{
			{TopicID: topicID("a"), Topic: "a", Partition: 0, DataOffset: dataStart, DataLength: uint64(len(a)),
				BatchCount: 1, OffsetCount: 2, MinTimestamp: 100, MaxTimestamp: 110},
			{TopicID: topicID("b"), Topic: "b", Partition: 0, DataOffset: dataStart + uint64(len(a)), DataLength: uint64(len(b)),
				BatchCount: 1, OffsetCount: 3, MinTimestamp: 200, MaxTimestamp: 220},
		}
	}
	data := append(bytes.Clone(a), b...)
	if _, err := segment.Decode(handBuild(good(), data)); err != nil {
		t.Fatalf("hand-built object: %v", err)
	}
	cases := []struct {
		name string
		edit func(e []segment.IndexEntry)
	}{
		{"overlap", func(e []segment.IndexEntry) { e[1].DataOffset--; e[1].DataLength++ }},
		{"before data", func(e []segment.IndexEntry) { e[0].DataOffset-- }},
		{"past end", func(e []segment.IndexEntry) { e[1].DataLength++ }},
		{"huge length", func(e []segment.IndexEntry) { e[1].DataLength = 1<<64 - 1 }},
		{"batch count", func(e []segment.IndexEntry) { e[0].BatchCount = 2 }},
		{"offset count", func(e []segment.IndexEntry) { e[1].OffsetCount = 4 }},
		{"timestamps", func(e []segment.IndexEntry) { e[0].MaxTimestamp = 111 }},
		{"duplicate partition", func(e []segment.IndexEntry) { e[1].TopicID = e[0].TopicID }},
		{"split mid-batch", func(e []segment.IndexEntry) { e[0].DataLength -= 5; e[1].DataOffset -= 5; e[1].DataLength += 5 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := good()
			c.edit(entries)
			if _, err := segment.Decode(handBuild(entries, data)); !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("Decode error %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := segment.NewKey()
		if !strings.HasPrefix(k, "segments/") || len(k) != len("segments/")+36 {
			t.Fatalf("key %q", k)
		}
		if seen[k] {
			t.Fatalf("key %q repeated", k)
		}
		seen[k] = true
	}
}

func TestAddPanicsOnGarbage(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Add accepted a non-batch")
		}
	}()
	segment.NewBuilder().Add(topicID("t"), "t", 0, []byte("nope"))
}
