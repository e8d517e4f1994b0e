package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// lockedBuffer collects the logs of several stores.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestTxnsAcrossStores runs transactions through several stores (several
// pools, as several agents): producers commit transactional batches naming
// partitions in random orders, commit transactional offsets, and their
// transactions end through other stores at random moments, while plain
// commits go on. Every batch lands before its marker or is refused, every
// accepted transactional offset is published by a commit, and no
// transaction deadlocks (the store would retry it: its logs show none).
func TestTxnsAcrossStores(t *testing.T) {
	const (
		stores     = 3
		producers  = 3
		rounds     = 12
		outParts   = 4
		inParts    = 3
		maxCommits = 30
	)
	db := freshDatabase(t)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var ss []*postgres.Store
	for range stores {
		ss = append(ss, openStore(t, db, postgres.Options{MaxConns: 6, Logger: log}))
	}
	ctx := t.Context()
	out, err := ss[0].CreateTopic(ctx, metastore.TopicSpec{Name: "out", Partitions: outParts})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ss[0].CreateTopic(ctx, metastore.TopicSpec{Name: "in", Partitions: inParts})
	if err != nil {
		t.Fatal(err)
	}
	var parts []metastore.TopicPartition
	for p := range int32(outParts) {
		parts = append(parts, metastore.TopicPartition{TopicID: out.ID, Partition: p})
	}
	slices.SortFunc(parts, metastore.CompareTopicPartitions)

	type producer struct {
		id        int64
		epoch     int16
		version   int64
		seq       [outParts]int32
		committed map[int32]int64 // the group's committed offsets, as they must be
	}
	ps := make([]*producer, producers)
	for i := range ps {
		id, epoch, err := ss[i%stores].InitProducerID(ctx, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = &producer{id: id, epoch: epoch, committed: map[int32]int64{}}
	}
	type written struct{ base, count int64 }
	var batches, offsetCommits int
	for round := range rounds {
		rng := mrand.New(mrand.NewPCG(uint64(round), 11))
		var (
			wg       sync.WaitGroup
			accepted [producers][outParts][]written
			pending  [producers]map[int32]int64
			results  [producers]metastore.TxnEndResult
			delays   [producers]time.Duration
			seeds    [producers][3]uint64
		)
		txns := make([]metastore.Txn, producers)
		for i, p := range ps {
			txns[i] = metastore.Txn{
				TransactionalID: fmt.Sprint("tx-", i), ProducerID: p.id, ProducerEpoch: p.epoch,
				LastProducerID: -1, LastProducerEpoch: -1, State: metastore.TxnOngoing,
				Partitions: parts, Groups: []string{fmt.Sprint("g-", i)}, Version: p.version,
			}
			if txns[i].Version, err = ss[round%stores].SaveTxn(ctx, txns[i]); err != nil {
				t.Fatal(err)
			}
			pending[i] = map[int32]int64{}
			delays[i] = time.Duration(rng.IntN(20_000)) * time.Microsecond
			seeds[i] = [3]uint64{rng.Uint64(), rng.Uint64(), rng.Uint64()}
		}
		for i, p := range ps {
			// The producer: two or three partitions per commit, in a random
			// order, with a plain batch now and then.
			wg.Go(func() {
				rng := mrand.New(mrand.NewPCG(seeds[i][0], 1))
				for k := range maxCommits {
					s := ss[rng.IntN(stores)]
					order := rng.Perm(outParts)[:2+rng.IntN(2)]
					c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d-%d-%d", round, i, k)}
					for j, part := range order {
						count := int64(1 + rng.IntN(3))
						c.Batches = append(c.Batches, metastore.BatchCommit{
							TopicID: out.ID, Partition: int32(part), ByteOffset: int64(j) * 10, ByteLength: 10, OffsetCount: count,
							ProducerID: p.id, ProducerEpoch: p.epoch, BaseSequence: p.seq[part], Transactional: true,
						})
					}
					if k%3 == 0 {
						c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: in.ID, Partition: int32(rng.IntN(inParts)),
							ByteOffset: 40, ByteLength: 10, OffsetCount: 1, ProducerID: -1})
					}
					c.Size = 50
					r, err := s.CommitSegment(ctx, c)
					if err != nil {
						t.Errorf("round %d producer %d commit %d: %v", round, i, k, err)
						return
					}
					refused := false
					for j, part := range order {
						switch {
						case r[j].Err == nil && !r[j].Duplicate:
							accepted[i][part] = append(accepted[i][part], written{r[j].BaseOffset, c.Batches[j].OffsetCount})
							p.seq[part] += int32(c.Batches[j].OffsetCount)
						case errors.Is(r[j].Err, metastore.ErrInvalidTxnState):
							refused = true
						default:
							t.Errorf("round %d producer %d commit %d batch %d: %+v", round, i, k, j, r[j])
							return
						}
					}
					if refused {
						return
					}
				}
			})
			// Its consumer's offsets, partitions in a random order.
			wg.Go(func() {
				rng := mrand.New(mrand.NewPCG(seeds[i][1], 2))
				for k := range maxCommits {
					var offsets []metastore.CommittedOffset
					for _, part := range rng.Perm(inParts)[:1+rng.IntN(inParts)] {
						offsets = append(offsets, metastore.CommittedOffset{TopicID: in.ID, Partition: int32(part),
							Offset: int64(round*1000 + k), LeaderEpoch: -1})
					}
					err := ss[rng.IntN(stores)].CommitTxnOffsets(ctx, txns[i].TransactionalID, p.id, p.epoch, txns[i].Groups[0], offsets)
					if errors.Is(err, metastore.ErrInvalidTxnState) {
						return
					}
					if err != nil {
						t.Errorf("round %d producer %d offsets %d: %v", round, i, k, err)
						return
					}
					for _, o := range offsets {
						pending[i][o.Partition] = o.Offset
					}
				}
			})
			// Its end, through any store.
			wg.Go(func() {
				time.Sleep(delays[i])
				commit := (round+i)%3 != 0
				next := txns[i]
				next.State, next.Partitions, next.Groups = metastore.TxnCompleteAbort, nil, nil
				if commit {
					next.State = metastore.TxnCompleteCommit
				}
				markers := metastore.SegmentCommit{Object: fmt.Sprintf("markers/%d-%d", round, i)}
				for j, tp := range parts {
					markers.Batches = append(markers.Batches, metastore.BatchCommit{TopicID: tp.TopicID, Partition: tp.Partition,
						ByteOffset: int64(j) * 10, ByteLength: 10, OffsetCount: 1, ProducerID: p.id, ProducerEpoch: p.epoch})
				}
				markers.Size = int64(len(parts)) * 10
				r, err := ss[int(seeds[i][2]%stores)].EndTxn(ctx, metastore.TxnEnd{
					Next: next, ProducerID: p.id, Commit: commit, Groups: txns[i].Groups, Markers: markers,
				})
				if err != nil {
					t.Errorf("round %d producer %d: EndTxn: %v", round, i, err)
				}
				results[i] = r
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, p := range ps {
			p.version = results[i].Version
			for part := range outParts {
				marker := results[i].MarkerOffsets[part]
				for _, w := range accepted[i][part] {
					if w.base+w.count > marker {
						t.Fatalf("round %d producer %d partition %d: batch [%d, %d) after its marker %d", round, i, part, w.base, w.base+w.count, marker)
					}
				}
			}
			for part := range outParts {
				batches += len(accepted[i][part])
			}
			offsetCommits += len(pending[i])
			if (round+i)%3 != 0 {
				for part, off := range pending[i] {
					p.committed[part] = off
				}
			}
			got, err := ss[0].FetchOffsets(ctx, txns[i].Groups[0])
			if err != nil {
				t.Fatal(err)
			}
			gotMap := map[int32]int64{}
			for _, o := range got {
				gotMap[o.Partition] = o.Offset
			}
			if fmt.Sprint(gotMap) != fmt.Sprint(p.committed) {
				t.Fatalf("round %d producer %d: group offsets %v, want %v", round, i, gotMap, p.committed)
			}
		}
		for part := range int32(outParts) {
			o, err := ss[1].Offsets(ctx, out.ID, part)
			if err != nil || o.LastStableOffset != o.HighWatermark {
				t.Fatalf("round %d partition %d: %+v, %v with every transaction ended", round, part, o, err)
			}
		}
	}
	l := logs.String()
	if strings.Contains(l, "40P01") || strings.Contains(l, "deadlock") {
		t.Fatalf("a transaction deadlocked:\n%s", l)
	}
	// Retries are EndTxns that found an offset pending on a partition
	// they had not locked.
	t.Logf("%d rounds: %d transactional batches, %d transactional offsets accepted; %d transactions retried",
		rounds, batches, offsetCommits, strings.Count(l, "transaction conflict, retrying"))
}

// count runs a count query on its own connection.
func count(t *testing.T, dbURL, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestTxnDeleteTopicRows checks what the interface cannot show: no
// transaction row of a deleted topic is left.
func TestTxnDeleteTopicRows(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	var (
		ids   [][]byte
		parts []metastore.TopicPartition
	)
	for _, name := range []string{"gone", "kept"} {
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, topic.ID[:])
		parts = append(parts, metastore.TopicPartition{TopicID: topic.ID})
	}
	slices.SortFunc(parts, metastore.CompareTopicPartitions)
	txn := metastore.Txn{TransactionalID: "tx", ProducerID: 1000, State: metastore.TxnOngoing, Partitions: parts, Groups: []string{"g"}}
	batches := func(seq int32) metastore.SegmentCommit {
		c := metastore.SegmentCommit{Object: fmt.Sprint("segments/", seq), Size: 20}
		for i, tp := range parts {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: tp.TopicID, ByteOffset: int64(i) * 10, ByteLength: 10,
				OffsetCount: 1, ProducerID: 1000, BaseSequence: seq, Transactional: true})
		}
		return c
	}
	var err error
	if txn.Version, err = s.SaveTxn(ctx, txn); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitSegment(ctx, batches(0)); err != nil {
		t.Fatal(err)
	}
	markers := metastore.SegmentCommit{Object: "markers/0", Size: 2}
	for i, tp := range parts {
		markers.Batches = append(markers.Batches, metastore.BatchCommit{TopicID: tp.TopicID, ByteOffset: int64(i), ByteLength: 1, OffsetCount: 1})
	}
	next := txn
	next.State = metastore.TxnCompleteAbort
	if _, err := s.EndTxn(ctx, metastore.TxnEnd{Next: next, ProducerID: 1000, Markers: markers}); err != nil {
		t.Fatal(err)
	}
	txn.Version++
	if txn.Version, err = s.SaveTxn(ctx, txn); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitSegment(ctx, batches(1)); err != nil {
		t.Fatal(err)
	}
	var offsets []metastore.CommittedOffset
	for _, tp := range parts {
		offsets = append(offsets, metastore.CommittedOffset{TopicID: tp.TopicID, Offset: 1})
	}
	if err := s.CommitTxnOffsets(ctx, "tx", 1000, 0, "g", offsets); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"txn_open", "txn_aborted", "txn_offsets"} {
		if n := count(t, db, `SELECT count(*) FROM `+table+` WHERE topic_id = $1`, ids[0]); n != 0 {
			t.Errorf("%s: %d rows of the deleted topic left", table, n)
		}
		if n := count(t, db, `SELECT count(*) FROM `+table+` WHERE topic_id = $1`, ids[1]); n != 1 {
			t.Errorf("%s: %d rows of the kept topic, want 1", table, n)
		}
	}
}

