package control_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/testutil"
)

// testBucket is a fresh prefix of the S3 test server's bucket.
func testBucket(t *testing.T) objstore.Bucket {
	t.Helper()
	s3 := testutil.RequireS3(t)
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	b, err := bucketurl.Open(t.Context(), s3.BucketURL(s3.Endpoint, testutil.RandomName("control-backup-")+"/"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backedUpControl is a control plane on the journal at dbURL that backs
// up to bucket, with small thresholds so that a test sees several
// snapshots and log objects.
func backedUpControl(t *testing.T, dbURL string, bucket objstore.Bucket, opts ...func(*control.Options)) (*control.Server, string, error) {
	t.Helper()
	j, err := journal.Open(t.Context(), dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	o := control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t),
		Backup: control.BackupOptions{Bucket: bucket, TailInterval: 100 * time.Millisecond, SnapshotBytes: 16 << 10}}
	for _, f := range opts {
		f(&o)
	}
	srv, err := control.New(t.Context(), o)
	if err != nil {
		return nil, "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return srv, l.Addr().String(), nil
}

// fill writes topics with configs, segments, an idempotent producer's
// commit, group offsets and metadata, ACLs and a job lease, in many
// batches, and returns the topics to read back.
func fill(t *testing.T, c metastore.Store, rounds int) []metastore.Topic {
	t.Helper()
	ctx := t.Context()
	var topics []metastore.Topic
	for i := range 3 {
		tp, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 4,
			Configs: map[string]string{"retention.ms": fmt.Sprint(1000 * (i + 1)), "cleanup.policy": "delete"}})
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, tp)
	}
	pid, epoch, err := c.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for r := range rounds {
		errc := make(chan error, 8)
		for i := range 8 {
			go func() {
				tp := topics[i%3]
				_, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d-%d", r, i), Size: 200, Batches: []metastore.BatchCommit{
					{TopicID: tp.ID, Partition: int32(i % 4), ByteLength: 100, OffsetCount: int64(1 + i), ProducerID: -1, MaxTimestamp: int64(r)},
					{TopicID: tp.ID, Partition: int32((i + 1) % 4), ByteOffset: 100, ByteLength: 100, OffsetCount: 3, ProducerID: -1},
				}})
				errc <- err
			}()
		}
		for range 8 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: fmt.Sprintf("segments/idem-%d", r), Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: topics[0].ID, Partition: 0, ByteLength: 10, OffsetCount: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: int32(2 * r)},
		}}); err != nil {
			t.Fatal(err)
		}
		var offs []metastore.CommittedOffset
		for _, tp := range topics {
			for p := range tp.Partitions {
				offs = append(offs, metastore.CommittedOffset{TopicID: tp.ID, Partition: p, Offset: int64(r*10) + int64(p), LeaderEpoch: -1, Metadata: "m\xff"})
			}
		}
		if err := c.CommitOffsets(ctx, "g", offs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SaveGroup(ctx, metastore.Group{Name: "g", ProtocolType: "consumer", State: "Stable", Data: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateACLs(ctx, []metastore.ACL{{ResourceType: 2, ResourceName: "t0", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, Permission: 3}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AcquireLease(ctx, "compaction", "agent-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AdvanceLogStart(ctx, topics[1].ID, 0, 5); err != nil {
		t.Fatal(err)
	}
	return topics
}

// waitBackedUp waits until every journaled batch of vcluster is in the
// bucket, and returns the vcluster's stats then.
func waitBackedUp(t *testing.T, srv *control.Server, vcluster string) control.Stats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, ok := srv.Stats(vcluster)
		if ok && st.Backup.LagBatches == 0 && st.Backup.BackedUp > 0 && st.Backup.Snapshot > 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup of %s did not catch up: %+v", vcluster, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// canonical prints an encoded snapshot (restart_test.go) with its maps'
// keys sorted (topic configs are maps, encoded in Go's random order).
func canonical(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := remote.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(v)
}

func dropDatabase(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreFromBucket commits topics, segments, group offsets and
// configs through a control plane that backs up to S3, waits for the
// backup to catch up, drops the journal's database, restores into a new
// one from the bucket alone, and reads everything back through a control
// plane started on it, with the same agent key: the same topic ids,
// offsets, high watermarks, extents, group offsets, configs and times.
func TestRestoreFromBucket(t *testing.T) {
	pg := testutil.RequirePostgres(t)
	bucket := testBucket(t)
	ctx := t.Context()
	dbA := testutil.CreateDatabase(t, pg, "floe_control_")
	srv, addr, err := backedUpControl(t, dbA, bucket)
	if err != nil {
		t.Fatal(err)
	}
	key, err := srv.CreateVCluster(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: addr, VCluster: "prod", Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	topics := fill(t, c, 30)
	st := waitBackedUp(t, srv, "prod")
	// Until there are two snapshots and log objects after the newest,
	// more commits (whose timing decides when snapshots fall).
	for i := 0; st.Backup.SnapshotsWritten < 2 || st.Backup.Snapshot == st.Backup.BackedUp; i++ {
		if i == 20 {
			t.Fatalf("no second snapshot: %+v", st.Backup)
		}
		for r := range 10 {
			if err := c.CommitOffsets(ctx, "more", []metastore.CommittedOffset{{TopicID: topics[0].ID, Partition: 0, Offset: int64(r), LeaderEpoch: -1, Metadata: strings.Repeat("x", 1000)}}); err != nil {
				t.Fatal(err)
			}
		}
		st = waitBackedUp(t, srv, "prod")
	}
	before := snapshot(t, c, topics)
	t.Logf("before the drop: %d batches journaled, backed up to #%d, newest snapshot #%d, %d snapshots and %d log objects written",
		st.Batches, st.Backup.BackedUp, st.Backup.Snapshot, st.Backup.SnapshotsWritten, st.Backup.Written)
	c.Close()
	srv.Close()
	dropDatabase(t, dbA)
	// The newest snapshot is damaged: the restore falls back to the one
	// before and replays the log objects after it.
	var snaps []string
	if err := bucket.List(ctx, "control/prod/", func(o objstore.ObjectInfo) error {
		if strings.Contains(o.Key, "/snapshots/") {
			snaps = append(snaps, o.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(snaps) < 2 {
		t.Fatalf("snapshots in the bucket: %v, want the 2 kept (and a third, if the server closed before deleting it)", snaps)
	}
	newest := snaps[len(snaps)-1]
	raw, err := bucket.GetRange(ctx, newest, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	if err := bucket.Put(ctx, newest, raw); err != nil {
		t.Fatal(err)
	}

	dbB := testutil.CreateDatabase(t, pg, "floe_control_")
	j, err := journal.Open(ctx, dbB, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	done, err := control.Restore(ctx, control.RestoreOptions{Bucket: bucket, Journal: j, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Name != "prod" || done[0].Last < st.Backup.BackedUp || done[0].Replayed == 0 || done[0].Snapshot+done[0].Replayed != done[0].Last {
		t.Fatalf("restored %+v, want prod up to #%d or later from the older snapshot and the log batches after it", done, st.Backup.BackedUp)
	}
	t.Logf("restored: %+v", done[0])
	// Restoring again into a journal that knows it is refused.
	if _, err := control.Restore(ctx, control.RestoreOptions{Bucket: bucket, Journal: j, VCluster: "prod", ID: done[0].FromID}); !errors.Is(err, journal.ErrVClusterExists) {
		t.Fatalf("second restore: %v", err)
	}

	srv2, addr2, err := backedUpControl(t, dbB, bucket)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := srv2.Stats("prod")
	if st2.SnapshotSeq != done[0].Last || st2.Replayed != 0 {
		t.Fatalf("restored vcluster opened from snapshot #%d after replaying %d rows, want #%d and 0", st2.SnapshotSeq, st2.Replayed, done[0].Last)
	}
	c2, err := remote.Open(ctx, remote.Options{Addr: addr2, VCluster: "prod", Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatalf("the agent key does not open the restored vcluster: %v", err)
	}
	defer c2.Close()
	if after := snapshot(t, c2, topics); canonical(t, before) != canonical(t, after) {
		t.Fatalf("restored state differs:\nbefore %s\nafter  %s", canonical(t, before), canonical(t, after))
	}
	// Writes go on where the old journal stopped.
	o, err := c2.Offsets(ctx, topics[2].ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c2.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/after-restore", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topics[2].ID, Partition: 3, ByteLength: 10, OffsetCount: 4, ProducerID: -1},
	}})
	if err != nil || rs[0].Err != nil || rs[0].BaseOffset != o.HighWatermark {
		t.Fatalf("commit after restore: %+v, %v; want base offset %d", rs, err, o.HighWatermark)
	}
	// And the restored vcluster backs up under its new id, from which a
	// second restart opens.
	st2 = waitBackedUp(t, srv2, "prod")
	if st2.Backup.BackedUp <= done[0].Last {
		t.Fatalf("restored vcluster's backup did not move: %+v", st2.Backup)
	}
	// The bucket now holds two incarnations of prod: a restore must be
	// told which.
	infos, err := control.ListBackups(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "prod" || infos[1].Name != "prod" {
		t.Fatalf("listed %+v, want two incarnations of prod", infos)
	}
	for _, in := range infos {
		if in.ID == done[0].ID && (in.Last < st2.Backup.BackedUp || in.Snapshots[0] != done[0].Last) {
			t.Errorf("restored incarnation listed %+v, want its first snapshot #%d and up to #%d", in, done[0].Last, st2.Backup.BackedUp)
		}
	}
	j3, err := journal.Open(ctx, testutil.CreateDatabase(t, pg, "floe_control_"), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j3.Close()
	if _, err := control.Restore(ctx, control.RestoreOptions{Bucket: bucket, Journal: j3, VCluster: "prod"}); !errors.Is(err, control.ErrAmbiguousBackup) {
		t.Fatalf("restore of a name with two incarnations and no id: %v", err)
	}
}

// TestOpenFromSnapshot checks that a process taking over a vcluster loads
// its newest snapshot from the bucket and replays only the journal rows
// after it, to the same state.
func TestOpenFromSnapshot(t *testing.T) {
	pg := testutil.RequirePostgres(t)
	bucket := testBucket(t)
	ctx := t.Context()
	db := testutil.CreateDatabase(t, pg, "floe_control_")
	srv, addr, err := backedUpControl(t, db, bucket)
	if err != nil {
		t.Fatal(err)
	}
	key, err := srv.CreateVCluster(ctx, "snap")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: addr, VCluster: "snap", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	topics := fill(t, c, 30)
	st := waitBackedUp(t, srv, "snap")
	// More after the newest snapshot, not necessarily in the bucket yet.
	if _, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "late", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	late, err := c.Topic(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	topics = append(topics, late)
	before := snapshot(t, c, topics)
	c.Close()
	control.Crash(srv) // the lease is not released: it expires

	// Without a warm standby, which would take over from its own state.
	srv2, addr2, err := backedUpControl(t, db, bucket, func(o *control.Options) { o.StandbyInterval = -1 })
	if err != nil {
		t.Fatal(err)
	}
	var st2 control.Stats
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if st2, ok = srv2.Stats("snap"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not taken over")
		}
		time.Sleep(100 * time.Millisecond)
	}
	j, err := journal.Open(ctx, db, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	total, err := j.LastSeq(ctx, "snap")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("taken over from snapshot #%d, replaying %d of %d journal rows", st2.SnapshotSeq, st2.Replayed, total)
	if st2.SnapshotSeq < st.Backup.Snapshot || st2.SnapshotSeq == 0 || st2.SnapshotSeq+st2.Replayed != total {
		t.Fatalf("opened from snapshot #%d replaying %d rows; want the newest snapshot (#%d or later) and the %d rows after it",
			st2.SnapshotSeq, st2.Replayed, st.Backup.Snapshot, total-st2.SnapshotSeq)
	}
	c2, err := remote.Open(ctx, remote.Options{Addr: addr2, VCluster: "snap", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if after := snapshot(t, c2, topics); canonical(t, before) != canonical(t, after) {
		t.Fatalf("state after opening from the snapshot differs:\nbefore %s\nafter  %s", canonical(t, before), canonical(t, after))
	}
}

// TestBackupAheadOfJournal: a journal that lost its last rows (restored
// to an earlier point) while the bucket holds them is refused, rather
// than served with a history that forks from the backup.
func TestBackupAheadOfJournal(t *testing.T) {
	pg := testutil.RequirePostgres(t)
	bucket := testBucket(t)
	ctx := t.Context()
	db := testutil.CreateDatabase(t, pg, "floe_control_")
	srv, addr, err := backedUpControl(t, db, bucket)
	if err != nil {
		t.Fatal(err)
	}
	key, err := srv.CreateVCluster(ctx, "ahead")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: addr, VCluster: "ahead", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, c, 5)
	st := waitBackedUp(t, srv, "ahead")
	c.Close()
	srv.Close()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DELETE FROM floe_control_journal WHERE vcluster = 'ahead' AND seq > $1`, st.Backup.BackedUp-2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := backedUpControl(t, db, bucket); !errors.Is(err, control.ErrBackupAhead) {
		t.Fatalf("opening a journal behind its backup: %v, want ErrBackupAhead", err)
	}
}

// TestTrimJournal: with TrimJournal, the journal's rows up to the oldest
// kept snapshot are deleted once it reads back from the bucket; a
// restart opens from the bucket to the same state, and a control process
// without the bucket refuses the trimmed vcluster instead of starting it
// empty.
func TestTrimJournal(t *testing.T) {
	pg := testutil.RequirePostgres(t)
	bucket := testBucket(t)
	ctx := t.Context()
	db := testutil.CreateDatabase(t, pg, "floe_control_")
	trim := func(o *control.Options) { o.Backup.TrimJournal = true }
	srv, addr, err := backedUpControl(t, db, bucket, trim)
	if err != nil {
		t.Fatal(err)
	}
	key, err := srv.CreateVCluster(ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: addr, VCluster: "trim", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	topics := fill(t, c, 20)
	var st control.Stats
	for i := 0; ; i++ {
		if st, _ = srv.Stats("trim"); st.Backup.Trimmed > 0 {
			break
		}
		if i == 20 {
			t.Fatalf("journal not trimmed: %+v", st.Backup)
		}
		for r := range 10 {
			if err := c.CommitOffsets(ctx, "more", []metastore.CommittedOffset{{TopicID: topics[0].ID, Partition: 0, Offset: int64(r), LeaderEpoch: -1, Metadata: strings.Repeat("x", 1000)}}); err != nil {
				t.Fatal(err)
			}
		}
		waitBackedUp(t, srv, "trim")
	}
	before := snapshot(t, c, topics)
	c.Close()
	srv.Close()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var first, base int64
	if err := conn.QueryRow(ctx, `SELECT COALESCE(min(seq), 0) FROM floe_control_journal WHERE vcluster = 'trim'`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT base_seq FROM floe_control_vclusters WHERE name = 'trim'`).Scan(&base); err != nil {
		t.Fatal(err)
	}
	t.Logf("trimmed up to #%d: first row #%d, base #%d", st.Backup.Trimmed, first, base)
	if base < st.Backup.Trimmed || (first != 0 && first != base+1) {
		t.Fatalf("after trimming to #%d: first row #%d, base_seq %d", st.Backup.Trimmed, first, base)
	}
	// Without the bucket, the trimmed vcluster cannot be rebuilt: refused.
	j, err := journal.Open(ctx, db, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if s, err := control.New(ctx, control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t)}); err == nil {
		s.Close()
		t.Fatal("a control process without the bucket opened a trimmed journal")
	}
	srv2, addr2, err := backedUpControl(t, db, bucket, trim)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := remote.Open(ctx, remote.Options{Addr: addr2, VCluster: "trim", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if after := snapshot(t, c2, topics); canonical(t, before) != canonical(t, after) {
		t.Fatalf("state after a trimmed journal's restart differs:\nbefore %s\nafter  %s", canonical(t, before), canonical(t, after))
	}
	if st2, _ := srv2.Stats("trim"); st2.SnapshotSeq < base {
		t.Fatalf("opened from snapshot #%d, below the journal's base #%d", st2.SnapshotSeq, base)
	}
}

// TestBackupAfterBucketOutage: while the bucket refuses every upload, the
// batches waiting for it outgrow what a vcluster holds in memory; once
// the bucket answers again, the backup reads them back from the journal
// and catches up, and a restore from it has everything.
func TestBackupAfterBucketOutage(t *testing.T) {
	control.SetMaxPendingBytes(t, 8<<10)
	pg := testutil.RequirePostgres(t)
	bucket := faulty.New(testBucket(t))
	ctx := t.Context()
	db := testutil.CreateDatabase(t, pg, "floe_control_")
	srv, addr, err := backedUpControl(t, db, bucket)
	if err != nil {
		t.Fatal(err)
	}
	key, err := srv.CreateVCluster(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: addr, VCluster: "outage", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	topics := fill(t, c, 5)
	waitBackedUp(t, srv, "outage")
	bucket.FailNext(faulty.Put, 1<<30, nil)
	for r := range 40 {
		if err := c.CommitOffsets(ctx, "outage", []metastore.CommittedOffset{{TopicID: topics[1].ID, Partition: 2, Offset: int64(r), LeaderEpoch: -1, Metadata: strings.Repeat("y", 1000)}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // a few upload attempts
	st, _ := srv.Stats("outage")
	t.Logf("during the outage: %+v", st.Backup)
	if st.Backup.Failures == 0 || st.Backup.LagBatches < 40 || st.Backup.Lag <= 0 {
		t.Fatalf("during the outage: %+v, want failures and a lag of at least 40 batches", st.Backup)
	}
	bucket.FailNext(faulty.Put, 0, nil)
	st = waitBackedUp(t, srv, "outage")
	before := snapshot(t, c, topics)
	c.Close()
	srv.Close()
	dropDatabase(t, db)
	db2 := testutil.CreateDatabase(t, pg, "floe_control_")
	j, err := journal.Open(ctx, db2, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	done, err := control.Restore(ctx, control.RestoreOptions{Bucket: bucket, Journal: j, VCluster: "outage", Logger: testutil.Logger(t)})
	if err != nil || len(done) != 1 || done[0].Last < st.Backup.BackedUp {
		t.Fatalf("restore: %+v, %v; want up to #%d", done, err, st.Backup.BackedUp)
	}
	_, addr2, err := backedUpControl(t, db2, bucket)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := remote.Open(ctx, remote.Options{Addr: addr2, VCluster: "outage", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if after := snapshot(t, c2, topics); canonical(t, before) != canonical(t, after) {
		t.Fatalf("restored state differs:\nbefore %s\nafter  %s", canonical(t, before), canonical(t, after))
	}
}
