package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// TestCommitsRacingDeleteTopic deletes a topic while idempotent commits
// (which lock their partitions only in their last round trip) stream into
// it from two stores: every commit succeeds or is answered per batch, the
// batches after the deletion are UNKNOWN_TOPIC_OR_PARTITION, and the
// objects' reference counts stay exact (every object's refs equal the
// extents naming it, and those left with none are the cleaner's).
func TestCommitsRacingDeleteTopic(t *testing.T) {
	db := freshDatabase(t)
	stores := []*postgres.Store{openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{})}
	ctx := t.Context()
	const partitions = 4
	topic, err := stores[0].CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		unknown int
	)
	deadline := time.Now().Add(10 * time.Second)
	for w := range 4 {
		s := stores[w%2]
		pid, epoch, err := s.InitProducerID(ctx, -1, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			var seq [partitions]int32
			for i := 0; i < 200 && time.Now().Before(deadline); i++ {
				c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d-%d", w, i), Size: 20}
				for j := range 2 {
					p := int32((w + i + j) % partitions)
					c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteOffset: 10 * int64(j),
						ByteLength: 10, OffsetCount: 1, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq[p]})
				}
				res, err := s.CommitSegment(ctx, c)
				if err != nil {
					t.Errorf("writer %d commit %d: %v", w, i, err)
					return
				}
				for j, r := range res {
					switch {
					case r.Err == nil:
						seq[c.Batches[j].Partition]++
					case errors.Is(r.Err, metastore.ErrUnknownTopicOrPartition):
						mu.Lock()
						unknown++
						mu.Unlock()
					default:
						t.Errorf("writer %d commit %d batch %d: %v", w, i, j, r.Err)
					}
				}
				if res[0].Err != nil && i > 20 {
					return // the topic is gone
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := stores[1].DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if unknown == 0 {
		t.Fatal("no batch was refused: the deletion did not race with the commits")
	}
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var bad, unlisted, extents int
	if err := conn.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE o.refs <> (SELECT count(*) FROM extents e WHERE e.object = o.object)),
		       count(*) FILTER (WHERE o.refs = 0 AND NOT EXISTS (SELECT 1 FROM unreferenced_objects u WHERE u.object = o.object)),
		       (SELECT count(*) FROM extents)
		FROM objects o`).Scan(&bad, &unlisted, &extents); err != nil {
		t.Fatal(err)
	}
	if bad != 0 || unlisted != 0 || extents != 0 {
		t.Fatalf("%d objects with wrong reference counts, %d unreferenced but not the cleaner's, %d extents left", bad, unlisted, extents)
	}
}
