package protocol

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharepart"
)

// TestUncommitted: a read_committed share group skips markers and the
// batches of aborted transactions, and only those: another producer's
// batches and the same producer's batches of a later transaction are
// delivered.
func TestUncommitted(t *testing.T) {
	at := func(b []byte, base int64) []byte {
		binary.BigEndian.PutUint64(b, uint64(base)) // outside the CRC
		return b
	}
	data := func(base, producer int64, n int, txn bool) []byte {
		recs := make([]recordbatch.Record, n)
		for i := range recs {
			recs[i] = recordbatch.Record{Value: []byte("v")}
		}
		return at(recordbatch.Build(recordbatch.BuildOptions{ProducerID: producer, Transactional: txn}, recs...), base)
	}
	marker := func(base, producer int64, commit bool) []byte {
		return at(recordbatch.BuildMarker(recordbatch.Marker{ProducerID: producer, Commit: commit}), base)
	}
	var log []byte
	for _, b := range [][]byte{
		data(0, 1, 2, false),  // 0-1 plain
		data(2, 7, 3, true),   // 2-4 producer 7, aborted below
		data(5, 8, 2, true),   // 5-6 producer 8, committed
		data(7, 7, 1, true),   // 7 producer 7, aborted
		marker(8, 7, false),   // 8 abort marker of 7
		marker(9, 8, true),    // 9 commit marker of 8
		data(10, 7, 2, true),  // 10-11 producer 7's next transaction, committed
		marker(12, 7, true),   // 12
		data(13, 9, 1, false), // 13 plain
	} {
		log = append(log, b...)
	}
	aborted := []metastore.AbortedTxn{{ProducerID: 7, FirstOffset: 2, LastOffset: 8}}
	got := uncommitted(log, aborted)
	want := []sharepart.Span{{First: 2, Last: 4}, {First: 7, Last: 9}, {First: 12, Last: 12}}
	if !slices.Equal(got, want) {
		t.Fatalf("skip %v, want %v", got, want)
	}
	// A truncated trailing batch is ignored, as batchesEnd does.
	if got := uncommitted(log[:len(log)-5], aborted); !slices.Equal(got, want) {
		t.Fatalf("truncated: skip %v, want %v", got, want)
	}
	if got := uncommitted(nil, aborted); got != nil {
		t.Fatalf("no records: skip %v", got)
	}
}

// TestBatchBounds: each whole batch with its offsets and where it ends;
// a truncated trailing batch is left out.
func TestBatchBounds(t *testing.T) {
	build := func(base int64, n int) []byte {
		recs := make([]recordbatch.Record, n)
		for i := range recs {
			recs[i] = recordbatch.Record{Value: []byte("v")}
		}
		b := recordbatch.Build(recordbatch.BuildOptions{}, recs...)
		binary.BigEndian.PutUint64(b, uint64(base))
		return b
	}
	a, b := build(10, 3), build(13, 5)
	log := append(slices.Clone(a), b...)
	want := []sharecoord.Batch{{First: 10, Last: 12, End: len(a)}, {First: 13, Last: 17, End: len(log)}}
	if got := batchBounds(log); !slices.Equal(got, want) {
		t.Fatalf("bounds %+v, want %+v", got, want)
	}
	if got := batchBounds(log[:len(log)-1]); !slices.Equal(got, want[:1]) {
		t.Fatalf("truncated: bounds %+v, want %+v", got, want[:1])
	}
	if got := batchBounds(nil); got != nil {
		t.Fatalf("no records: %+v", got)
	}
}
