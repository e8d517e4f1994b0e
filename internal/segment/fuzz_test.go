package segment_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

func FuzzDecode(f *testing.F) {
	b := segment.NewBuilder()
	for _, a := range interleaved() {
		b.Add(topicID(a.topic), a.topic, a.partition, a.batch)
	}
	obj, _ := b.Build()
	f.Add(obj)
	empty, _ := segment.NewBuilder().Build()
	f.Add(empty)
	one := segment.NewBuilder()
	one.Add(topicID("t"), "t", 3, batch(1, 0, recordbatch.None))
	small, _ := one.Build()
	f.Add(small)
	f.Add([]byte("FLOESEG"))

	f.Fuzz(func(t *testing.T, object []byte) {
		checkDecode(t, object)
		// Mutations rarely keep both checksums right, so also try the input
		// with its checksums repaired: that lets the fuzzer explore index
		// entries that lie about the data behind them.
		checkDecode(t, resealAll(bytes.Clone(object)))
	})
}

// resealAll rewrites the index and header checksums of obj where its
// header's lengths allow.
func resealAll(obj []byte) []byte {
	if len(obj) < segment.HeaderSize {
		return obj
	}
	be := binary.BigEndian
	if end := uint64(segment.HeaderSize) + uint64(be.Uint32(obj[10:])); end <= uint64(len(obj)) {
		be.PutUint32(obj[14:], crcC(obj[segment.HeaderSize:end]))
	}
	return reseal(obj)
}

func checkDecode(t *testing.T, object []byte) {
	// The prefix readers must not panic either, whatever Decode says.
	if h, err := segment.ReadHeader(object); err == nil {
		_, _ = segment.ParseIndex(h, object)
	}
	seg, err := segment.Decode(object)
	if err != nil {
		return
	}
	// Whatever Decode accepts, a Builder fed the same batches rebuilds
	// the same partitions (the bytes may differ by gaps in the input).
	rb := segment.NewBuilder()
	for _, p := range seg.Partitions {
		for _, bt := range p.Batches {
			rb.Add(p.TopicID, p.Topic, p.Partition, bt.Data)
		}
	}
	again, _ := rb.Build()
	seg2, err := segment.Decode(again)
	if err != nil {
		t.Fatalf("rebuilt object does not decode: %v", err)
	}
	if len(seg2.Partitions) != len(seg.Partitions) {
		t.Fatalf("%d partitions rebuilt as %d", len(seg.Partitions), len(seg2.Partitions))
	}
	for i, p := range seg.Partitions {
		q := seg2.Partitions[i]
		if p.TopicID != q.TopicID || p.Partition != q.Partition || p.BatchCount != q.BatchCount ||
			p.OffsetCount != q.OffsetCount || p.MinTimestamp != q.MinTimestamp || p.MaxTimestamp != q.MaxTimestamp ||
			len(p.Batches) != len(q.Batches) {
			t.Fatalf("partition %d: %+v rebuilt as %+v", i, p.IndexEntry, q.IndexEntry)
		}
		for j := range p.Batches {
			if !bytes.Equal(p.Batches[j].Data, q.Batches[j].Data) {
				t.Fatalf("partition %d batch %d changed", i, j)
			}
		}
	}
}
