package recordbatch_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/floe-io/floe/internal/recordbatch"
)

// seedBatches are valid batches of every codec and framing, for the fuzz
// corpora.
func seedBatches() [][]byte {
	recs := []recordbatch.Record{
		{Timestamp: 10, Key: []byte("k1"), Value: []byte("v1")},
		{Timestamp: 5, Key: nil, Value: []byte("v2"), Headers: []recordbatch.RecordHeader{{Key: "h", Value: []byte("x")}}},
		{Timestamp: 20, Key: []byte{}, Value: nil},
	}
	var out [][]byte
	for _, c := range codecs {
		out = append(out, recordbatch.Build(recordbatch.BuildOptions{
			BaseOffset: 42, Codec: c.codec, SnappyXerial: c.xerial, ProducerID: 7,
		}, recs...))
	}
	out = append(out, recordbatch.Build(recordbatch.BuildOptions{LogAppendTime: true, Control: true}, recs[0]))
	return out
}

func FuzzSplit(f *testing.F) {
	seeds := seedBatches()
	for _, b := range seeds {
		f.Add(b)
	}
	f.Add(bytes.Join(seeds, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		batches, err := recordbatch.Split(data)
		if err != nil {
			return
		}
		if len(batches) == 0 {
			t.Fatal("Split accepted data but returned no batches")
		}
		off := 0
		for i, b := range batches {
			if len(b) < recordbatch.HeaderSize {
				t.Fatalf("batch %d has %d bytes", i, len(b))
			}
			if &b[0] != &data[off] {
				t.Fatalf("batch %d is not a sub-slice at byte %d", i, off)
			}
			h, err := recordbatch.ParseHeader(b)
			if err != nil {
				t.Fatalf("batch %d: Split accepted it but ParseHeader says %v", i, err)
			}
			if h.Size() != len(b) {
				t.Fatalf("batch %d: header size %d, slice %d", i, h.Size(), len(b))
			}
			off += len(b)
		}
		if off != len(data) {
			t.Fatalf("batches cover %d of %d bytes", off, len(data))
		}
	})
}

func FuzzValidate(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValidate(t, b)
		// Mutations rarely keep the CRC right; also try the input with its
		// CRC repaired so the checks behind it get explored.
		if len(b) >= recordbatch.HeaderSize {
			checkValidate(t, reseal(bytes.Clone(b)))
		}
	})
}

func checkValidate(t *testing.T, b []byte) {
	h, err := recordbatch.Validate(b)
	if err != nil {
		return
	}
	ph, err := recordbatch.ParseHeader(b)
	if err != nil {
		t.Fatalf("Validate accepted, ParseHeader says %v", err)
	}
	if ph != h {
		t.Fatalf("Validate header %+v, ParseHeader %+v", h, ph)
	}
	split, err := recordbatch.Split(b)
	if err != nil || len(split) != 1 || len(split[0]) != len(b) {
		t.Fatalf("Split of a valid batch: %d batches, %v", len(split), err)
	}
	// Patching the fields outside the CRC keeps the batch valid.
	c := bytes.Clone(b)
	recordbatch.SetBaseOffset(c, h.BaseOffset+1)
	recordbatch.SetPartitionLeaderEpoch(c, h.PartitionLeaderEpoch+1)
	if _, err := recordbatch.Validate(c); err != nil {
		t.Fatalf("patched batch: %v", err)
	}
	_, _ = recordbatch.Records(b)
}

func FuzzRecords(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b, int64(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, ts int64) {
		recs, err := recordbatch.Records(b)
		off, found, ferr := recordbatch.FirstTimestampAtOrAfter(b, ts)
		maxOff, maxTS, merr := recordbatch.MaxTimestampOffset(b)
		if err != nil {
			if ferr == nil {
				t.Fatalf("Records failed (%v) but FirstTimestampAtOrAfter did not", err)
			}
			return
		}
		h, _ := recordbatch.ParseHeader(b)
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		if ferr != nil {
			t.Fatalf("Records ok, FirstTimestampAtOrAfter: %v", ferr)
		}
		wantFound := false
		var wantOff int64
		for _, r := range recs {
			if r.Timestamp >= ts {
				wantOff, wantFound = r.Offset, true
				break
			}
		}
		if found != wantFound || off != wantOff {
			t.Fatalf("FirstTimestampAtOrAfter = %d, %v; want %d, %v", off, found, wantOff, wantFound)
		}
		if len(recs) == 0 {
			if merr == nil {
				t.Fatal("MaxTimestampOffset of an empty batch succeeded")
			}
			return
		}
		if merr != nil {
			t.Fatalf("MaxTimestampOffset: %v", merr)
		}
		wantMax := recs[0]
		for _, r := range recs[1:] {
			if r.Timestamp > wantMax.Timestamp {
				wantMax = r
			}
		}
		if maxOff != wantMax.Offset || maxTS != wantMax.Timestamp {
			t.Fatalf("MaxTimestampOffset = %d, %d; want %d, %d", maxOff, maxTS, wantMax.Offset, wantMax.Timestamp)
		}

		// Re-encoding what was decoded gives the same keys, values and
		// headers back.
		again, err := recordbatch.Records(recordbatch.Build(recordbatch.BuildOptions{}, recs...))
		if err != nil {
			t.Fatalf("rebuilt batch: %v", err)
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
				!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) ||
				!reflect.DeepEqual(normHeaders(a.Headers), normHeaders(b.Headers)) {
				t.Fatalf("record %d changed after rebuilding:\n%+v\n%+v", i, a, b)
			}
		}
	})
}

// normHeaders makes nil and empty header lists compare equal while keeping
// null and empty values apart.
func normHeaders(hs []recordbatch.RecordHeader) []string {
	out := []string{}
	for _, h := range hs {
		v := "null"
		if h.Value != nil {
			v = "=" + string(h.Value)
		}
		out = append(out, h.Key+v)
	}
	return out
}
