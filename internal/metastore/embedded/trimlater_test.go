package embedded

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// TestTrimLater checks the two bounds of a store on file that trims its
// extent log after the commits (trimlater.go): with its goroutine
// stopped, the commits alone keep the log within twice the limits and
// grow it past the limits; with the goroutine running, the log comes back
// by itself, after every commit, to within the limits and the round past
// them at which a commit wakes the goroutine (a commit that leaves the
// log inside that round wakes nothing, so the log may stay there). Every
// extent reads the same as on a store whose commits trim the log
// themselves.
func TestTrimLater(t *testing.T) {
	ctx := t.Context()
	l := foldLimits{records: 4, extents: 1 << 20}
	open := func(later bool) *Store {
		s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if s.later == nil {
			t.Fatal("a store on file does not trim later")
		}
		if later {
			s.fold = l
		} else {
			s.setFold(l)
		}
		return s
	}
	length := func(s *Store) (records uint64) {
		t.Helper()
		err := s.db.View(func(tx kv.Tx) error {
			var err error
			records, _, err = logLength(tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return records
	}
	const parts = 5
	inline, stopped, running := open(false), open(true), open(true)
	stopped.stopLaterTrimmer() // the commits still leave the trim to it
	stores := []*Store{inline, stopped, running}
	topics := make([]metastore.Topic, len(stores))
	for i, s := range stores {
		tp, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: parts})
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
	}
	// Where a commit wakes the goroutine: past the limits and a round.
	wakeAt := laterLimitsOf(l).wakeAt
	settled := uint64(wakeAt.records + wakeAt.roundRecords)
	most := uint64(0)
	for n := range 60 {
		for i, s := range stores {
			c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%04d", n), Size: 300}
			for p := range int32(1 + n%parts) {
				c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topics[i].ID, Partition: p, ByteOffset: int64(p) * 10, ByteLength: 10, OffsetCount: 2, ProducerID: -1})
			}
			if _, err := s.CommitSegment(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if got := length(inline); got > uint64(l.records) {
			t.Fatalf("commit %d: the store trimming in its commits holds %d records, limit %d", n, got, l.records)
		}
		got := length(stopped)
		if got > 2*uint64(l.records) {
			t.Fatalf("commit %d: with the goroutine stopped the log holds %d records, past the backstop %d", n, got, 2*l.records)
		}
		most = max(most, got)
		deadline := time.Now().Add(10 * time.Second)
		for length(running) > settled {
			if time.Now().After(deadline) {
				t.Fatalf("commit %d: the goroutine left %d records in the log after 10 s, limit %d and a round of %d", n, length(running), l.records, wakeAt.roundRecords)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if most <= settled {
		t.Fatalf("with the goroutine stopped the log held at most %d records: the commits trimmed it themselves", most)
	}
	for p := range int32(parts) {
		var want []metastore.Extent
		for i, s := range stores {
			es, err := s.Extents(ctx, topics[i].ID, p, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for j := range es {
				es[j].TopicID, es[j].CommittedAt = metastore.TopicID{}, time.Time{} // each store's own
			}
			if i == 0 {
				want = es
			} else if !reflect.DeepEqual(es, want) {
				t.Fatalf("partition %d: store %d reads %d extents %+v, the inline store %d %+v", p, i, len(es), es, len(want), want)
			}
		}
	}
}
