package embedded

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// BenchmarkDeleteTopic deletes a topic of 1,000 partitions holding
// 200,000 extents (20,000 commits of ten partitions, an object each)
// from a store in memory, as internal/control keeps one, beside a topic
// of the same size that stays. It reports the time of the delete alone:
// a vcluster's applier holds every other command meanwhile.
func BenchmarkDeleteTopic(b *testing.B) {
	const parts, perCommit, commits = 1000, 10, 20000
	s, err := Open(filepath.Join(b.TempDir(), "meta.db"), Options{Memory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	fill := func(name string) {
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: parts})
		if err != nil {
			b.Fatal(err)
		}
		for n := range commits {
			c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%s/%d", name, n), Size: perCommit * 100}
			for i := range perCommit {
				p := (n*perCommit + i) % parts
				c.Batches = append(c.Batches, metastore.BatchCommit{
					TopicID: topic.ID, Partition: int32(p), ByteOffset: int64(i) * 100, ByteLength: 100,
					OffsetCount: 1, MaxTimestamp: int64(n), ProducerID: -1,
				})
			}
			if _, err := s.CommitSegment(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill("stays")
	for b.Loop() {
		b.StopTimer()
		fill("goes")
		b.StartTimer()
		if _, err := s.DeleteTopic(ctx, "goes"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/delete")
}
