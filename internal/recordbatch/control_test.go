package recordbatch_test

import (
	"hash/crc32"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/recordbatch"
)

// TestMarkerParsesAsControlRecord checks BuildMarker's batches against
// franz-go's own decoding, which is what clients run: the batch header,
// its CRC, and one control record whose key and value are Kafka's
// ControlRecordKey and EndTxnMarker.
func TestMarkerParsesAsControlRecord(t *testing.T) {
	for _, m := range []recordbatch.Marker{
		{ProducerID: 1000, ProducerEpoch: 3, Commit: true, Timestamp: 1_767_225_600_000},
		{ProducerID: 0, ProducerEpoch: 0, Commit: false, Timestamp: 1},
		{ProducerID: math.MaxInt64, ProducerEpoch: math.MaxInt16, Commit: false, CoordinatorEpoch: 7, Timestamp: 42},
	} {
		b := recordbatch.BuildMarker(m)
		if _, err := recordbatch.Validate(b); err != nil {
			t.Fatalf("%+v: Validate: %v", m, err)
		}
		h, err := recordbatch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.IsControl() || !h.IsTransactional() || h.ProducerID != m.ProducerID || h.ProducerEpoch != m.ProducerEpoch ||
			h.BaseSequence != -1 || h.LastOffsetDelta != 0 || h.NumRecords != 1 || h.MaxTimestamp != m.Timestamp {
			t.Fatalf("%+v: header %+v", m, h)
		}

		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b); err != nil {
			t.Fatalf("%+v: kmsg: %v", m, err)
		}
		if got := int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))); got != batch.CRC {
			t.Fatalf("%+v: crc %x, batch says %x", m, got, batch.CRC)
		}
		if batch.Attributes&0x20 == 0 || batch.Attributes&0x10 == 0 || batch.ProducerID != m.ProducerID ||
			batch.ProducerEpoch != m.ProducerEpoch || batch.FirstSequence != -1 || batch.NumRecords != 1 {
			t.Fatalf("%+v: kmsg batch %+v", m, batch)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(batch.Records); err != nil {
			t.Fatalf("%+v: record: %v", m, err)
		}
		var key kmsg.ControlRecordKey
		if err := key.ReadFrom(rec.Key); err != nil {
			t.Fatal(err)
		}
		want := kmsg.ControlRecordKeyTypeAbort
		if m.Commit {
			want = kmsg.ControlRecordKeyTypeCommit
		}
		if key.Version != 0 || key.Type != want {
			t.Fatalf("%+v: control key %+v", m, key)
		}
		var marker kmsg.EndTxnMarker
		if err := marker.ReadFrom(rec.Value); err != nil {
			t.Fatal(err)
		}
		if marker.Version != 0 || marker.CoordinatorEpoch != m.CoordinatorEpoch {
			t.Fatalf("%+v: marker %+v", m, marker)
		}
		if typ, ok := recordbatch.ParseControlKey(rec.Key); !ok || int16(typ) != int16(want) {
			t.Fatalf("ParseControlKey = %v, %v", typ, ok)
		}
		recs, err := recordbatch.Records(b)
		if err != nil || len(recs) != 1 || recs[0].Timestamp != m.Timestamp {
			t.Fatalf("Records = %+v, %v", recs, err)
		}
	}
}
