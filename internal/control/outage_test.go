package control_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
)

// TestJournalConnectionsKilled kills every connection of the journal's
// database while agents commit: appends fail, the vcluster is rebuilt
// from its journal, clients reconnect, and every commit that was
// acknowledged is there, at the offsets it was given.
func TestJournalConnectionsKilled(t *testing.T) {
	cp := newControl(t)
	ctx := t.Context()
	key, err := cp.server.CreateVCluster(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	c := cp.client(t, "outage", key)
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	type acked struct {
		partition int32
		base      int64
	}
	var (
		mu     sync.Mutex
		acks   []acked
		failed int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; i < 10_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := int32((w + i) % 4)
				rs, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d-%d", w, i), Size: 10,
					Batches: []metastore.BatchCommit{{TopicID: topic.ID, Partition: p, ByteLength: 10, OffsetCount: 2, ProducerID: -1}}})
				mu.Lock()
				if err != nil {
					failed++
				} else {
					acks = append(acks, acked{p, rs[0].BaseOffset})
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	u, _ := url.Parse(cp.dbURL)
	db := strings.TrimPrefix(u.Path, "/")
	conn, err := pgx.Connect(ctx, testutil.RequirePostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	t.Logf("terminated %d journal connections", killed)
	// Wait for a commit to fail and then for commits to succeed again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		f, n := failed, len(acks)
		mu.Unlock()
		if f > 0 {
			time.Sleep(time.Second)
			mu.Lock()
			recovered := len(acks) > n
			mu.Unlock()
			if recovered {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after killing the journal's connections: %d failed, %d acknowledged, and no recovery", f, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// The vcluster was rebuilt: it holds the journal lease at a new epoch.
	for _, v := range cp.server.VClusters() {
		if v.Name == "outage" && v.Epoch < 2 {
			t.Fatalf("vcluster at epoch %d after the append failed; want it rebuilt at 2 or more", v.Epoch)
		}
	}
	// Every acknowledged commit is in the rebuilt state at its offsets.
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d commits acknowledged, %d failed", len(acks), failed)
	for p := range int32(4) {
		es, err := c.Extents(ctx, topic.ID, p, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		have := map[int64]bool{}
		for _, e := range es {
			for o := e.BaseOffset; o < e.EndOffset; o += 2 {
				have[o] = true
			}
		}
		for _, a := range acks {
			if a.partition == p && !have[a.base] {
				t.Fatalf("acknowledged commit at partition %d offset %d is gone", p, a.base)
			}
		}
	}
}
