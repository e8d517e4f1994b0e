package postgres_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/testutil"
)

// TestCommitScansNoTable: a segment commit, and a consumer's offset
// commit, look up the rows they touch by primary key and never scan the
// partitions or producer_state tables whole. With a thousand partitions the planner found a hash join over a
// scan of the table cheaper than ten lookups, and every commit paid for
// three such scans over the chains of dead versions that commits leave.
// The counts come from pg_stat_user_tables once the store's connections
// have ended (a backend reports its counts when it exits).
func TestCommitScansNoTable(t *testing.T) {
	db := freshDatabase(t)
	ctx := t.Context()
	s, err := postgres.Open(ctx, db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const partitions, commits, perCommit = 1000, 60, 10
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	before := tableScans(t, db)
	start := time.Now()
	pid, epoch, err := s.InitProducerID(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	seqs := make(map[int32]int32)
	for i := range commits {
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", i), Size: 10 * perCommit}
		for j, p := range rng.Perm(partitions)[:perCommit] {
			part := int32(p)
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: part, ByteOffset: 10 * int64(j), ByteLength: 10,
				OffsetCount: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seqs[part]})
			seqs[part] += 2
		}
		res, err := s.CommitSegment(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range res {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("commit %d batch %d: %+v", i, j, r)
			}
		}
	}
	// Consumers' offset commits share-lock their partitions the same way.
	for i := range commits {
		var offsets []metastore.CommittedOffset
		for _, p := range rng.Perm(partitions)[:perCommit] {
			offsets = append(offsets, metastore.CommittedOffset{TopicID: topic.ID, Partition: int32(p), Offset: int64(i)})
		}
		if err := s.CommitOffsets(ctx, "g", offsets); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	s.Close()
	after := waitTableScans(t, db, before, commits*perCommit)
	// The store's lost-notice poll reads every partition once a second,
	// and a scan or two may come from elsewhere; a commit that scans
	// makes one or more per commit.
	allowed := 2 + int64(elapsed/time.Second)
	for _, table := range []string{"partitions", "producer_state"} {
		if n := after[table].seq - before[table].seq; n > allowed {
			t.Errorf("%d segment and offset commits of %d partitions in %v scanned %s whole %d times, more than %d (%d index scans)",
				commits, perCommit, elapsed.Round(time.Millisecond), table, n, allowed, after[table].idx-before[table].idx)
		}
	}
}

type scanCounts struct{ seq, idx int64 }

// tableScans reads the scans of every table of the database so far.
func tableScans(t *testing.T, db string) map[string]scanCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT relname, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables`)
	out := make(map[string]scanCounts)
	var (
		name string
		c    scanCounts
	)
	if _, err := pgx.ForEachRow(rows, []any{&name, &c.seq, &c.idx}, func() error {
		out[name] = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitTableScans reads the scans once the partitions table shows at
// least lookups more index scans than before: the store's backends have
// reported theirs. It gives up after 20 s.
func waitTableScans(t *testing.T, db string, before map[string]scanCounts, lookups int) map[string]scanCounts {
	t.Helper()
	var after map[string]scanCounts
	testutil.WaitFor(t, 20*time.Second, "the store's backends to report their scans", func() bool {
		after = tableScans(t, db)
		return after["partitions"].idx-before["partitions"].idx >= int64(lookups)
	})
	return after
}
