package control_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/testutil"
)

// Warm standbys of vclusters backed up to a bucket (standby.go,
// backup.go adopt): the standby starts from the newest snapshot there,
// and the process that takes over continues the old leader's backups.

// withBucket backs a control plane up to bucket with small thresholds
// (many snapshots and log objects), a standby interval (0: the default)
// and, if trim, --trim-journal.
func withBucket(bucket objstore.Bucket, interval time.Duration, trim bool) func(*control.Options) {
	return func(o *control.Options) {
		o.StandbyInterval = interval
		o.Backup = control.BackupOptions{Bucket: bucket, TailInterval: 100 * time.Millisecond, SnapshotBytes: 16 << 10, TrimJournal: trim}
	}
}

// checkChain checks the bucket's backup of vcluster against its journal
// (no overlapping log objects, every batch the journal's row) and that
// it reaches the journal's last batch.
func checkChain(t *testing.T, bucket objstore.Bucket, dbURL, vcluster string) control.BackupChain {
	t.Helper()
	j, err := journal.Open(t.Context(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ch, err := control.CheckBackupChain(t.Context(), bucket, j, vcluster)
	if err != nil {
		t.Fatalf("backup of %s: %v (snapshots %v, logs %v)", vcluster, err, ch.Snapshots, ch.Logs)
	}
	if last := lastSeq(t, dbURL, vcluster); ch.Reaches != last {
		t.Fatalf("backup of %s reaches #%d, the journal ends at #%d (snapshots %v, logs %v)", vcluster, ch.Reaches, last, ch.Snapshots, ch.Logs)
	}
	return ch
}

// metricValue is the value of a vcluster's metric on cp's collector
// (ok false: not exported).
func metricValue(t *testing.T, cp *controlPlane, name, vcluster string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(control.NewCollector(cp.server))
	return testutil.MetricValue(t, reg, name, "vcluster", vcluster)
}

// sequential commits one segment at a time (one journal row each)
// through c and remembers what was acknowledged.
type sequential struct {
	t     *testing.T
	c     metastore.Store
	topic metastore.Topic
	acks  []ack
}

func (s *sequential) commit(name string) {
	s.t.Helper()
	obj := "segments/" + name
	rs, err := s.c.CommitSegment(s.t.Context(), metastore.SegmentCommit{Object: obj, Size: 10,
		Batches: []metastore.BatchCommit{{TopicID: s.topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
	if err != nil || rs[0].Err != nil {
		s.t.Fatalf("commit %s: %v %+v", name, err, rs)
	}
	s.acks = append(s.acks, ack{obj, rs[0].BaseOffset})
}

// TestBucketStandbyTailsLeader: a standby of a vcluster backed up to a
// bucket starts from its newest snapshot there, tails the journal, and
// holds the leader's state byte for byte; its lag is on /metrics.
func TestBucketStandbyTailsLeader(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	bucket := testBucket(t)
	ctx := t.Context()
	a := startControlOpts(t, dbURL, ttl, withBucket(bucket, 0, false))
	key, err := a.server.CreateVCluster(ctx, "warm")
	if err != nil {
		t.Fatal(err)
	}
	c := a.client(t, "warm", key)
	pre, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "pre", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	for r := range 30 { // about 30 KiB of journal: snapshots
		if err := c.CommitOffsets(ctx, "pre", []metastore.CommittedOffset{{TopicID: pre.ID, Partition: 0, Offset: int64(r), LeaderEpoch: -1, Metadata: strings.Repeat("p", 1000)}}); err != nil {
			t.Fatal(err)
		}
	}
	snap := waitBackedUp(t, a.server, "warm").Backup.Snapshot
	b := startControlOpts(t, dbURL, ttl, withBucket(bucket, 50*time.Millisecond, false))
	waitStandby(t, b, "warm", 0)
	sbs, ok := b.server.Standby("warm")
	t.Logf("standby started from snapshot #%d (the leader's newest was #%d when it started)", sbs.Snapshot, snap)
	if !ok || sbs.Snapshot < snap || sbs.Snapshot == 0 {
		t.Fatalf("standby %+v (%v): want it loaded from the snapshot at #%d or later", sbs, ok, snap)
	}
	topics, _, _ := writeWorkload(t, c)
	topics = append(topics, pre)
	viaLeader := snapshot(t, c, topics)
	last := lastSeq(t, dbURL, "warm")
	standby, seq := waitStandby(t, b, "warm", last)
	if !control.PauseStandby(b.server, "warm", true) {
		t.Fatal("the standby went away")
	}
	if seq != last {
		t.Fatalf("standby at #%d, the journal ends at #%d", seq, last)
	}
	leader, ok := control.LeaderState(a.server, "warm")
	if !ok {
		t.Fatal("the leader does not serve the vcluster")
	}
	if want, got := stateBytes(t, leader), stateBytes(t, standby); !bytes.Equal(want, got) {
		t.Fatalf("standby's state (from snapshot #%d) differs from the leader's: %d bytes of keys and values, leader %d", sbs.Snapshot, len(got), len(want))
	}
	if got := snapshot(t, standby, topics); !bytes.Equal(viaLeader, got) {
		t.Fatalf("standby's reads differ from the leader's:\nleader  %x\nstandby %x", viaLeader, got)
	}
	if lag, ok := metricValue(t, b, "floe_control_vcluster_standby_lag_batches", "warm"); !ok || lag != 0 {
		t.Fatalf("standby lag metric %v (%v) after it caught up, want 0", lag, ok)
	}
	// The same state, the same size in memory on both processes.
	lb, lok := metricValue(t, a, "floe_control_vcluster_state_bytes", "warm")
	sb, sok := metricValue(t, b, "floe_control_vcluster_standby_state_bytes", "warm")
	var scanned int
	sn, err := leader.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	sn.ForEach(func(_, k, v []byte) error {
		scanned += len(k) + len(v)
		return nil
	})
	sn.Close()
	if !lok || !sok || lb != sb || lb != float64(scanned) {
		t.Fatalf("state bytes: leader %v (%v), standby %v (%v); its keys and values in a snapshot: %d bytes", lb, lok, sb, sok, scanned)
	}
	// Behind: 20 rows, of which one poll of 5 applies 5.
	control.SetStandbyPollRows(t, 5)
	for r := range 20 {
		if err := c.CommitOffsets(ctx, "pre", []metastore.CommittedOffset{{TopicID: pre.ID, Partition: 0, Offset: int64(100 + r), LeaderEpoch: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	last = lastSeq(t, dbURL, "warm")
	if !control.PollStandby(b.server, "warm") {
		t.Fatal("the standby's poll failed")
	}
	lag, ok := metricValue(t, b, "floe_control_vcluster_standby_lag_batches", "warm")
	sbs, _ = b.server.Standby("warm")
	t.Logf("after one poll of 5 rows with 20 waiting: standby at #%d, lag %v batches (journal at #%d)", sbs.Seq, lag, last)
	if !ok || sbs.Seq != seq+5 || int64(lag) != last-sbs.Seq || sbs.Behind != last-sbs.Seq {
		t.Fatalf("standby %+v, lag metric %v (%v); want #%d and %d batches behind", sbs, lag, ok, seq+5, last-seq-5)
	}
	if s, ok := metricValue(t, b, "floe_control_vcluster_standby_seq", "warm"); !ok || int64(s) != sbs.Seq {
		t.Fatalf("standby seq metric %v (%v), want %d", s, ok, sbs.Seq)
	}
	// A standby serves no agent.
	if _, err := remote.Open(ctx, remote.Options{Addr: b.addr, VCluster: "warm", Key: key}); err == nil {
		t.Fatal("a standby served an agent")
	}
}

// TestBucketStandbyTakeoverRestore kills a leader under load while a
// second process keeps a warm standby, both backing up to one bucket:
// the standby takes over replaying only the rows after its state, every
// acknowledged commit is there once at its offset, and its backups
// continue the old leader's without a gap or an overlap (every batch in
// the bucket is the journal's row). After more commits, the journal is
// dropped and the vcluster restored from the bucket alone: every
// acknowledged commit at its offset, the same state.
func TestBucketStandbyTakeoverRestore(t *testing.T) {
	const ttl = 2 * time.Second
	pg := testutil.RequirePostgres(t)
	dbURL := testutil.CreateDatabase(t, pg, "floe_control_")
	bucket := testBucket(t)
	ctx := t.Context()
	// Every snapshot kept: the chain from the first one must run through
	// the takeover.
	tk := warmTakeoverUnderLoad(t, dbURL, func(o *control.Options) {
		withBucket(bucket, 0, false)(o)
		o.Backup.Keep = 1000
	})
	if tk.old.Backup.SnapshotsWritten == 0 {
		t.Fatalf("leader's backup %+v: no snapshot written before it died", tk.old.Backup)
	}
	b, c, topic, ld, key, first := tk.b, tk.c, tk.topic, tk.ld, tk.key, tk.first
	checkAcks(t, c, topic, ld.acks)

	// More commits through the new leader, then its backup catches up.
	ld2 := startCommits(t, c, topic, "y")
	for start := time.Now(); ld2.acked() < 200 && time.Since(start) < 20*time.Second; {
		time.Sleep(50 * time.Millisecond)
	}
	ld2.stop()
	acks := append(append([]ack(nil), ld.acks...), ld2.acks...)
	st := waitBackedUp(t, b.server, "ha")
	if len(ld2.acks) == 0 {
		t.Fatal("no commit acknowledged after the takeover")
	}
	before := snapshot(t, c, []metastore.Topic{topic})
	c.Close()
	last := lastSeq(t, dbURL, "ha")
	b.server.Close()
	// The bucket is listed once the new leader stopped: a snapshot it
	// wrote after an earlier listing would escape the damage below.
	ch := checkChain(t, bucket, dbURL, "ha")
	t.Logf("after %d more commits: backed up to #%d, %d snapshots written by the new leader; bucket: snapshots %v, %d log objects, %d batches compared with the journal",
		len(ld2.acks), st.Backup.BackedUp, st.Backup.SnapshotsWritten, ch.Snapshots, len(ch.Logs), ch.Compared)
	dropDatabase(t, dbURL)
	// Damage every snapshot the new leader wrote: the restore falls back
	// to the old leader's newest and replays the log objects across the
	// takeover.
	var damaged []int64
	for _, s := range ch.Snapshots {
		if s < first {
			continue
		}
		key := fmt.Sprintf("control/ha/%s/snapshots/%020d", ch.ID, s)
		raw, err := bucket.GetRange(ctx, key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 1
		if err := bucket.Put(ctx, key, raw); err != nil {
			t.Fatal(err)
		}
		damaged = append(damaged, s)
	}

	db2 := testutil.CreateDatabase(t, pg, "floe_control_")
	j, err := journal.Open(ctx, db2, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	done, err := control.Restore(ctx, control.RestoreOptions{Bucket: bucket, Journal: j, VCluster: "ha", Logger: testutil.Logger(t)})
	if err != nil || len(done) != 1 || done[0].Last != last || done[0].Snapshot >= first {
		t.Fatalf("restore: %+v, %v; want up to the journal's last batch #%d from a snapshot before the takeover at #%d", done, err, last, first)
	}
	t.Logf("snapshots %v damaged; restored from the bucket alone: %+v", damaged, done[0])
	r := startControlOpts(t, db2, ttl, withBucket(bucket, 0, false))
	cr := r.client(t, "ha", key)
	checkAcks(t, cr, topic, acks)
	if after := snapshot(t, cr, []metastore.Topic{topic}); canonical(t, before) != canonical(t, after) {
		t.Fatalf("restored state differs:\nbefore %s\nafter  %s", canonical(t, before), canonical(t, after))
	}
}

// TestBucketStandbyAppliesRowsAfterLastPoll stops the standby's polls,
// lets the leader append more, and kills it: the standby applies those
// rows after taking the lease, and its backup uploads the batches the
// old leader had not (read back from the journal).
func TestBucketStandbyAppliesRowsAfterLastPoll(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	bucket := testBucket(t)
	ctx := t.Context()
	// The leader uploads its tail every 10 s only: at its death, the
	// bucket lacks its last batches.
	a := startControlOpts(t, dbURL, ttl, func(o *control.Options) {
		withBucket(bucket, 0, false)(o)
		o.Backup.TailInterval = 10 * time.Second
	})
	key, err := a.server.CreateVCluster(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlOpts(t, dbURL, ttl, withBucket(bucket, 50*time.Millisecond, false))
	c := a.client(t, "late", key)
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := &sequential{t: t, c: c, topic: topic}
	for i := range 20 {
		s.commit(fmt.Sprint(i))
	}
	_, seq := waitStandby(t, b, "late", lastSeq(t, dbURL, "late"))
	control.PauseStandby(b.server, "late", true)
	for i := 20; i < 70; i++ {
		s.commit(fmt.Sprint(i))
	}
	last := lastSeq(t, dbURL, "late")
	old, _ := a.server.Stats("late")
	crashed := time.Now()
	control.Crash(a.server)
	took := waitServed(t, b, "late", crashed, ttl)
	st, _ := b.server.Stats("late")
	t.Logf("taken over %v after the leader died: standby at #%d, %d rows replayed, journal at #%d; the old leader had backed up to #%d",
		took.Round(time.Millisecond), st.StandbySeq, st.Replayed, last, old.Backup.BackedUp)
	if st.StandbySeq != seq || st.Replayed != last-seq {
		t.Fatalf("standby took over at #%d replaying %d rows, want #%d and %d", st.StandbySeq, st.Replayed, seq, last-seq)
	}
	if old.Backup.BackedUp >= last {
		t.Fatalf("the old leader had backed up to #%d of #%d: nothing left for the new one", old.Backup.BackedUp, last)
	}
	cb := b.client(t, "late", key)
	checkAcks(t, cb, topic, s.acks)
	s.c = cb
	s.commit("after")
	if s.acks[len(s.acks)-1].base != int64(len(s.acks)-1) {
		t.Fatalf("commit after the takeover at %d, want %d", s.acks[len(s.acks)-1].base, len(s.acks)-1)
	}
	waitBackedUp(t, b.server, "late")
	ch := checkChain(t, bucket, dbURL, "late")
	t.Logf("bucket after the takeover: snapshots %v, log objects %v", ch.Snapshots, ch.Logs)
}

// TestBucketStandbyTrimmedUnder pauses a standby while the leader, with
// --trim-journal, snapshots and trims the journal past the standby's
// state: the standby finds the rows it had not applied gone, loads the
// newest snapshot again and catches up to the leader's state byte for
// byte, then takes over when the leader dies.
func TestBucketStandbyTrimmedUnder(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	bucket := testBucket(t)
	ctx := t.Context()
	a := startControlOpts(t, dbURL, ttl, withBucket(bucket, 0, true))
	key, err := a.server.CreateVCluster(ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	c := a.client(t, "trim", key)
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := &sequential{t: t, c: c, topic: topic}
	for i := range 10 {
		s.commit(fmt.Sprint(i))
	}
	b := startControlOpts(t, dbURL, ttl, withBucket(bucket, 50*time.Millisecond, true))
	_, seq := waitStandby(t, b, "trim", lastSeq(t, dbURL, "trim"))
	control.PauseStandby(b.server, "trim", true)
	var st control.Stats
	for r := 0; ; r++ {
		if st, _ = a.server.Stats("trim"); st.Backup.Trimmed > seq {
			break
		}
		if r == 40 {
			t.Fatalf("journal not trimmed past #%d: %+v", seq, st.Backup)
		}
		for i := range 10 {
			if err := c.CommitOffsets(ctx, "g", []metastore.CommittedOffset{{TopicID: topic.ID, Partition: 0, Offset: int64(i), LeaderEpoch: -1, Metadata: strings.Repeat("x", 1000)}}); err != nil {
				t.Fatal(err)
			}
		}
		s.commit(fmt.Sprintf("r%d", r))
		waitBackedUp(t, a.server, "trim")
	}
	last := lastSeq(t, dbURL, "trim")
	control.PauseStandby(b.server, "trim", false)
	deadline := time.Now().Add(30 * time.Second)
	var sbs control.StandbyStats
	for {
		var ok bool
		sbs, ok = b.server.Standby("trim")
		if ok && sbs.Restarts > 0 && sbs.Seq >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby paused at #%d, journal trimmed to #%d: %+v (%v) after 30s", seq, st.Backup.Trimmed, sbs, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("standby paused at #%d; journal trimmed to #%d, ends at #%d; the standby restarted %d time(s), from snapshot #%d, now at #%d",
		seq, st.Backup.Trimmed, last, sbs.Restarts, sbs.Snapshot, sbs.Seq)
	if sbs.Snapshot < st.Backup.Trimmed {
		t.Fatalf("standby restarted from snapshot #%d, below the trim at #%d", sbs.Snapshot, st.Backup.Trimmed)
	}
	control.PauseStandby(b.server, "trim", true)
	standby, _, ok := control.StandbyState(b.server, "trim")
	leader, ok2 := control.LeaderState(a.server, "trim")
	if !ok || !ok2 {
		t.Fatalf("standby %v, leader %v", ok, ok2)
	}
	if want, got := stateBytes(t, leader), stateBytes(t, standby); !bytes.Equal(want, got) {
		t.Fatalf("restarted standby's state differs from the leader's: %d bytes, leader %d", len(got), len(want))
	}
	control.PauseStandby(b.server, "trim", false)
	crashed := time.Now()
	control.Crash(a.server)
	took := waitServed(t, b, "trim", crashed, ttl)
	st2, _ := b.server.Stats("trim")
	t.Logf("taken over %v after the leader died: standby at #%d, %d rows replayed", took.Round(time.Millisecond), st2.StandbySeq, st2.Replayed)
	if st2.StandbySeq < sbs.Seq {
		t.Fatalf("taken over from standby #%d, want its state (#%d or later)", st2.StandbySeq, sbs.Seq)
	}
	cb := b.client(t, "trim", key)
	checkAcks(t, cb, topic, s.acks)
	s.c = cb
	s.commit("after")
	waitBackedUp(t, b.server, "trim")
	checkChain(t, bucket, dbURL, "trim")
}

// TestBucketStandbyTakeoverTime is TestStandbyTakeoverTime with every
// process backing up to a bucket: the process without a standby opens
// from the newest snapshot there.
func TestBucketStandbyTakeoverTime(t *testing.T) { standbyTakeoverTime(t, testBucket(t)) }
