package jobs_test

import (
	"testing"
	"time"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
)

// sized returns consecutive extents of the given byte sizes, one offset
// each, committed a second apart.
func sized(sizes ...int64) []metastore.Extent {
	es := make([]metastore.Extent, len(sizes))
	for i, n := range sizes {
		es[i] = metastore.Extent{BaseOffset: int64(i), EndOffset: int64(i + 1), ByteLength: n,
			CommittedAt: now.Add(time.Duration(i) * time.Second)}
	}
	return es
}

func TestPlanPartitionCompaction(t *testing.T) {
	policy := jobs.CompactionPolicy{Fanout: 4, MaxExtentBytes: 1000}
	for _, tc := range []struct {
		name   string
		sizes  []int64
		policy jobs.CompactionPolicy
		runs   [][2]int // [first, last] extent indexes
	}{
		{"too few to merge", []int64{10, 10, 10}, policy, nil},
		{"fanout reached", []int64{10, 10, 10, 10}, policy, [][2]int{{0, 3}}},
		{"longest run", []int64{10, 10, 10, 10, 10, 10}, policy, [][2]int{{0, 5}}},
		{"a large extent is not rewritten for small neighbours", []int64{400, 10, 10, 10}, policy, nil},
		{"tiers: small ones merge behind a large one", []int64{400, 10, 10, 10, 10}, policy, [][2]int{{1, 4}}},
		{"segment.bytes bounds a run", []int64{300, 300, 300, 300, 100, 100, 100, 100}, policy, [][2]int{{4, 7}}},
		{"at segment.bytes never again", []int64{1000, 1, 1, 1, 1}, policy, [][2]int{{1, 4}}},
		{"segment.ms bounds a run", []int64{1, 1, 1, 1, 1, 1, 1, 1},
			jobs.CompactionPolicy{Fanout: 4, MaxExtentBytes: 1000, MaxSpan: 3 * time.Second}, [][2]int{{0, 3}, {4, 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := sized(tc.sizes...)
			runs := jobs.PlanPartitionCompaction(7, es, tc.policy)
			if len(runs) != len(tc.runs) {
				t.Fatalf("got %d runs, want %d: %+v", len(runs), len(tc.runs), runs)
			}
			for i, r := range runs {
				first, last := r.Extents[0].BaseOffset, r.Extents[len(r.Extents)-1].BaseOffset
				if int(first) != tc.runs[i][0] || int(last) != tc.runs[i][1] || r.Partition != 7 {
					t.Errorf("run %d: extents %d..%d of partition %d, want %v", i, first, last, r.Partition, tc.runs[i])
				}
				var total, largest int64
				for _, e := range r.Extents {
					total += e.ByteLength
					largest = max(largest, e.ByteLength)
				}
				if total != r.Bytes || total < int64(tc.policy.Fanout)*largest || total > tc.policy.MaxExtentBytes {
					t.Errorf("run %d: %d bytes (said %d), largest %d: breaks the policy", i, total, r.Bytes, largest)
				}
			}
		})
	}
}

// TestCompactionAmplification replays a stream of equal flushes through
// the planner, merging as a pass would, and checks that no byte is
// rewritten more often than the policy promises.
func TestCompactionAmplification(t *testing.T) {
	const fanout, flush, limit = 4, 10, 10 * 4 * 4 * 4 * 4 // four tiers
	p := jobs.CompactionPolicy{Fanout: fanout, MaxExtentBytes: limit}
	var es []metastore.Extent
	var written, rewritten int64
	for i := range 2000 {
		es = append(es, metastore.Extent{BaseOffset: int64(i), EndOffset: int64(i + 1), ByteLength: flush})
		written += flush
		for _, r := range jobs.PlanPartitionCompaction(0, es, p) {
			rewritten += r.Bytes
			merged := metastore.Extent{BaseOffset: r.Extents[0].BaseOffset, EndOffset: r.Extents[len(r.Extents)-1].EndOffset, ByteLength: r.Bytes}
			var out []metastore.Extent
			for _, e := range es {
				switch {
				case e.BaseOffset == merged.BaseOffset:
					out = append(out, merged)
				case e.BaseOffset > merged.BaseOffset && e.EndOffset <= merged.EndOffset:
				default:
					out = append(out, e)
				}
			}
			es = out
		}
	}
	amp := float64(rewritten) / float64(written)
	t.Logf("%d flushes: %d extents left, each byte rewritten %.2f times on average", 2000, len(es), amp)
	if amp > 4 { // log_4(limit / flush) = 4 tiers
		t.Errorf("write amplification %.2f above the bound of 4", amp)
	}
	if len(es) > 2000*flush/limit+4*(fanout-1) {
		t.Errorf("%d extents left", len(es))
	}
}

func TestPackCompaction(t *testing.T) {
	run := func(p int32, n int64) jobs.CompactionRun { return jobs.CompactionRun{Partition: p, Bytes: n} }
	objs := jobs.PackCompaction([]jobs.CompactionRun{run(0, 40), run(1, 40), run(2, 40), run(0, 10), run(3, 500)}, 100)
	var shape [][]int32
	for _, o := range objs {
		var ps []int32
		for _, r := range o.Runs {
			ps = append(ps, r.Partition)
		}
		shape = append(shape, ps)
	}
	want := [][]int32{{0, 1}, {2, 0}, {3}}
	if len(shape) != len(want) {
		t.Fatalf("packed %v, want %v", shape, want)
	}
	for i := range want {
		if len(shape[i]) != len(want[i]) {
			t.Fatalf("packed %v, want %v", shape, want)
		}
		for j := range want[i] {
			if shape[i][j] != want[i][j] {
				t.Fatalf("packed %v, want %v", shape, want)
			}
		}
	}
}