// TestTxnCorruptRows plants rows no store writes: the calls reading them
// fail with an error, none panics.
func TestTxnCorruptRows(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	txn := metastore.Txn{TransactionalID: "tx", ProducerID: 1000, State: metastore.TxnOngoing,
		Partitions: []metastore.TopicPartition{{TopicID: topic.ID}}, Groups: []string{"g"}}
	if _, err := s.SaveTxn(ctx, txn); err != nil {
		t.Fatal(err)
	}
	commit := func() error {
		_, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/" + fmt.Sprint(time.Now().UnixNano()), Size: 10,
			Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: 1000, Transactional: true}}})
		return err
	}
	for _, spoil := range []string{
		`UPDATE transactions SET partitions = '\x0102'::BYTEA`,
		`UPDATE transactions SET group_names = '\xffffffff0f'::BYTEA`,
		`UPDATE transactions SET state = 'PrepareCommit'`,
	} {
		admin(t, db, `UPDATE transactions SET partitions = $1, group_names = $2, state = 'Ongoing'`,
			metastore.EncodeTxnPartitions(txn.Partitions), metastore.EncodeTxnGroups(txn.Groups))
		admin(t, db, spoil)
		if _, _, err := s.LoadTxn(ctx, "tx"); err == nil {
			t.Errorf("%s: LoadTxn succeeded", spoil)
		}
		if _, err := s.ListTxns(ctx); err == nil {
			t.Errorf("%s: ListTxns succeeded", spoil)
		}
		if err := commit(); err == nil {
			t.Errorf("%s: a transactional commit succeeded", spoil)
		}
	}
	admin(t, db, `UPDATE transactions SET partitions = $1, group_names = $2, state = 'Ongoing'`,
		metastore.EncodeTxnPartitions(txn.Partitions), metastore.EncodeTxnGroups(txn.Groups))
	admin(t, db, `INSERT INTO txn_offsets VALUES ('tx', 'g', '\x0102', 0, 1, -1, '', now())`)
	_, err = s.EndTxn(ctx, metastore.TxnEnd{Next: metastore.Txn{TransactionalID: "tx", State: metastore.TxnCompleteCommit, Version: 1},
		ProducerID: 1000, Commit: true, Groups: []string{"g"}})
	if err == nil {
		t.Error("EndTxn over a pending offset with a 2-byte topic id succeeded")
	}
}

