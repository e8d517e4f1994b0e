package embedded

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// BenchmarkCommitSegment commits segments touching every partition of a
// topic once, as a segment of round-robin produce does at 1,000 and 10,000
// partitions, from idempotent producers (one per 1,000 partitions, as
// producers of a large topic each write to many partitions), so every
// batch reads and writes its producer's sequence state. It reports the
// time of one commit.
func BenchmarkCommitSegment(b *testing.B) {
	for _, tc := range []struct {
		parts  int
		noSync bool
	}{{1000, false}, {10000, false}, {10000, true}} {
		parts := tc.parts
		b.Run(fmt.Sprintf("partitions=%d/fsync=%v", parts, !tc.noSync), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "meta.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Without fsync: the CPU work of a commit alone.
			s.db.NoSync = tc.noSync
			ctx := b.Context()
			topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: int32(parts)})
			if err != nil {
				b.Fatal(err)
			}
			producers := max(1, parts/1000)
			pids := make([]int64, producers)
			for i := range pids {
				if pids[i], _, err = s.InitProducerID(ctx, -1, 0); err != nil {
					b.Fatal(err)
				}
			}
			seq := make([]int32, parts)
			commit := func(n int) {
				c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", n), Size: int64(parts) * 100}
				for p := range parts {
					c.Batches = append(c.Batches, metastore.BatchCommit{
						TopicID: topic.ID, Partition: int32(p), ByteOffset: int64(p) * 100, ByteLength: 100,
						OffsetCount: 1, MaxTimestamp: int64(n), ProducerID: pids[p%producers], BaseSequence: seq[p],
					})
					seq[p]++
				}
				res, err := s.CommitSegment(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if res[0].Err != nil {
					b.Fatal(res[0].Err)
				}
			}
			for i := range 3 { // producer state exists, as at steady state
				commit(-1 - i)
			}
			before := s.db.Stats().TxStats
			b.ResetTimer()
			for i := range b.N {
				commit(i)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/commit")
			// Pages bbolt allocated per commit: its copy-on-write rewrites
			// every page a commit dirtied.
			after := s.db.Stats().TxStats
			b.ReportMetric(float64(after.GetPageAlloc()-before.GetPageAlloc())/4096/float64(b.N), "pages/commit")
		})
	}
}

// BenchmarkDecodeSequence decodes one producer's full sequence state in
// the binary layout and in the JSON one it replaced, in one run, so the
// two can be compared on a shared machine.
func BenchmarkDecodeSequence(b *testing.B) {
	st := &sequence.State{Epoch: 2, LastSeq: 99}
	for i := range sequence.RecentBatches {
		st.Recent = append(st.Recent, sequence.Batch{FirstSeq: int32(i * 20), LastSeq: int32(i*20 + 19), BaseOffset: int64(i) * 1000})
	}
	ts := int64(1_700_000_000_000)
	bin, err := encodeSequence(st, ts)
	if err != nil {
		b.Fatal(err)
	}
	js, err := json.Marshal(storedSequence{State: *st, LastTimestamp: &ts})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		v    []byte
	}{{"binary", bin}, {"json", js}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := decodeSequence(tc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
