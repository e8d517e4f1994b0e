package control_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/testutil"
)

// snapshot reads everything the test wrote, encoded, so that two reads
// can be compared byte for byte (times included).
func snapshot(t *testing.T, s metastore.Store, topics []metastore.Topic) []byte {
	t.Helper()
	ctx := t.Context()
	var parts []any
	add := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, v)
	}
	add(s.Topics(ctx))
	for _, tp := range topics {
		for p := range tp.Partitions {
			add(s.Offsets(ctx, tp.ID, p))
			add(s.Extents(ctx, tp.ID, p, 0, 0))
		}
	}
	add(s.FetchOffsets(ctx, "g"))
	add(s.ListGroups(ctx))
	for _, name := range []string{"g", "race"} {
		g, _, err := s.LoadGroup(ctx, name)
		add(g, err)
	}
	add(s.ClusterSecret(ctx))
	acls, v, err := s.ACLs(ctx)
	add(fmt.Sprint(acls, v), err)
	add(s.Leases(ctx))
	raw, err := remote.Marshal(parts)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRestartReplaysJournal stops the control plane, starts another on
// the same journal and address, and checks that it replayed everything
// to the same state (topic ids, offsets, extents, committed offsets,
// times), and that the client that was connected reconnects by itself.
func TestRestartReplaysJournal(t *testing.T) {
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	j, err := journal.Open(t.Context(), dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	start := func(addr string) (*control.Server, string) {
		srv, err := control.New(t.Context(), control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		var l net.Listener
		for i := 0; ; i++ { // the old listener's port may take a moment to free
			l, err = net.Listen("tcp", addr)
			if err == nil || i == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		return srv, l.Addr().String()
	}
	srv, addr := start("127.0.0.1:0")
	ctx := t.Context()
	key, err := srv.CreateVCluster(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: addr, VCluster: "restart", Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	topics, pid, epoch := writeWorkload(t, c)
	if st, _ := srv.Stats("restart"); st.SlowBatches == 0 {
		t.Fatalf("no batch was applied one by one: %v", st)
	}
	before := snapshot(t, c, topics)

	notices := make(chan metastore.CommitNotice, 64)
	stop := c.WatchCommits(func(n metastore.CommitNotice) { notices <- n })
	defer stop()

	srv.Close()
	if _, err := c.Offsets(ctx, topics[0].ID, 0); err == nil {
		t.Fatal("read answered with the control plane down")
	}
	srv2, _ := start(addr)
	defer srv2.Close()

	// The client redials on its next call; retry while the new server
	// comes up.
	deadline := time.Now().Add(20 * time.Second)
	var after []byte
	for {
		_, err := c.Offsets(ctx, topics[0].ID, 0)
		if err == nil {
			after = snapshot(t, c, topics)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("state after replay differs:\nbefore %x\nafter  %x", before, after)
	}
	// Watchers hear "everything changed" after the reconnection.
	select {
	case n := <-notices:
		if n.Partitions != nil {
			t.Errorf("first notice after reconnecting: %+v, want everything", n)
		}
	case <-time.After(5 * time.Second):
		t.Error("no notice after reconnecting")
	}
	// Writes go on after the replay: sequences continue.
	rs, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/after", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topics[0].ID, Partition: 0, ByteLength: 10, OffsetCount: 1, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 2},
	}})
	if err != nil || rs[0].Err != nil {
		t.Fatalf("commit after restart: %v %+v", err, rs)
	}
	// A third start replays that too.
	srv2.Close()
	srv3, addr3 := start("127.0.0.1:0")
	defer srv3.Close()
	c3, err := remote.Open(ctx, remote.Options{Addr: addr3, VCluster: "restart", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	o, err := c3.Offsets(ctx, topics[0].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := rs[0].BaseOffset + 1; o.HighWatermark != want {
		t.Fatalf("high watermark after the second replay %d, want %d", o.HighWatermark, want)
	}
}

// TestFencedLeader checks that a second control process does not take a
// live leader's vcluster, and that the journal's lease fences: a holder
// whose lease was taken (once expired) or released can neither renew
// nor append. TestFailover checks the takeover itself.
func TestFencedLeader(t *testing.T) {
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	j, err := journal.Open(ctx, dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	old := startControl(t, dbURL)
	key, err := old.server.CreateVCluster(ctx, "fenced")
	if err != nil {
		t.Fatal(err)
	}
	c := old.client(t, "fenced", key)
	if _, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "before", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// A second process started on the same journal does not take the
	// vcluster of a live leader: agents pointed at it are told so.
	newer := startControl(t, dbURL)
	if _, err := remote.Open(ctx, remote.Options{Addr: newer.addr, VCluster: "fenced", Key: key}); !errors.Is(err, remote.ErrNotLeader) {
		t.Fatalf("client of a process that does not lead the vcluster: %v, want ErrNotLeader", err)
	}
	if _, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "after", Partitions: 1}); err != nil {
		t.Fatalf("the leader stopped serving when a second process started: %v", err)
	}
	// And the journal itself refuses an append at an old epoch.
	// A lease taken for no time has expired at once: another holder
	// takes it, and the first can neither renew nor append.
	l, err := j.TakeLease(ctx, "other", "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	epoch := l.Epoch
	if _, err := j.TakeLease(ctx, "other", "y", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := j.RenewLease(ctx, "other", epoch, time.Minute); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("renewing a superseded lease: %v", err)
	}
	// A live lease is not taken; renewed, it lasts; released, it is free.
	if _, err := j.TakeLease(ctx, "other", "z", time.Minute); !errors.Is(err, journal.ErrLeaseHeld) {
		t.Fatalf("taking a live lease: %v, want ErrLeaseHeld", err)
	}
	if err := j.RenewLease(ctx, "other", epoch+1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(ctx, "other", epoch, 1, []byte("b")); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("append at a superseded epoch: %v", err)
	}
	if err := j.Append(ctx, "other", epoch+1, 1, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(ctx, "other", epoch+1, 1, []byte("b")); !errors.Is(err, journal.ErrSeqTaken) {
		t.Fatalf("second append at one sequence number: %v", err)
	}
	if err := j.ReleaseLease(ctx, "other", epoch+1); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(ctx, "other", epoch+1, 2, []byte("b")); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("append under a released lease: %v", err)
	}
	if l, err := j.TakeLease(ctx, "other", "z", time.Minute); err != nil || l.Epoch != epoch+2 {
		t.Fatalf("taking a released lease: %+v, %v", l, err)
	}
}

// writeWorkload writes a bit of every kind of state through c: topics,
// concurrent segment commits (batches of several commands), an
// idempotent producer's commit, committed offsets, a group, an ACL, a
// lease, a log start, a deleted topic, and racing creates and saves that
// make batches apply one by one. It returns the topics that exist and
// the producer.
func writeWorkload(t *testing.T, c metastore.Store) (topics []metastore.Topic, pid int64, epoch int16) {
	t.Helper()
	ctx := t.Context()
	for i := range 3 {
		tp, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 4})
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, tp)
	}
	pid, epoch, err := c.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent commits, so that batches hold several commands; every
	// fourth commits its segment in a group with two more
	// (CommitSegments).
	segment := func(name string, i int) metastore.SegmentCommit {
		tp := topics[i%3]
		return metastore.SegmentCommit{Object: "segments/" + name, Size: 200, Batches: []metastore.BatchCommit{
			{TopicID: tp.ID, Partition: int32(i % 4), ByteLength: 100, OffsetCount: 10, ProducerID: -1, MaxTimestamp: int64(i)},
			{TopicID: tp.ID, Partition: int32((i + 1) % 4), ByteOffset: 100, ByteLength: 100, OffsetCount: 3, ProducerID: -1},
		}}
	}
	errc := make(chan error, 40)
	for i := range 40 {
		go func() {
			seg := segment(strconv.Itoa(i), i)
			var err error
			if g, ok := c.(metastore.GroupSequencer); ok && i%4 == 0 {
				_, err = g.CommitSegments(ctx, []metastore.SegmentCommit{seg, segment(fmt.Sprintf("%d-b", i), i+1), segment(fmt.Sprintf("%d-c", i), i+2)})
			} else {
				_, err = c.CommitSegment(ctx, seg)
			}
			errc <- err
		}()
	}
	for range 40 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/idem", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topics[0].ID, Partition: 0, ByteLength: 10, OffsetCount: 2, ProducerID: pid, ProducerEpoch: epoch},
	}}); err != nil {
		t.Fatal(err)
	}
	var offs []metastore.CommittedOffset
	for _, tp := range topics {
		for p := range tp.Partitions {
			offs = append(offs, metastore.CommittedOffset{TopicID: tp.ID, Partition: p, Offset: int64(p) + 1, LeaderEpoch: -1, Metadata: "m\xff"})
		}
	}
	if err := c.CommitOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
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
	if _, err := c.DeleteTopic(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	topics = topics[:2]
	// Commands that fail inside a batch's transaction (a topic that
	// exists, a group version that moved) make the batch apply one by
	// one; the replay must decide them alike.
	errc = make(chan error, 40)
	for i := range 40 {
		go func() {
			var err error
			if i%2 == 0 {
				_, err = c.CreateTopic(ctx, metastore.TopicSpec{Name: "dup", Partitions: 1})
			} else {
				_, err = c.SaveGroup(ctx, metastore.Group{Name: "race", State: "Stable", Data: []byte{byte(i)}})
			}
			errc <- err
		}()
	}
	var failed int
	for range 40 {
		if err := <-errc; errors.Is(err, metastore.ErrTopicExists) || errors.Is(err, metastore.ErrGroupVersionConflict) {
			failed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if failed != 38 {
		t.Fatalf("%d of 40 racing creates and saves failed, want 38", failed)
	}
	dup, err := c.Topic(ctx, "dup")
	if err != nil {
		t.Fatal(err)
	}
	topics = append(topics, dup)
	return topics, pid, epoch
}
