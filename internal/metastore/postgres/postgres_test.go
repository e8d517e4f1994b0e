package postgres_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/testutil"
)

// These tests need a real PostgreSQL: FLOE_TEST_POSTGRES_URL names a
// database whose user may create databases (scripts/services postgres
// starts one). Every store gets a database of its own, dropped afterwards.
// Without the variable the tests skip, unless FLOE_REQUIRE_SERVICES=1.

func serverURL(t *testing.T) string {
	t.Helper()
	return testutil.RequirePostgres(t)
}

// freshDatabase creates an empty database and returns its URL. It is
// dropped when the test ends, after the stores opened on it are closed.
func freshDatabase(t *testing.T) string {
	t.Helper()
	base := serverURL(t)
	name := "floe_test_" + strings.ToLower(rand.Text()[:12])
	admin(t, base, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin(t, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on its own connection.
func admin(t *testing.T, dbURL, sql string, args ...any) {
	t.Helper()
	// Not t.Context(): cleanups run after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// topicAndProducer creates topic "t" of partitions through s and a
// producer id.
func topicAndProducer(t *testing.T, s *postgres.Store, partitions int32) (metastore.Topic, int64, int16) {
	t.Helper()
	topic, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := s.InitProducerID(t.Context(), -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return topic, pid, epoch
}

func openStore(t *testing.T, dbURL string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dbURL, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	serverURL(t)
	metastoretest.Run(t, func(t *testing.T) metastore.Store {
		return openStore(t, freshDatabase(t), postgres.Options{})
	})
}

func TestMigrateConcurrently(t *testing.T) {
	db := freshDatabase(t)
	const agents = 6
	var wg sync.WaitGroup
	for range agents {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), db, postgres.Options{})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var rows, distinct int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != distinct {
		t.Fatalf("schema_migrations: %d rows, %d versions; want each version once", rows, distinct)
	}

	// A database migrated by a newer binary is refused.
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future')`); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(t.Context(), db, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open of a newer schema: %v, want an error", err)
	}
}

// TestConcurrentStores commits from several stores at once, each with its
// own pool as separate agents have, to the same partitions, naming them in
// random orders: offsets must stay unique and contiguous, extents must not
// overlap, and no deadlock may surface.
func TestConcurrentStores(t *testing.T) {
	const (
		stores     = 4
		writers    = 3 // per store
		commits    = 25
		partitions = 4
	)
	db := freshDatabase(t)
	var ss []*postgres.Store
	for range stores {
		ss = append(ss, openStore(t, db, postgres.Options{MaxConns: 4}))
	}
	topic, err := ss[0].CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}

	type written struct {
		partition       int32
		base, count     int64
		object          string
		byteOff, length int64
	}
	var (
		mu  sync.Mutex
		all []written
		wg  sync.WaitGroup
	)
	for si, s := range ss {
		for w := range writers {
			wg.Go(func() {
				rng := mrand.New(mrand.NewPCG(uint64(si), uint64(w)))
				producer, epoch, err := s.InitProducerID(t.Context(), -1, -1)
				if err != nil {
					t.Errorf("InitProducerID: %v", err)
					return
				}
				var nextSeq [partitions]int32
				for i := range commits {
					// Three partitions in a random order, two adjacent
					// batches each; every third commit idempotent.
					order := rng.Perm(partitions)[:3]
					var batches []metastore.BatchCommit
					for j := range 6 {
						p := int32(order[j/2])
						count := int64(1 + rng.IntN(3))
						b := metastore.BatchCommit{
							TopicID: topic.ID, Partition: p, ByteOffset: int64(j) * 10, ByteLength: 10,
							OffsetCount: count, MaxTimestamp: int64(i), ProducerID: -1,
						}
						if i%3 == 0 {
							b.ProducerID, b.ProducerEpoch, b.BaseSequence = producer, epoch, nextSeq[p]
							nextSeq[p] += int32(count)
						}
						batches = append(batches, b)
					}
					c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d-%d-%d", si, w, i), Size: 60, Batches: batches}
					results, err := s.CommitSegment(t.Context(), c)
					if err != nil {
						t.Errorf("store %d writer %d commit %d: %v", si, w, i, err)
						return
					}
					mu.Lock()
					for j, r := range results {
						if r.Err != nil || r.Duplicate {
							t.Errorf("store %d writer %d commit %d batch %d: %+v", si, w, i, j, r)
							continue
						}
						b := batches[j]
						all = append(all, written{b.Partition, r.BaseOffset, b.OffsetCount, c.Object, b.ByteOffset, b.ByteLength})
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if want := stores * writers * commits * 6; len(all) != want {
		t.Fatalf("%d batches accepted, want %d", len(all), want)
	}

	for p := range int32(partitions) {
		var mine []written
		for _, b := range all {
			if b.partition == p {
				mine = append(mine, b)
			}
		}
		slices.SortFunc(mine, func(a, b written) int { return cmp.Compare(a.base, b.base) })
		var next int64
		for _, b := range mine {
			if b.base != next {
				t.Fatalf("partition %d: batch at %d, want %d (offsets not unique and contiguous)", p, b.base, next)
			}
			next += b.count
		}
		// Every store sees the same high watermark and extents.
		for si, s := range ss {
			o, err := s.Offsets(t.Context(), topic.ID, p)
			if err != nil || o.HighWatermark != next {
				t.Fatalf("store %d partition %d: offsets %+v (%v), want high watermark %d", si, p, o, err, next)
			}
		}
		es, err := ss[stores-1].Extents(t.Context(), topic.ID, p, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var end int64
		for _, e := range es {
			if e.BaseOffset != end || e.EndOffset <= e.BaseOffset {
				t.Fatalf("partition %d: extent [%d, %d) after offset %d: extents overlap or leave a gap", p, e.BaseOffset, e.EndOffset, end)
			}
			end = e.EndOffset
		}
		if end != next {
			t.Fatalf("partition %d: extents end at %d, want %d", p, end, next)
		}
		for _, b := range mine {
			i, _ := slices.BinarySearchFunc(es, b.base, func(e metastore.Extent, off int64) int {
				switch {
				case e.EndOffset <= off:
					return -1
				case e.BaseOffset > off:
					return 1
				}
				return 0
			})
			e := es[i]
			if b.base+b.count > e.EndOffset || e.Object != b.object ||
				b.byteOff < e.ByteOffset || b.byteOff+b.length > e.ByteOffset+e.ByteLength {
				t.Fatalf("partition %d: batch %+v not inside extent %+v", p, b, e)
			}
		}
	}
}

// TestConcurrentDuplicates sends the same idempotent batches through two
// stores at the same moment, as a producer retrying through another agent
// does: each batch must be written exactly once, and the other store must
// answer it as a duplicate at the same offset. The two commits name the
// partitions in opposite orders.
func TestConcurrentDuplicates(t *testing.T) {
	const rounds = 40
	db := freshDatabase(t)
	a, b := openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{})
	topic, err := a.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	producer, epoch, err := b.InitProducerID(t.Context(), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(p int32, round int) metastore.BatchCommit {
		return metastore.BatchCommit{
			TopicID: topic.ID, Partition: p, ByteOffset: int64(p) * 10, ByteLength: 10, OffsetCount: 3,
			ProducerID: producer, ProducerEpoch: epoch, BaseSequence: int32(round * 3),
		}
	}
	for round := range rounds {
		commits := []metastore.SegmentCommit{
			{Object: fmt.Sprintf("segments/a-%d", round), Size: 20, Batches: []metastore.BatchCommit{batch(0, round), batch(1, round)}},
			{Object: fmt.Sprintf("segments/b-%d", round), Size: 20, Batches: []metastore.BatchCommit{batch(1, round), batch(0, round)}},
		}
		results := make([][]metastore.BatchResult, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range []*postgres.Store{a, b} {
			wg.Go(func() {
				<-start
				r, err := s.CommitSegment(t.Context(), commits[i])
				if err != nil {
					t.Errorf("round %d store %d: %v", round, i, err)
				}
				results[i] = r
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		want := int64(round * 3)
		for p := range int32(2) {
			ra, rb := results[0][p], results[1][1-p] // the same partition in both commits
			if ra.Err != nil || rb.Err != nil || ra.Duplicate == rb.Duplicate || ra.BaseOffset != want || rb.BaseOffset != want {
				t.Fatalf("round %d partition %d: results %+v and %+v, want one written at %d and one duplicate of it", round, p, ra, rb, want)
			}
		}
	}
	for p := range int32(2) {
		o, err := a.Offsets(t.Context(), topic.ID, p)
		if err != nil || o.HighWatermark != rounds*3 {
			t.Fatalf("partition %d: %+v (%v), want high watermark %d", p, o, err, rounds*3)
		}
		es, err := b.Extents(t.Context(), topic.ID, p, 0, 0)
		if err != nil || len(es) != rounds {
			t.Fatalf("partition %d: %d extents (%v), want %d", p, len(es), err, rounds)
		}
	}
}

// watch collects a store's commit notices.
func watch(t *testing.T, s metastore.Store) <-chan metastore.CommitNotice {
	ch := make(chan metastore.CommitNotice, 64)
	stop := s.WatchCommits(func(n metastore.CommitNotice) {
		select {
		case ch <- n:
		default:
			t.Errorf("notice dropped: %+v", n)
		}
	})
	t.Cleanup(stop)
	return ch
}

// waitNotice waits for a notice that satisfies ok, skipping others.
func waitNotice(t *testing.T, ch <-chan metastore.CommitNotice, what string, ok func(metastore.CommitNotice) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if ok(n) {
				return
			}
		case <-deadline:
			t.Fatalf("no notice %s within 10s", what)
		}
	}
}

func names(id metastore.TopicID, partition int32) func(metastore.CommitNotice) bool {
	return func(n metastore.CommitNotice) bool {
		return slices.Contains(n.Partitions, metastore.TopicPartition{TopicID: id, Partition: partition})
	}
}

// seenAs matches a poll's notice of the partition that saw its high
// watermark plus log start offset at want (CommitNotice.Seen).
func seenAs(id metastore.TopicID, partition int32, want int64) func(metastore.CommitNotice) bool {
	return func(n metastore.CommitNotice) bool {
		i := slices.Index(n.Partitions, metastore.TopicPartition{TopicID: id, Partition: partition})
		seen, ok := n.SeenAt(i)
		return i >= 0 && ok && seen == want
	}
}

func commitOne(t *testing.T, s metastore.Store, id metastore.TopicID, partition int32) {
	t.Helper()
	c := metastore.SegmentCommit{Object: "segments/" + rand.Text(), Size: 10,
		Batches: []metastore.BatchCommit{{TopicID: id, Partition: partition, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}}
	if _, err := s.CommitSegment(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

// TestNoticesAcrossStores checks that a commit through one store is
// announced by another's listener, and that a store announces its own
// commits once.
func TestNoticesAcrossStores(t *testing.T) {
	db := freshDatabase(t)
	a, b := openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{})
	topic, err := a.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	notices := watch(t, a)
	commitOne(t, b, topic.ID, 2)
	waitNotice(t, notices, "for another store's commit", names(topic.ID, 2))

	commitOne(t, a, topic.ID, 1)
	waitNotice(t, notices, "for the store's own commit", names(topic.ID, 1))
	select {
	case n := <-notices:
		t.Fatalf("second notice %+v for one commit", n)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestListenerReconnects kills the listener's connection: the store must
// announce everything (nil Partitions) once it is back, and hear later
// commits again.
func TestListenerReconnects(t *testing.T) {
	db := freshDatabase(t)
	a, b := openStore(t, db, postgres.Options{}), openStore(t, db, postgres.Options{})
	topic, err := a.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	notices := watch(t, a)
	admin(t, db, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'floe-commit-listener' AND datname = current_database()`)
	waitNotice(t, notices, "for everything after a reconnect", func(n metastore.CommitNotice) bool { return n.Partitions == nil })
	// Both listeners were killed; b's commit reaches a once a is back.
	commitOne(t, b, topic.ID, 0)
	waitNotice(t, notices, "after the reconnect", names(topic.ID, 0))
}

// TestPollingWithoutNotify checks the fallback for databases without
// LISTEN/NOTIFY.
func TestPollingWithoutNotify(t *testing.T) {
	db := freshDatabase(t)
	a := openStore(t, db, postgres.Options{DisableNotify: true, PollInterval: 20 * time.Millisecond})
	b := openStore(t, db, postgres.Options{DisableNotify: true})
	topic, err := a.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	notices := watch(t, a)
	time.Sleep(50 * time.Millisecond) // a first poll, to compare with
	commitOne(t, b, topic.ID, 1)
	// The poll's notice says what it saw: high watermark 1, log start 0.
	waitNotice(t, notices, "from polling, with what it saw", seenAs(topic.ID, 1, 1))
}
