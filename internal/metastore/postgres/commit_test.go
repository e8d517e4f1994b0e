package postgres_test

import (
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// A commit that fails in its second round trip (the writes and COMMIT)
// is rolled back whole and releases its partition locks: with a pool of
// one connection, the next commits succeed, and nothing of the failed
// one is visible. (The store rolls back on the connection and keeps it;
// pgxpool would also discard a connection left in a transaction, so this
// test cannot tell the two apart.)
func TestFailedCommitRollsBack(t *testing.T) {
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{MaxConns: 1})
	ctx := t.Context()
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	admin(t, db, `ALTER TABLE extents ADD CONSTRAINT refuse_bad CHECK (object <> 'segments/bad')`)
	commit := func(object string) ([]metastore.BatchResult, error) {
		return s.CommitSegment(ctx, metastore.SegmentCommit{Object: object, Size: 20, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, Partition: 0, ByteLength: 10, OffsetCount: 2, ProducerID: -1},
			{TopicID: topic.ID, Partition: 1, ByteOffset: 10, ByteLength: 10, OffsetCount: 3, ProducerID: -1},
		}})
	}
	if _, err := commit("segments/good-1"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := commit("segments/bad"); err == nil {
			t.Fatal("a commit whose extents the database refuses succeeded")
		}
	}
	res, err := commit("segments/good-2")
	if err != nil {
		t.Fatalf("commit after failed ones, on the same connection: %v", err)
	}
	if res[0].BaseOffset != 2 || res[1].BaseOffset != 3 {
		t.Errorf("offsets after failed commits: %+v, want 2 and 3 (nothing of the failed ones kept)", res)
	}
	for p, want := range []int64{4, 6} {
		if o, err := s.Offsets(ctx, topic.ID, int32(p)); err != nil || o.HighWatermark != want {
			t.Errorf("partition %d: %+v, %v; want high watermark %d", p, o, err, want)
		}
	}
	objects, err := s.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		if o == "segments/bad" {
			t.Error("the failed commit's object was recorded")
		}
	}
}