// TestMigrateTransactions opens a database of schema version 6, with
// producer state written then: migration 7 adds the transaction tables,
// and the producers' last timestamps are unknown (-1).
func TestMigrateTransactions(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	s := openStore(t, db, postgres.Options{})
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/a", Size: 10,
		Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 2, MaxTimestamp: 9, ProducerID: 1000}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to version 6, as a binary before transactions left it.
	admin(t, db, `DROP TABLE transactions, txn_open, txn_aborted, txn_offsets`)
	admin(t, db, `ALTER TABLE producer_state DROP COLUMN last_timestamp`)
	// Later migrations go too, so that 7 is the first one missing: 8
	// (share groups), 9 (agents' admin URL, version and start), 10
	// (finalized feature levels), 11 (group configs), 12 (share groups'
	// membership) and 13 (agents' outage manifest names).
	admin(t, db, `DROP TABLE share_partitions`)
	admin(t, db, `DROP TABLE group_configs`)
	admin(t, db, `DROP TABLE share_groups`)
	admin(t, db, `DROP INDEX agents_outage_manifest`)
	admin(t, db, `ALTER TABLE agents DROP COLUMN outage_manifest`)
	admin(t, db, `ALTER TABLE agents DROP COLUMN admin, DROP COLUMN version, DROP COLUMN started`)
	admin(t, db, `DROP TABLE finalized_features, finalized_features_epoch`)
	admin(t, db, `DELETE FROM schema_migrations WHERE version >= 7`)

	s = openStore(t, db, postgres.Options{})
	ps, err := s.ActiveProducers(ctx, topic.ID, 0)
	want := []metastore.ActiveProducer{{ProducerID: 1000, LastSequence: 1, LastTimestamp: -1, CurrentTxnStartOffset: -1}}
	if err != nil || !slices.Equal(ps, want) {
		t.Fatalf("ActiveProducers after migration = %+v, %v; want %+v", ps, err, want)
	}
	if o, err := s.Offsets(ctx, topic.ID, 0); err != nil || o != (metastore.PartitionOffsets{HighWatermark: 2, LastStableOffset: 2}) {
		t.Fatalf("Offsets after migration = %+v, %v", o, err)
	}
	if _, err := s.SaveTxn(ctx, metastore.Txn{TransactionalID: "tx", State: metastore.TxnEmpty}); err != nil {
		t.Fatal(err)
	}
}
