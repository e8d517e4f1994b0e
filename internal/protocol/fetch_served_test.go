package protocol

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// v2Batch encodes a record batch of n records (attrs 0x20: control).
func v2Batch(base int64, n int, attrs int16) []byte {
	b := kmsg.RecordBatch{FirstOffset: base, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(n - 1), NumRecords: int32(n), ProducerID: -1, FirstSequence: -1}
	b.Records = make([]byte, n) // opaque to the counter
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	return b.AppendTo(nil)
}

func TestBatchRecords(t *testing.T) {
	data := append(v2Batch(0, 3, 0), v2Batch(3, 5, 0)...)
	control := v2Batch(8, 1, 0x20)
	old := v2Batch(9, 4, 0)
	old[16] = 1 // magic 1: not counted
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"empty", nil, 0},
		{"two batches", data, 8},
		{"control batch skipped", append(append([]byte{}, data...), control...), 8},
		{"old magic skipped", append(append([]byte{}, old...), data...), 8},
		{"partial last batch", append(append([]byte{}, data...), v2Batch(9, 7, 0)[:40]...), 8},
		{"short garbage", []byte{1, 2, 3}, 0},
		{"negative length", append(make([]byte, 8), 0xff, 0xff, 0xff, 0xff), 0},
		{"huge length", append(make([]byte, 8), 0x7f, 0xff, 0xff, 0xff), 0},
	} {
		if got := batchRecords(tc.b); got != tc.want {
			t.Errorf("%s: %d records, want %d", tc.name, got, tc.want)
		}
	}
}

// TestFetchServedBound: topics past the limit are counted as one
// series, and forgetting a deleted topic makes room.
func TestFetchServedBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewFetchServed(reg, 2)
	m.Add("a", 1, 10)
	m.Add("b", 2, 20)
	m.Add("c", 3, 30)
	m.Add("d", 4, 40)
	m.Add("a", 1, 10)
	m.Add("", 9, 90) // unknown topic: not counted
	want := map[string]float64{"floe_fetch_records_total{a}": 2, "floe_fetch_records_total{b}": 2, "floe_fetch_records_total{~other}": 7,
		"floe_fetch_bytes_total{a}": 20, "floe_fetch_bytes_total{b}": 20, "floe_fetch_bytes_total{~other}": 70}
	if got := servedSeries(t, reg); !maps.Equal(got, want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	m.Forget("a")
	m.Add("e", 5, 50)
	want = map[string]float64{"floe_fetch_records_total{e}": 5, "floe_fetch_records_total{b}": 2, "floe_fetch_records_total{~other}": 7,
		"floe_fetch_bytes_total{e}": 50, "floe_fetch_bytes_total{b}": 20, "floe_fetch_bytes_total{~other}": 70}
	if got := servedSeries(t, reg); !maps.Equal(got, want) {
		t.Fatalf("after forgetting a: series %v, want %v", got, want)
	}
}

func servedSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()+"{"+m.GetLabel()[0].GetValue()+"}"] = m.GetCounter().GetValue()
		}
	}
	return out
}
