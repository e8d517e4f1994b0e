package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// BenchmarkCommitSegment commits segments of three shapes (on the file,
// and two of them on a store in memory as internal/control keeps one), from
// idempotent producers, so every batch reads and writes its producer's
// sequence state, and reports the time and the pages bbolt writes per
// commit:
//
//   - touched=all: every partition of a topic of 1,000 or 10,000, once,
//     as a segment of round-robin produce at that many partitions does,
//     one producer per 1,000 partitions;
//   - partitions=10000/touched=1500: 1,500 random partitions of 10,000
//     per commit, one producer, the shape of floe bench's partitions-10k
//     (a 4 MiB/s segment of ~1,500 records);
//   - partitions=1000/touched=10: 10 random partitions of 1,000 per
//     commit, from 50 producers in turn, the shape of floe bench
//     metastore's default load (50 agents, 10 partitions per commit);
//   - partitions=12/touched=all: the 12 partitions of floe bench's
//     default preset, one producer, the reference for partitions-10k;
//   - batch=10: the metastore load again in memory, ten commits a
//     transaction (Store.Batch) as internal/control applies them, after
//     50,000 commits (its extents bucket as large as in a run of floe
//     bench metastore against floe control).
//
// Each shape first commits enough to reach its steady state (every
// producer has state; the extent log is as long as it gets), but the
// from=empty one, which measures partitions-10k's shape from an empty
// store (run it with -test.benchtime 120x, about floe bench's 25
// seconds of commits: the producer's state and the log grow meanwhile,
// and large values move in the file).
func BenchmarkCommitSegment(b *testing.B) {
	for _, tc := range []struct {
		parts, touched, producers, warm int
		noSync, memory                  bool
		batch                           int
	}{
		{1000, 1000, 1, 3, false, false, 0}, {10000, 10000, 10, 3, false, false, 0}, {10000, 10000, 10, 3, true, false, 0},
		{10000, 1500, 1, 60, false, false, 0}, {10000, 1500, 1, 60, true, false, 0}, {10000, 1500, 1, 0, false, false, 0},
		{1000, 10, 50, 500, true, false, 0}, {1000, 10, 50, 500, true, true, 0},
		{12, 12, 1, 200, false, false, 0}, {12, 12, 1, 200, true, false, 0},
		{10000, 1500, 1, 60, true, true, 0},
		{1000, 10, 50, 50000, true, true, 10},
	} {
		touched := "all"
		if tc.touched < tc.parts {
			touched = fmt.Sprint(tc.touched)
		}
		name := fmt.Sprintf("partitions=%d/touched=%s/fsync=%v", tc.parts, touched, !tc.noSync)
		if tc.memory {
			name = fmt.Sprintf("partitions=%d/touched=%s/store=memory", tc.parts, touched)
		}
		if tc.warm == 0 {
			name += "/from=empty"
		}
		if tc.batch > 0 {
			name += fmt.Sprintf("/batch=%d", tc.batch)
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "meta.db"), Options{Memory: tc.memory})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			bdb, _ := s.db.(*kv.Bolt) // nil in memory
			if bdb != nil {
				// Without fsync: the CPU work of a commit alone.
				bdb.DB.NoSync = tc.noSync
			}
			ctx := b.Context()
			topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: int32(tc.parts)})
			if err != nil {
				b.Fatal(err)
			}
			pids := make([]int64, tc.producers)
			for i := range pids {
				if pids[i], _, err = s.InitProducerID(ctx, -1, 0); err != nil {
					b.Fatal(err)
				}
			}
			seq := map[[2]int64]int32{}
			rng := rand.New(rand.NewPCG(1, 2))
			commit := func(ctx context.Context, n int) {
				c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", n), Size: int64(tc.touched) * 100}
				parts := make([]int, tc.touched)
				if tc.touched == tc.parts {
					for p := range parts {
						parts[p] = p
					}
				} else {
					parts = rng.Perm(tc.parts)[:tc.touched]
					slices.Sort(parts)
				}
				for i, p := range parts {
					pid := pids[p%tc.producers]
					if tc.touched < tc.parts && tc.producers > 1 {
						pid = pids[(n%tc.producers+tc.producers)%tc.producers] // one agent's commit
					}
					k := [2]int64{int64(p), pid}
					c.Batches = append(c.Batches, metastore.BatchCommit{
						TopicID: topic.ID, Partition: int32(p), ByteOffset: int64(i) * 100, ByteLength: 100,
						OffsetCount: 1, MaxTimestamp: int64(n), ProducerID: pid, BaseSequence: seq[k],
					})
					seq[k]++
				}
				res, err := s.CommitSegment(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if res[0].Err != nil {
					b.Fatal(res[0].Err)
				}
			}
			// commits runs n commits from first on, in batches of
			// tc.batch if set.
			commits := func(first, n int) {
				if tc.batch == 0 {
					for i := range n {
						commit(ctx, first+i)
					}
					return
				}
				for i := 0; i < n; i += tc.batch {
					err := s.Batch(func(ctx context.Context) error {
						for j := i; j < min(i+tc.batch, n); j++ {
							commit(ctx, first+j)
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			commits(-tc.warm, tc.warm) // steady state
			var before, after bolt.TxStats
			if bdb != nil {
				before = bdb.DB.Stats().TxStats
			}
			cpuBefore := processCPU()
			b.ResetTimer()
			commits(0, b.N)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/commit")
			// The process's CPU time (user and system) per commit: on a
			// shared machine, less sensitive to other processes than the
			// elapsed time.
			b.ReportMetric(float64((processCPU()-cpuBefore).Microseconds())/1000/float64(b.N), "cpu-ms/commit")
			// Pages bbolt allocated per commit: its copy-on-write rewrites
			// every page a commit dirtied.
			if bdb == nil {
				return
			}
			after = bdb.DB.Stats().TxStats
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

// BenchmarkTailRead reads what a fetch at the live edge reads after a
// commit (the partition's offsets, then its extents from the last
// committed offset) for random partitions of a topic of 10,000 that
// commits of 1,500 random partitions have written to, as in
// BenchmarkCommitSegment's partitions-10k shape, at steady state (the
// extent log as long as it gets).
func BenchmarkTailRead(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "meta.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.db.(*kv.Bolt).DB.NoSync = true
	ctx := b.Context()
	const parts, touched = 10000, 1500
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: parts})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 60 {
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", n), Size: touched * 100}
		ps := rng.Perm(parts)[:touched]
		slices.Sort(ps)
		for i, p := range ps {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: int32(p),
				ByteOffset: int64(i) * 100, ByteLength: 100, OffsetCount: 1, MaxTimestamp: int64(n), ProducerID: -1})
		}
		if _, err := s.CommitSegment(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		p := rng.Int32N(parts)
		o, err := s.Offsets(ctx, topic.ID, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Extents(ctx, topic.ID, p, max(o.HighWatermark-1, 0), 64); err != nil {
			b.Fatal(err)
		}
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
