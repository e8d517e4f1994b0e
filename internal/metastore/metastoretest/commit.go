package metastoretest

import (
	"fmt"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func testCommit(t *testing.T, open func(t *testing.T) recordStore) {
	t.Run("ContiguousOffsets", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 3)
		b := createTopic(t, s, "b", 1)
		type part struct {
			id metastore.TopicID
			p  int32
		}
		hwm := map[part]int64{}
		// Each commit is a list of (partition, offset count).
		commits := [][]struct {
			part
			count int64
		}{
			{{part{a.ID, 0}, 3}, {part{a.ID, 1}, 1}, {part{b.ID, 0}, 7}},
			{{part{a.ID, 0}, 1}},
			{{part{a.ID, 2}, 5}, {part{a.ID, 0}, 2}, {part{a.ID, 2}, 1}, {part{b.ID, 0}, 1}},
			{{part{a.ID, 1}, 4}, {part{a.ID, 1}, 4}},
			{{part{b.ID, 0}, 100}, {part{a.ID, 0}, 1}},
		}
		for i, spec := range commits {
			var batches []metastore.BatchCommit
			for j, sb := range spec {
				batches = append(batches, batch(sb.id, sb.p, int64(j)*100, 50, sb.count))
			}
			results := commitOK(t, s, segment(batches...))
			for j, sb := range spec {
				if got, want := results[j].BaseOffset, hwm[sb.part]; got != want {
					t.Errorf("commit %d batch %d: base offset %d, want %d", i, j, got, want)
				}
				if results[j].LogStartOffset != 0 {
					t.Errorf("commit %d batch %d: log start offset %d, want 0", i, j, results[j].LogStartOffset)
				}
				hwm[sb.part] += sb.count
			}
		}
		for p, want := range hwm {
			if o := offsets(t, s, p.id, p.p); o != (metastore.PartitionOffsets{HighWatermark: want, LastStableOffset: want}) {
				t.Errorf("Offsets(%d) = %+v, want high watermark %d", p.p, o, want)
			}
		}
	})

	t.Run("UnknownPartitionsRejected", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 2)
		results := commit(t, s, segment(
			batch(topic.ID, 0, 0, 10, 3),
			batch(metastore.TopicID{1, 2, 3}, 0, 10, 10, 1),
			batch(topic.ID, 2, 20, 10, 1),
			batch(topic.ID, -1, 30, 10, 1),
			batch(topic.ID, 0, 40, 10, 2),
			batch(topic.ID, 1, 50, 10, 1),
		))
		want := []metastore.BatchResult{
			{BaseOffset: 0},
			{BaseOffset: -1, LogStartOffset: -1, Err: metastore.ErrUnknownTopicOrPartition},
			{BaseOffset: -1, LogStartOffset: -1, Err: metastore.ErrUnknownTopicOrPartition},
			{BaseOffset: -1, LogStartOffset: -1, Err: metastore.ErrUnknownTopicOrPartition},
			{BaseOffset: 3},
			{BaseOffset: 0},
		}
		checkResults(t, results, want)
		if o := offsets(t, s, topic.ID, 0); o.HighWatermark != 5 {
			t.Errorf("partition 0 high watermark %d, want 5", o.HighWatermark)
		}
		if o := offsets(t, s, topic.ID, 1); o.HighWatermark != 1 {
			t.Errorf("partition 1 high watermark %d, want 1", o.HighWatermark)
		}
	})

	t.Run("InvalidCommitChangesNothing", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 1)
		good := batch(topic.ID, 0, 0, 10, 1)
		cases := map[string]func(c *metastore.SegmentCommit){
			"zero offset count":     func(c *metastore.SegmentCommit) { c.Batches[1].OffsetCount = 0 },
			"negative offset count": func(c *metastore.SegmentCommit) { c.Batches[1].OffsetCount = -3 },
			"bytes past object end": func(c *metastore.SegmentCommit) { c.Size = 15 },
			"negative byte offset":  func(c *metastore.SegmentCommit) { c.Batches[1].ByteOffset = -1 },
			"empty object key":      func(c *metastore.SegmentCommit) { c.Object = "" },
		}
		for name, spoil := range cases {
			c := segment(good, batch(topic.ID, 0, 10, 10, 1))
			spoil(&c)
			if _, err := s.CommitSegment(t.Context(), c); err == nil {
				t.Errorf("%s: CommitSegment succeeded", name)
			}
		}
		if o := offsets(t, s, topic.ID, 0); o.HighWatermark != 0 {
			t.Errorf("high watermark %d after failed commits, want 0", o.HighWatermark)
		}
		if es := extents(t, s, topic.ID, 0, 0, 0); len(es) != 0 {
			t.Errorf("extents after failed commits: %+v", es)
		}
	})

	t.Run("EmptyCommit", func(t *testing.T) {
		s := open(t)
		commit(t, s, metastore.SegmentCommit{Object: "segments/empty"})
	})

	t.Run("ExtentShapes", func(t *testing.T) { testExtentShapes(t, open(t)) })
}

// checkResults compares results field by field, errors with errors.Is.
func checkResults(t *testing.T, got, want []metastore.BatchResult) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		wantErr(t, fmt.Sprintf("batch %d", i), g.Err, w.Err)
		g.Err, w.Err = nil, nil
		if g != w {
			t.Errorf("batch %d: result %+v, want %+v", i, got[i], want[i])
		}
	}
}

