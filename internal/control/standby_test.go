package control_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/testutil"
)

// startControlOpts is startControl with a lease TTL and options.
func startControlOpts(t *testing.T, dbURL string, ttl time.Duration, set func(*control.Options)) *controlPlane {
	t.Helper()
	j, err := journal.Open(t.Context(), dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	opts := control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t), LeaseTTL: ttl}
	if set != nil {
		set(&opts)
	}
	srv, err := control.New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &controlPlane{dbURL: dbURL, server: srv, addr: l.Addr().String()}
}

// lastSeq is the journal's last batch of vcluster.
func lastSeq(t *testing.T, dbURL, vcluster string) int64 {
	t.Helper()
	j, err := journal.Open(t.Context(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	last, err := j.LastSeq(t.Context(), vcluster)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// waitStandby waits (at most 30 s) until cp's warm standby of vcluster
// has applied the journal up to at least seq, and returns its state.
func waitStandby(t *testing.T, cp *controlPlane, vcluster string, seq int64) (*embedded.Store, int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, got, ok := control.StandbyState(cp.server, vcluster)
		if ok && got >= seq {
			return st, got
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby of %s: ok %v at #%d, want #%d within 30s", vcluster, ok, got, seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateBytes is every bucket, key and value of an embedded state, and
// its applied sequence number.
func stateBytes(t *testing.T, st *embedded.Store) []byte {
	t.Helper()
	sn, err := st.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var out bytes.Buffer
	fmt.Fprintf(&out, "seq %d\n", sn.AppliedSeq())
	err = sn.ForEach(func(bucket, key, value []byte) error {
		fmt.Fprintf(&out, "%q %q %q\n", bucket, key, value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestStandbyTailsLeader writes every kind of state through a leader and
// checks that a second process's warm standby, which only tails the
// journal, holds the same state: the same reads, byte for byte, and the
// same keys and values in its store.
func TestStandbyTailsLeader(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	a := startControlTTL(t, dbURL, ttl)
	key, err := a.server.CreateVCluster(ctx, "warm")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlOpts(t, dbURL, ttl, func(o *control.Options) { o.StandbyInterval = 50 * time.Millisecond })
	c := a.client(t, "warm", key)
	// The standby starts on the takeover loop's tick (TTL/4) and tails
	// what is written while it runs.
	waitStandby(t, b, "warm", 0)
	topics, _, _ := writeWorkload(t, c)
	if st, _ := a.server.Stats("warm"); st.SlowBatches == 0 {
		t.Fatalf("no batch was applied one by one: %v", st)
	}
	// Reading the cluster secret the first time creates it (a journaled
	// command): read everything through the leader before comparing.
	viaLeader := snapshot(t, c, topics)
	last := lastSeq(t, dbURL, "warm")
	standby, seq := waitStandby(t, b, "warm", last)
	if !control.PauseStandby(b.server, "warm", true) {
		t.Fatal("the standby went away")
	}
	t.Logf("standby at #%d of %d batches", seq, last)
	if seq != last {
		t.Fatalf("standby at #%d, the journal ends at #%d", seq, last)
	}
	leader, ok := control.LeaderState(a.server, "warm")
	if !ok {
		t.Fatal("the leader does not serve the vcluster")
	}
	// Every key and value of both states.
	want, got := stateBytes(t, leader), stateBytes(t, standby)
	if !bytes.Equal(want, got) {
		wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
		for i := range min(len(wl), len(gl)) {
			if !bytes.Equal(wl[i], gl[i]) {
				t.Fatalf("standby's state differs from the leader's at line %d of %d/%d:\nleader  %s\nstandby %s", i, len(wl), len(gl), wl[i], gl[i])
			}
		}
		t.Fatalf("standby's state differs from the leader's: %d lines, leader %d", len(gl), len(wl))
	}
	t.Logf("states equal: %d bytes of keys and values", len(want))
	// The reads the leader answered its agent, and the standby's state
	// read directly (ClusterSecret reads without writing once the secret
	// exists).
	if got := snapshot(t, standby, topics); !bytes.Equal(viaLeader, got) {
		t.Fatalf("standby's reads differ from the leader's:\nleader  %x\nstandby %x", viaLeader, got)
	}
	// A standby serves no agent.
	if _, err := remote.Open(ctx, remote.Options{Addr: b.addr, VCluster: "warm", Key: key}); !errors.Is(err, remote.ErrNotLeader) {
		t.Fatalf("client of the standby: %v, want ErrNotLeader", err)
	}
}

// ack is an acknowledged segment commit: its object and base offset.
type ack struct {
	object string
	base   int64
}

// commitLoad commits segments through c from 4 goroutines, each under a
// new object name, until stop is called (at most 100,000 each).
type commitLoad struct {
	mu     sync.Mutex
	acks   []ack
	failed int
	stopCh chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

func startCommits(t *testing.T, c metastore.Store, topic metastore.Topic, prefix string) *commitLoad {
	ld := &commitLoad{stopCh: make(chan struct{})}
	ctx := t.Context()
	for w := range 4 {
		ld.wg.Go(func() {
			for i := range 100_000 {
				select {
				case <-ld.stopCh:
					return
				default:
				}
				obj := fmt.Sprintf("segments/%s-%d-%d", prefix, w, i)
				rs, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: obj, Size: 10,
					Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
				ld.mu.Lock()
				if err == nil && rs[0].Err == nil {
					ld.acks = append(ld.acks, ack{obj, rs[0].BaseOffset})
				} else {
					ld.failed++
				}
				ld.mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	t.Cleanup(ld.stop)
	return ld
}

func (ld *commitLoad) stop() {
	ld.once.Do(func() { close(ld.stopCh) })
	ld.wg.Wait()
}

func (ld *commitLoad) acked() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return len(ld.acks)
}

// checkAcks checks that every acknowledged commit is in the topic's
// extents once, at the offset it was acknowledged at, and that offsets
// are contiguous.
func checkAcks(t *testing.T, c metastore.Store, topic metastore.Topic, acks []ack) {
	t.Helper()
	es, err := c.Extents(t.Context(), topic.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]int64{}
	next := int64(0)
	for _, e := range es {
		if _, dup := at[e.Object]; dup {
			t.Fatalf("object %s committed twice", e.Object)
		}
		if e.BaseOffset != next {
			t.Fatalf("extent of %s at %d, want %d: offsets not contiguous", e.Object, e.BaseOffset, next)
		}
		next = e.EndOffset
		at[e.Object] = e.BaseOffset
	}
	for _, k := range acks {
		base, ok := at[k.object]
		if !ok {
			t.Fatalf("acknowledged commit %s lost", k.object)
		}
		if base != k.base {
			t.Fatalf("acknowledged commit %s at offset %d, now at %d", k.object, k.base, base)
		}
	}
}

// waitServed waits (at most 10 TTLs) until cp serves vcluster and
// returns how long that took since from.
func waitServed(t *testing.T, cp *controlPlane, vcluster string, from time.Time, ttl time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * ttl)
	for {
		if _, ok := cp.server.Stats(vcluster); ok {
			return time.Since(from)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not taken over %v after the leader died", vcluster, 10*ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstSeqOfEpoch is the first batch the vcluster's newest leader
// appended (0: none yet).
func firstSeqOfEpoch(t *testing.T, dbURL, vcluster string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var first int64
	err = conn.QueryRow(t.Context(), `SELECT COALESCE(min(seq), 0) FROM floe_control_journal WHERE vcluster = $1
		AND epoch = (SELECT epoch FROM floe_control_leases WHERE vcluster = $1)`, vcluster).Scan(&first)
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// TestStandbyTakeover kills a leader under load while a second process
// keeps a warm standby: the standby takes over replaying only the rows
// after its state (Stats.StandbySeq, Stats.Replayed), and every
// acknowledged commit is there once, at its offset.
func TestStandbyTakeover(t *testing.T) {
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	tk := warmTakeoverUnderLoad(t, dbURL, nil)
	if tk.took < tk.ttl/2 {
		t.Fatalf("taken over after %v: before the lease (TTL %v) could expire", tk.took, tk.ttl)
	}
	checkAcks(t, tk.c, tk.topic, tk.ld.acks)
}

// takeover is what warmTakeoverUnderLoad leaves for its test to check
// further: the two processes (a killed), the client, its topic and load
// (stopped), and the new leader's figures.
type takeover struct {
	ttl   time.Duration
	a, b  *controlPlane
	key   string
	c     *remote.Client
	topic metastore.Topic
	ld    *commitLoad
	old   control.Stats // a's, just before it was killed
	st    control.Stats // b's, after the takeover
	took  time.Duration
	first int64 // the new leader's first journal row
}

// warmTakeoverUnderLoad starts two processes on dbURL (set, if not nil,
// adjusts both), a vcluster "ha" led by the first and a commit load,
// waits for the second's warm standby, kills the leader and waits until
// the standby serves and 20 more commits are acknowledged. It fails the
// test unless the takeover was by the warm standby, from where its state
// was, replaying few rows.
func warmTakeoverUnderLoad(t *testing.T, dbURL string, set func(*control.Options)) *takeover {
	t.Helper()
	const ttl = 2 * time.Second
	if set == nil {
		set = func(*control.Options) {}
	}
	ctx := t.Context()
	tk := &takeover{ttl: ttl}
	tk.a = startControlOpts(t, dbURL, ttl, set)
	key, err := tk.a.server.CreateVCluster(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}
	tk.key = key
	tk.b = startControlOpts(t, dbURL, ttl, set) // the default interval
	c, err := remote.Open(ctx, remote.Options{Addr: tk.b.addr + "," + tk.a.addr, VCluster: "ha", Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tk.c = c
	if tk.topic, err = c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	tk.ld = startCommits(t, c, tk.topic, "x")
	time.Sleep(2 * ttl)
	if _, _, ok := control.StandbyState(tk.b.server, "ha"); !ok {
		t.Fatal("no warm standby after 2 TTLs")
	}
	if tk.ld.acked() == 0 {
		t.Fatal("no commit acknowledged by the leader")
	}

	tk.old, _ = tk.a.server.Stats("ha")
	crashed := time.Now()
	control.Crash(tk.a.server)
	tk.took = waitServed(t, tk.b, "ha", crashed, ttl)
	for n := tk.ld.acked(); tk.ld.acked() < n+20; {
		if time.Since(crashed) > 10*ttl {
			t.Fatalf("no commits through the new leader: %d acknowledged", tk.ld.acked())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tk.ld.stop()
	tk.st, _ = tk.b.server.Stats("ha")
	tk.first = firstSeqOfEpoch(t, dbURL, "ha")
	st := tk.st
	t.Logf("taken over %v after the leader died (TTL %v): standby at #%d, %d rows replayed, new leader appends from #%d; old leader backed up to #%d (snapshot #%d); %d commits acknowledged, %d failed",
		tk.took.Round(time.Millisecond), ttl, st.StandbySeq, st.Replayed, tk.first, tk.old.Backup.BackedUp, tk.old.Backup.Snapshot, len(tk.ld.acks), tk.ld.failed)
	if st.StandbySeq == 0 {
		t.Fatalf("not taken over by the warm standby: %+v", st)
	}
	if st.StandbySeq+st.Replayed != tk.first-1 {
		t.Fatalf("standby at #%d replayed %d rows, but the new leader appended from #%d", st.StandbySeq, st.Replayed, tk.first)
	}
	if st.Replayed*10 > st.StandbySeq {
		t.Fatalf("the takeover replayed %d rows after the standby's #%d: not warm", st.Replayed, st.StandbySeq)
	}
	return tk
}

// TestStandbyAppliesRowsAfterLastPoll stops the standby's polls, lets
// the leader append more, and kills it: the standby must apply those
// rows after taking the lease and before serving.
func TestStandbyAppliesRowsAfterLastPoll(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	a := startControlTTL(t, dbURL, ttl)
	key, err := a.server.CreateVCluster(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlOpts(t, dbURL, ttl, func(o *control.Options) { o.StandbyInterval = 50 * time.Millisecond })
	c := a.client(t, "late", key)
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	var acks []ack
	commit := func(i int) {
		obj := fmt.Sprintf("segments/%d", i)
		rs, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: obj, Size: 10,
			Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
		if err != nil || rs[0].Err != nil {
			t.Fatalf("commit %d: %v %+v", i, err, rs)
		}
		acks = append(acks, ack{obj, rs[0].BaseOffset})
	}
	for i := range 20 {
		commit(i)
	}
	_, seq := waitStandby(t, b, "late", lastSeq(t, dbURL, "late"))
	control.PauseStandby(b.server, "late", true)
	for i := 20; i < 70; i++ { // one row each: sequential
		commit(i)
	}
	last := lastSeq(t, dbURL, "late")
	if _, now, _ := control.StandbyState(b.server, "late"); now != seq || last < seq+50 {
		t.Fatalf("paused standby at #%d (was #%d), journal at #%d", now, seq, last)
	}
	crashed := time.Now()
	control.Crash(a.server)
	took := waitServed(t, b, "late", crashed, ttl)
	st, _ := b.server.Stats("late")
	t.Logf("taken over %v after the leader died: standby at #%d, %d rows replayed, journal at #%d", took.Round(time.Millisecond), st.StandbySeq, st.Replayed, last)
	if st.StandbySeq != seq || st.Replayed != last-seq {
		t.Fatalf("standby took over at #%d replaying %d rows, want #%d and %d", st.StandbySeq, st.Replayed, seq, last-seq)
	}
	cb := b.client(t, "late", key)
	checkAcks(t, cb, topic, acks)
	if o, err := cb.Offsets(ctx, topic.ID, 0); err != nil || o.HighWatermark != int64(len(acks)) {
		t.Fatalf("high watermark %+v (%v), want %d", o, err, len(acks))
	}
	// And it appends after them.
	rs, err := cb.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/after", Size: 10,
		Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
	if err != nil || rs[0].Err != nil || rs[0].BaseOffset != int64(len(acks)) {
		t.Fatalf("commit after the takeover: %v %+v", err, rs)
	}
}

// TestStandbyTakeoverTime measures two takeovers of one vcluster in one
// run, after a journal of a few thousand batches: by a warm standby, then
// by a process without one (StandbyInterval < 0), which replays the
// whole journal. Both wait for the dead leader's lease to expire.
func TestStandbyTakeoverTime(t *testing.T) { standbyTakeoverTime(t, nil) }

// standbyTakeoverTime is TestStandbyTakeoverTime; with a bucket (every
// process backing up to it), the process without a standby opens from
// the newest snapshot there and replays the rows after it.
func standbyTakeoverTime(t *testing.T, bucket objstore.Bucket) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	opts := func(interval time.Duration) func(*control.Options) {
		return func(o *control.Options) {
			o.StandbyInterval = interval
			if bucket != nil {
				o.Backup = control.BackupOptions{Bucket: bucket, SnapshotBytes: 256 << 10}
			}
		}
	}
	a := startControlOpts(t, dbURL, ttl, opts(0))
	key, err := a.server.CreateVCluster(ctx, "timed")
	if err != nil {
		t.Fatal(err)
	}
	warm := startControlOpts(t, dbURL, ttl, opts(0))
	c, err := remote.Open(ctx, remote.Options{Addr: a.addr, VCluster: "timed", Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Load: 4 committers until the journal holds 4,000 batches (at most
	// 90 s: slower with -race and a bucket).
	const rows = 4000
	ld := startCommits(t, c, topic, "load")
	loadStart := time.Now()
	for lastSeq(t, dbURL, "timed") < rows {
		if time.Since(loadStart) > 90*time.Second {
			t.Fatalf("journal at #%d after 90s, want %d batches", lastSeq(t, dbURL, "timed"), rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ld.stop()
	last := lastSeq(t, dbURL, "timed")
	waitStandby(t, warm, "timed", last)
	var snap int64
	if bucket != nil {
		snap = waitBackedUp(t, a.server, "timed").Backup.Snapshot
	}

	crashed := time.Now()
	control.Crash(a.server)
	warmTook := waitServed(t, warm, "timed", crashed, ttl)
	ws, _ := warm.server.Stats("timed")
	if bucket != nil {
		// The new leader's backup catches up (its first snapshot too),
		// so that the next open has a snapshot near the journal's end.
		waitBackedUp(t, warm.server, "timed")
	}

	cold := startControlOpts(t, dbURL, ttl, opts(-1))
	time.Sleep(ttl / 2) // its takeover loop finds the lease held at least once
	if _, _, ok := control.StandbyState(cold.server, "timed"); ok {
		t.Fatal("a process with StandbyInterval < 0 keeps a standby")
	}
	crashed = time.Now()
	control.Crash(warm.server)
	coldTook := waitServed(t, cold, "timed", crashed, ttl)
	cs, _ := cold.server.Stats("timed")

	t.Logf("journal of %d batches (%d commits, TTL %v, bucket %v, newest snapshot #%d): warm standby took over %v after the kill (open %v, %d rows replayed after its #%d); without one %v (open %v, from snapshot #%d, %d rows replayed)",
		last, len(ld.acks), ttl, bucket != nil, snap, warmTook.Round(time.Millisecond), ws.Open.Round(time.Millisecond), ws.Replayed, ws.StandbySeq,
		coldTook.Round(time.Millisecond), cs.Open.Round(time.Millisecond), cs.SnapshotSeq, cs.Replayed)
	if ws.StandbySeq != last || ws.Replayed != 0 {
		t.Fatalf("warm takeover: standby at #%d replayed %d rows, want #%d and 0", ws.StandbySeq, ws.Replayed, last)
	}
	if cs.StandbySeq != 0 || cs.SnapshotSeq+cs.Replayed != last {
		t.Fatalf("cold takeover: standby #%d, from snapshot #%d, replayed %d rows, want no standby and %d rows in all", cs.StandbySeq, cs.SnapshotSeq, cs.Replayed, last)
	}
	if (bucket != nil) != (cs.SnapshotSeq > 0) {
		t.Fatalf("cold takeover from snapshot #%d, with a bucket %v", cs.SnapshotSeq, bucket != nil)
	}
	cc := cold.client(t, "timed", key)
	checkAcks(t, cc, topic, ld.acks)
}

// TestStandbyFallsBehind makes a standby fall more batches behind the
// journal than StandbyMaxLag allows: it drops its state, and the takeover
// after the leader is killed opens the vcluster the ordinary way,
// replaying the whole journal, every acknowledged commit there once.
func TestStandbyFallsBehind(t *testing.T) {
	const ttl = 2 * time.Second
	control.SetStandbyPollRows(t, 2) // the lag is checked after a full poll
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	a := startControlTTL(t, dbURL, ttl)
	key, err := a.server.CreateVCluster(ctx, "behind")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlOpts(t, dbURL, ttl, func(o *control.Options) {
		o.StandbyInterval = 50 * time.Millisecond
		o.StandbyMaxLag = 5
	})
	c := a.client(t, "behind", key)
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	var acks []ack
	commit := func(i int) {
		obj := fmt.Sprintf("segments/%d", i)
		rs, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: obj, Size: 10,
			Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
		if err != nil || rs[0].Err != nil {
			t.Fatalf("commit %d: %v %+v", i, err, rs)
		}
		acks = append(acks, ack{obj, rs[0].BaseOffset})
	}
	for i := range 3 {
		commit(i)
	}
	waitStandby(t, b, "behind", lastSeq(t, dbURL, "behind"))
	control.PauseStandby(b.server, "behind", true)
	for i := 3; i < 23; i++ { // 20 rows: more than StandbyMaxLag behind
		commit(i)
	}
	control.PauseStandby(b.server, "behind", false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, ok := control.StandbyState(b.server, "behind"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a standby 20 batches behind (max 5) kept its state for 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	last := lastSeq(t, dbURL, "behind")
	crashed := time.Now()
	control.Crash(a.server)
	took := waitServed(t, b, "behind", crashed, ttl)
	st, _ := b.server.Stats("behind")
	t.Logf("taken over %v after the leader died, without the dropped standby: %d rows replayed of %d", took.Round(time.Millisecond), st.Replayed, last)
	if st.StandbySeq != 0 || st.Replayed != last {
		t.Fatalf("takeover from standby #%d replaying %d rows, want a whole replay of %d", st.StandbySeq, st.Replayed, last)
	}
	checkAcks(t, b.client(t, "behind", key), topic, acks)
}

// TestStandbyOfDeletedVCluster deletes a vcluster and creates it again
// under the same name while another process stands by for it: the
// standby's state is of the old incarnation, with more batches than the
// new one's journal, and must not be served after a takeover.
func TestStandbyOfDeletedVCluster(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	a := startControlTTL(t, dbURL, ttl)
	key, err := a.server.CreateVCluster(ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlOpts(t, dbURL, ttl, func(o *control.Options) { o.StandbyInterval = 50 * time.Millisecond })
	c := a.client(t, "again", key)
	for i := range 10 {
		if _, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("old%d", i), Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	_, oldSeq := waitStandby(t, b, "again", lastSeq(t, dbURL, "again"))
	if err := a.server.DeleteVCluster(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	key, err = a.server.CreateVCluster(ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	c2 := a.client(t, "again", key)
	if _, err := c2.CreateTopic(ctx, metastore.TopicSpec{Name: "new", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	_, seq, kept := control.StandbyState(b.server, "again")
	t.Logf("old incarnation's standby at #%d; after the delete and create: standby kept %v at #%d, new journal at #%d", oldSeq, kept, seq, lastSeq(t, dbURL, "again"))
	crashed := time.Now()
	control.Crash(a.server)
	waitServed(t, b, "again", crashed, ttl)
	st, _ := b.server.Stats("again")
	t.Logf("taken over from standby #%d, %d rows replayed", st.StandbySeq, st.Replayed)
	cb := b.client(t, "again", key)
	topics, err := cb.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 1 || topics[0].Name != "new" {
		t.Fatalf("topics after the takeover: %+v, want only the new incarnation's", topics)
	}
}
