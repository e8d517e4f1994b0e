package postgres_test

import (
	"fmt"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// TestProducerCache: a store's commits of one producer reuse the state
// its previous commit wrote (no conflict), and when the producer commits
// through another store meanwhile (a client's failover), the stale guess
// fails once and the commit runs again with the right offsets and
// sequence checks.
func TestProducerCache(t *testing.T) {
	db := freshDatabase(t)
	a, b := openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{})
	ctx := t.Context()
	topic, pid, epoch := topicAndProducer(t, a, 2)
	seq := int32(0)
	commit := func(s *postgres.Store, partitions ...int32) []metastore.BatchResult {
		t.Helper()
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d-%d", seq, len(partitions)), Size: 10 * int64(len(partitions))}
		for i, p := range partitions {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteOffset: 10 * int64(i), ByteLength: 10,
				OffsetCount: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
		}
		res, err := s.CommitSegment(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := range 10 {
		res := commit(a, 0, 1)
		for p, r := range res {
			if r.Err != nil || r.Duplicate || r.BaseOffset != int64(2*i) {
				t.Fatalf("commit %d partition %d: %+v, want offset %d", i, p, r, 2*i)
			}
		}
		seq += 2
	}
	if n := postgres.ProducerConflicts(a); n != 0 {
		t.Fatalf("%d conflicts for one store's commits: the cached states are not those stored", n)
	}
	// The producer moves to b for one commit, then back to a.
	if r := commit(b, 0); r[0].Err != nil || r[0].BaseOffset != 20 {
		t.Fatalf("commit through b: %+v", r[0])
	}
	seq += 2
	if r := commit(a, 0); r[0].Err != nil || r[0].Duplicate || r[0].BaseOffset != 22 {
		t.Fatalf("commit through a after b: %+v, want offset 22", r[0])
	}
	if n := postgres.ProducerConflicts(a); n != 1 {
		t.Fatalf("%d conflicts after the producer committed through another store, want 1", n)
	}
	// Retries through a of b's batch and of a's last are duplicates with
	// their offsets.
	seq -= 2
	if r := commit(a, 0); !r[0].Duplicate || r[0].BaseOffset != 20 {
		t.Fatalf("retry of b's batch: %+v, want a duplicate at 20", r[0])
	}
	seq += 2
	if r := commit(a, 0); !r[0].Duplicate || r[0].BaseOffset != 22 {
		t.Fatalf("retry of a's last batch: %+v, want a duplicate at 22", r[0])
	}
}
