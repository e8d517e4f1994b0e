package jobs

import (
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
)

// Segment compaction merges runs of consecutive small extents of a
// partition into one extent of a new object, and packs the runs of many
// partitions of a topic into that object, one index entry per partition.
// The policy is size-tiered with a ratio (docs/jobs.md, "Segment
// compaction"): a run is merged only when the merged extent is at least
// Fanout times larger than the largest extent in it, so every rewrite of
// a byte puts it in an extent Fanout times larger than before, and a byte
// is rewritten at most log_Fanout(segment.bytes / its first extent size)
// times.

// Defaults of the compaction policy.
const (
	// DefaultCompactionFanout is the ratio of a merged extent's size to
	// the largest extent merged into it.
	DefaultCompactionFanout = 8
	// DefaultCompactionObjectBytes bounds a compacted object (all its
	// partitions together); a single run larger than it gets an object
	// of its own.
	DefaultCompactionObjectBytes = 256 << 20
)

// CompactionPolicy is how a topic's extents are merged.
type CompactionPolicy struct {
	// Fanout: a run is merged only if its size is at least Fanout times
	// its largest extent (>= 2).
	Fanout int
	// MaxExtentBytes is segment.bytes: no merged extent grows beyond it,
	// and extents of that size or more are never merged again.
	MaxExtentBytes int64
	// MaxSpan is segment.ms: a merged extent never spans more than this
	// between its extents' commit times, so retention.ms still drops data
	// in steps no coarser than segment.ms (Kafka rolls a segment after
	// segment.ms for the same reason). <= 0: unlimited.
	MaxSpan time.Duration
}

// TopicCompaction reads a topic's compaction policy from its explicit
// configs (segment.bytes, segment.ms), with Kafka's defaults for the rest.
func TopicCompaction(configs map[string]string, fanout int) CompactionPolicy {
	if fanout < 2 {
		fanout = DefaultCompactionFanout
	}
	return CompactionPolicy{
		Fanout:         fanout,
		MaxExtentBytes: config.TopicInt(configs, "segment.bytes"),
		MaxSpan:        time.Duration(config.TopicInt(configs, "segment.ms")) * time.Millisecond,
	}
}

// CompactionRun is a run of consecutive extents of one partition to be
// merged into one new extent.
type CompactionRun struct {
	Partition int32
	Extents   []metastore.Extent
	Bytes     int64
}

// CompactionObject is one object to write: the runs it holds, each
// becoming one partition entry and one new extent.
type CompactionObject struct {
	Runs  []CompactionRun
	Bytes int64 // the runs' batch bytes (the object adds its index)
}

// PlanPartitionCompaction chooses the runs of one partition's extents
// (in offset order, consecutive) to merge. Scanning from the oldest, it
// takes at each extent the longest run that fits MaxExtentBytes and
// MaxSpan and whose size is at least Fanout times its largest extent; if
// there is none it moves on by one extent. Runs never overlap.
func PlanPartitionCompaction(partition int32, extents []metastore.Extent, p CompactionPolicy) []CompactionRun {
	fanout := int64(max(p.Fanout, 2))
	var runs []CompactionRun
	for i := 0; i < len(extents); {
		var total, largest int64
		best := -1
		var bestBytes int64
		first := extents[i].CommittedAt
		for j := i; j < len(extents); j++ {
			e := extents[j]
			if j > i && e.BaseOffset != extents[j-1].EndOffset {
				break // not consecutive: never bridge a hole
			}
			if p.MaxExtentBytes > 0 && total+e.ByteLength > p.MaxExtentBytes {
				break
			}
			if p.MaxSpan > 0 && absDuration(e.CommittedAt.Sub(first)) > p.MaxSpan {
				break
			}
			total += e.ByteLength
			largest = max(largest, e.ByteLength)
			if j > i && total >= fanout*largest {
				best, bestBytes = j, total
			}
		}
		if best < 0 {
			i++
			continue
		}
		runs = append(runs, CompactionRun{Partition: partition, Extents: extents[i : best+1], Bytes: bestBytes})
		i = best + 1
	}
	return runs
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// PackCompaction packs runs (of one topic, any partitions, at most one
// run per partition per object since a replacement names a partition
// once) into objects of at most maxObjectBytes, in the order given. A
// run larger than maxObjectBytes gets an object of its own.
func PackCompaction(runs []CompactionRun, maxObjectBytes int64) []CompactionObject {
	if maxObjectBytes <= 0 {
		maxObjectBytes = DefaultCompactionObjectBytes
	}
	var objs []CompactionObject
	var cur CompactionObject
	inCur := map[int32]bool{}
	flush := func() {
		if len(cur.Runs) > 0 {
			objs = append(objs, cur)
		}
		cur = CompactionObject{}
		inCur = map[int32]bool{}
	}
	for _, r := range runs {
		if len(cur.Runs) > 0 && (cur.Bytes+r.Bytes > maxObjectBytes || inCur[r.Partition]) {
			flush()
		}
		cur.Runs = append(cur.Runs, r)
		cur.Bytes += r.Bytes
		inCur[r.Partition] = true
	}
	flush()
	return objs
}
