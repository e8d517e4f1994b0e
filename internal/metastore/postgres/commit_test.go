package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/testutil"
)

// A commit whose writes fail is rolled back whole and releases its
// partition locks: with a pool of one connection, the next commits
// succeed, and nothing of the failed one is visible. (The database rolls
// back the implicit transaction of a failed batch, and the store rolls
// back an explicit one on the connection; pgxpool would also discard a
// connection left in a transaction, so this test cannot tell those
// apart.)
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

// A commit whose partition is locked by another transaction waits for
// it, then writes from the partition as that transaction left it, though
// its statement's snapshot is older. The other transactions here are
// other agents' commits: first of the same producer's next batch (as
// after a client's failover), which the waiting commit's cached producer
// state does not know, so the waiting commit must find the state
// changed, decide again from the stored one, and answer its batch as a
// duplicate at the other agent's offset, writing nothing; then of a
// plain batch, after which the waiting commit's batch must take the
// offsets after it.
func TestCommitWaitsForALockedPartition(t *testing.T) {
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	ctx := t.Context()
	topic, pid, epoch := topicAndProducer(t, s, 1)
	batch := func(seq int32) metastore.SegmentCommit {
		return metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", seq), Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, ByteLength: 10, OffsetCount: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}}}
	}
	if res, err := s.CommitSegment(ctx, batch(0)); err != nil || res[0].Err != nil || res[0].BaseOffset != 0 {
		t.Fatalf("first commit: %+v, %v", res, err)
	}
	other, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())

	// behind runs c while a transaction of statements holds the
	// partition, and commits that transaction once c waits for its lock.
	behind := func(c metastore.SegmentCommit, statements ...string) ([]metastore.BatchResult, error) {
		t.Helper()
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		for _, sql := range statements {
			if _, err := tx.Exec(ctx, sql, topic.ID[:]); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		type outcome struct {
			res []metastore.BatchResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := s.CommitSegment(ctx, c)
			done <- outcome{res, err}
		}()
		testutil.WaitFor(t, 10*time.Second, "the commit waits for the partition lock", func() bool {
			var waiting int
			err := other.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
			return err == nil && waiting > 0
		})
		select {
		case o := <-done:
			t.Fatalf("the commit ended while the partition was locked: %+v, %v", o.res, o.err)
		default:
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case o := <-done:
			return o.res, o.err
		case <-time.After(10 * time.Second):
			t.Fatal("the commit did not end after the lock was released")
		}
		return nil, nil
	}
	otherCommit := func(base, end int64, object string, more ...string) []string {
		return append([]string{
			fmt.Sprintf(`UPDATE partitions SET high_watermark = %d WHERE topic_id = $1 AND part = 0`, end),
			fmt.Sprintf(`INSERT INTO extents (topic_id, part, base_offset, end_offset, object, object_size, byte_offset, byte_length, max_timestamp, committed_at)
				VALUES ($1, 0, %d, %d, '%s', 10, 0, 10, 0, now())`, base, end, object),
		}, more...)
	}

	// The same producer's sequences 2–3 at offsets 2–3, through another
	// agent.
	res, err := behind(batch(2), otherCommit(2, 4, "segments/other-1",
		`UPDATE producer_state SET last_seq = 3,
			recent = '[{"first_seq":0,"last_seq":1,"base_offset":0},{"first_seq":2,"last_seq":3,"base_offset":2}]'
			WHERE topic_id = $1 AND part = 0`)...)
	if err != nil || res[0].Err != nil || !res[0].Duplicate || res[0].BaseOffset != 2 {
		t.Fatalf("the retried batch: %+v, %v; want a duplicate at offset 2", res, err)
	}
	if n := postgres.ProducerConflicts(s); n != 1 {
		t.Errorf("%d producer conflicts, want 1 (the cached state found changed)", n)
	}
	if off, err := s.Offsets(ctx, topic.ID, 0); err != nil || off.HighWatermark != 4 {
		t.Errorf("offsets %+v, %v; want high watermark 4 (nothing written by the duplicate)", off, err)
	}

	// A plain batch at offsets 4–6 through another agent: the next batch
	// goes after it, from the watermark that transaction left.
	res, err = behind(batch(4), otherCommit(4, 7, "segments/other-2")...)
	if err != nil || res[0].Err != nil || res[0].Duplicate || res[0].BaseOffset != 7 {
		t.Fatalf("the commit behind a plain batch: %+v, %v; want offset 7", res, err)
	}
	exts, err := s.Extents(ctx, topic.ID, 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]int64
	for _, e := range exts {
		got = append(got, [2]int64{e.BaseOffset, e.EndOffset})
	}
	if want := [][2]int64{{0, 2}, {2, 4}, {4, 7}, {7, 9}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("extents %v, want %v", got, want)
	}
	if off, err := s.Offsets(ctx, topic.ID, 0); err != nil || off.HighWatermark != 9 {
		t.Errorf("offsets %+v, %v; want high watermark 9", off, err)
	}
}
