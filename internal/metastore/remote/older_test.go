package remote

import (
	"reflect"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// TestSegmentCommitVersions decodes a segment commit as version 1 wrote
// it (its batches as maps) and as version 2 writes it (arrays): a
// journal row or bucket log object of either replays to the same commit,
// and neither encoding passes for the other.
func TestSegmentCommitVersions(t *testing.T) {
	c := metastore.SegmentCommit{Object: "segments/a", Size: 300, Batches: []metastore.BatchCommit{
		{TopicID: metastore.TopicID{1, 2, 3}, Partition: 7, ByteOffset: 100, ByteLength: 200, OffsetCount: 3,
			MaxTimestamp: 1_700_000_000_000, ProducerID: 42, ProducerEpoch: 3, BaseSequence: 9, Transactional: true},
		{Partition: 1, ByteLength: 100, OffsetCount: 1, ProducerID: -1},
	}}
	v1 := segmentCommitV1{Object: c.Object, Size: c.Size}
	for _, b := range c.Batches {
		v1.Batches = append(v1.Batches, batchCommitV1{
			TopicID: b.TopicID, Partition: b.Partition, ByteOffset: b.ByteOffset, ByteLength: b.ByteLength,
			OffsetCount: b.OffsetCount, MaxTimestamp: b.MaxTimestamp, ProducerID: b.ProducerID,
			ProducerEpoch: b.ProducerEpoch, BaseSequence: b.BaseSequence, Transactional: b.Transactional,
		})
	}
	raw1, raw2 := must1(Marshal(v1)), must1(Marshal(c))
	t.Logf("version 1: %d bytes, version 2: %d bytes", len(raw1), len(raw2))
	if len(raw2)*2 > len(raw1) {
		t.Errorf("version 2 (%d bytes) not under half of version 1 (%d)", len(raw2), len(raw1))
	}
	o, _ := Lookup("CommitSegment")
	for _, tc := range []struct {
		raw []byte
		v   int
	}{{raw1, 1}, {raw2, 2}} {
		got, err := o.DecodeJournaled(tc.raw, tc.v)
		if err != nil {
			t.Fatalf("version %d: %v", tc.v, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("version %d decoded as %+v, want %+v", tc.v, got, c)
		}
	}
	if _, err := o.DecodeJournaled(raw1, 2); err == nil {
		t.Error("version 1 arguments decoded as version 2")
	}
	if _, err := o.DecodeJournaled(raw2, 1); err == nil {
		t.Error("version 2 arguments decoded as version 1")
	}
	if _, err := o.Decode(raw1); err == nil {
		t.Error("a version 1 request accepted from the network")
	}
}