// testExtentShapes checks how commits turn into extents: one extent per run
// of accepted batches of a partition whose bytes follow each other.
func testExtentShapes(t *testing.T, s recordStore) {
	const pid = 7
	idem := func(b metastore.BatchCommit, seq int32) metastore.BatchCommit {
		b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, 0, seq
		return b
	}
	ts := func(b metastore.BatchCommit, ts int64) metastore.BatchCommit {
		b.MaxTimestamp = ts
		return b
	}
	// want is one extent: partition, offsets [base, end), bytes [at, at+n),
	// index of the commit's object, max timestamp (0: batch's default).
	type want struct {
		p                int32
		base, end, at, n int64
		object           int
		maxTS            int64
	}
	cases := []struct {
		name    string
		commits func(id metastore.TopicID) [][]metastore.BatchCommit
		want    []want
	}{
		{
			name: "adjacent batches merge",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{
					ts(batch(id, 0, 0, 100, 3), 10), ts(batch(id, 0, 100, 50, 2), 30), ts(batch(id, 0, 150, 50, 1), 20),
				}}
			},
			want: []want{{p: 0, base: 0, end: 6, at: 0, n: 200, maxTS: 30}},
		},
		{
			name: "gap in bytes splits",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{batch(id, 0, 0, 100, 3), batch(id, 0, 120, 30, 2)}}
			},
			want: []want{{p: 0, base: 0, end: 3, at: 0, n: 100}, {p: 0, base: 3, end: 5, at: 120, n: 30}},
		},
		{
			name: "alternating partitions split",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{
					batch(id, 0, 0, 10, 1), batch(id, 1, 10, 10, 1), batch(id, 0, 20, 10, 1), batch(id, 1, 30, 10, 1),
				}}
			},
			want: []want{
				{p: 0, base: 0, end: 1, at: 0, n: 10}, {p: 0, base: 1, end: 2, at: 20, n: 10},
				{p: 1, base: 0, end: 1, at: 10, n: 10}, {p: 1, base: 1, end: 2, at: 30, n: 10},
			},
		},
		{
			// Merging needs contiguous offsets and bytes within the
			// partition; other partitions' batches in between do not matter.
			name: "batches of other partitions in between do not split",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{batch(id, 0, 0, 10, 1), batch(id, 1, 50, 10, 1), batch(id, 0, 10, 10, 2)}}
			},
			want: []want{{p: 0, base: 0, end: 3, at: 0, n: 20}, {p: 1, base: 0, end: 1, at: 50, n: 10}},
		},
		{
			name: "rejected batch splits",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{
					idem(batch(id, 0, 0, 10, 1), 0), idem(batch(id, 0, 10, 10, 1), 5), batch(id, 0, 20, 10, 1),
				}}
			},
			want: []want{{p: 0, base: 0, end: 1, at: 0, n: 10}, {p: 0, base: 1, end: 2, at: 20, n: 10}},
		},
		{
			// The third batch follows the first in bytes and offsets, but
			// the rejected one between them in the commit ends the run.
			name: "rejected batch splits even when bytes adjoin",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{
					idem(batch(id, 0, 0, 10, 1), 0), idem(batch(id, 0, 20, 10, 1), 5), batch(id, 0, 10, 10, 1),
				}}
			},
			want: []want{{p: 0, base: 0, end: 1, at: 0, n: 10}, {p: 0, base: 1, end: 2, at: 10, n: 10}},
		},
		{
			name: "duplicate batch splits",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{
					idem(batch(id, 0, 0, 10, 2), 0), idem(batch(id, 0, 10, 10, 2), 0), idem(batch(id, 0, 20, 10, 1), 2),
				}}
			},
			want: []want{{p: 0, base: 0, end: 2, at: 0, n: 10}, {p: 0, base: 2, end: 3, at: 20, n: 10}},
		},
		{
			name: "commits never merge",
			commits: func(id metastore.TopicID) [][]metastore.BatchCommit {
				return [][]metastore.BatchCommit{{batch(id, 0, 0, 10, 1)}, {batch(id, 0, 10, 10, 1)}}
			},
			want: []want{{p: 0, base: 0, end: 1, at: 0, n: 10}, {p: 0, base: 1, end: 2, at: 10, n: 10, object: 1}},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := createTopic(t, s, fmt.Sprintf("shapes-%d", i), 2)
			var commits []metastore.SegmentCommit
			for _, batches := range tc.commits(topic.ID) {
				c := segment(batches...)
				commit(t, s, c)
				commits = append(commits, c)
			}
			var got []metastore.Extent
			for p := range int32(2) {
				got = append(got, extents(t, s, topic.ID, p, 0, 0)...)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d extents %+v, want %d", len(got), got, len(tc.want))
			}
			for j, w := range tc.want {
				c := commits[w.object]
				maxTS := w.maxTS
				if maxTS == 0 {
					maxTS = c.Batches[0].MaxTimestamp
				}
				e := got[j]
				if e.TopicID != topic.ID || e.Partition != w.p || e.BaseOffset != w.base || e.EndOffset != w.end ||
					e.ByteOffset != w.at || e.ByteLength != w.n || e.Object != c.Object || e.ObjectSize != c.Size ||
					e.MaxTimestamp != maxTS {
					t.Errorf("extent %d: %+v, want %+v of object %s (%d bytes)", j, e, w, c.Object, c.Size)
				}
				recent(t, "CommittedAt", e.CommittedAt)
			}
		})
	}
}
