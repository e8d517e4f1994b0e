package metastoretest

import (
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// testWatch checks that a commit is announced to watchers with the
// partitions it made data visible in, after it is visible, and that a
// stopped watcher hears nothing more.
func testWatch(t *testing.T, open func(t *testing.T) commitWatcher) {
	s := open(t)
	a := createTopic(t, s, "watched", 3)
	notices := make(chan metastore.CommitNotice, 16)
	stop := s.WatchCommits(func(n metastore.CommitNotice) {
		// The commit must already be visible when it is announced.
		for _, tp := range n.Partitions {
			offs, err := s.Offsets(t.Context(), tp.TopicID, tp.Partition)
			if err != nil || offs.HighWatermark == 0 {
				t.Errorf("notice for %v before its commit is visible (hwm %d, err %v)", tp, offs.HighWatermark, err)
			}
		}
		notices <- n
	})
	c := metastore.SegmentCommit{Object: "segments/w1", Size: 300, Batches: []metastore.BatchCommit{
		batch(a.ID, 0, 0, 100, 1), batch(a.ID, 2, 100, 100, 1), batch(a.ID, 0, 200, 100, 1),
	}}
	if _, err := s.CommitSegment(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-notices:
		got := map[int32]bool{}
		for _, tp := range n.Partitions {
			if tp.TopicID != a.ID {
				t.Fatalf("notice names topic %v", tp.TopicID)
			}
			got[tp.Partition] = true
		}
		if len(got) != 2 || !got[0] || !got[2] || len(n.Partitions) != 2 {
			t.Fatalf("notice partitions %v, want 0 and 2 once each", n.Partitions)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice for a commit")
	}
	stop()
	c.Object = "segments/w2"
	if _, err := s.CommitSegment(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-notices:
		t.Fatalf("stopped watcher got %v", n)
	case <-time.After(200 * time.Millisecond):
	}
}
