package control_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/testutil"
)

// TestVClusterIsolation shows that a vcluster cannot list, read, write or
// commit in another, even with the other's topic name and topic id, and
// that a key grants only its own vcluster.
func TestVClusterIsolation(t *testing.T) {
	cp := newControl(t)
	ctx := t.Context()
	keyA, err := cp.server.CreateVCluster(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := cp.server.CreateVCluster(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	a := cp.client(t, "tenant-a", keyA)
	b := cp.client(t, "tenant-b", keyB)

	// A's data: a topic, a commit, a group's offsets, a group record.
	topic, err := a.CreateTopic(ctx, metastore.TopicSpec{Name: "orders", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	seg := metastore.SegmentCommit{Object: "segments/a-1", Size: 100, Batches: []metastore.BatchCommit{
		{TopicID: topic.ID, Partition: 0, ByteLength: 100, OffsetCount: 5, ProducerID: -1},
	}}
	if rs, err := a.CommitSegment(ctx, seg); err != nil || rs[0].Err != nil {
		t.Fatalf("A's commit: %v %+v", err, rs)
	}
	if err := a.CommitOffsets(ctx, "payments", []metastore.CommittedOffset{{TopicID: topic.ID, Partition: 0, Offset: 3, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SaveGroup(ctx, metastore.Group{Name: "payments", ProtocolType: "consumer", State: "Stable", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}

	bNotices := make(chan metastore.CommitNotice, 16)
	stop := b.WatchCommits(func(n metastore.CommitNotice) { bNotices <- n })
	defer stop()

	// B, with A's topic name and id.
	if _, err := b.Topic(ctx, "orders"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Errorf("B reads A's topic by name: %v", err)
	}
	if ts, err := b.Topics(ctx); err != nil || len(ts) != 0 {
		t.Errorf("B lists topics %v, %v; want none", ts, err)
	}
	if _, err := b.Offsets(ctx, topic.ID, 0); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Errorf("B reads A's offsets by id: %v", err)
	}
	if es, err := b.Extents(ctx, topic.ID, 0, 0, 0); err == nil && len(es) > 0 {
		t.Errorf("B reads A's extents: %v", es)
	}
	if rs, err := b.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/b-1", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topic.ID, Partition: 0, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
	}}); err == nil && !errors.Is(rs[0].Err, metastore.ErrUnknownTopicOrPartition) {
		t.Errorf("B commits into A's topic id: %+v", rs)
	}
	if err := b.CommitOffsets(ctx, "payments", []metastore.CommittedOffset{{TopicID: topic.ID, Partition: 0, Offset: 1}}); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Errorf("B commits offsets for A's topic id: %v", err)
	}
	if os, err := b.FetchOffsets(ctx, "payments"); err != nil || len(os) != 0 {
		t.Errorf("B fetches A's group offsets: %v, %v", os, err)
	}
	if _, found, err := b.LoadGroup(ctx, "payments"); found || err != nil {
		t.Errorf("B loads A's group: found %v, %v", found, err)
	}
	if gs, err := b.ListGroups(ctx); err != nil || len(gs) != 0 {
		t.Errorf("B lists groups %v, %v", gs, err)
	}
	if _, known, err := b.ObjectSize(ctx, "segments/a-1"); known || err != nil {
		t.Errorf("B knows A's object: %v, %v", known, err)
	}
	if _, err := b.DeleteTopic(ctx, "orders"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Errorf("B deletes A's topic: %v", err)
	}
	bt, err := b.CreateTopic(ctx, metastore.TopicSpec{Name: "orders", Partitions: 1}) // B's own topic of the same name
	if err != nil {
		t.Fatal(err)
	}
	if bt.ID == topic.ID {
		t.Errorf("B's topic got A's id")
	}
	// A's data is untouched and A heard nothing of B.
	if o, err := a.Offsets(ctx, topic.ID, 0); err != nil || o.HighWatermark != 5 {
		t.Errorf("A's offsets after B's attempts: %+v, %v", o, err)
	}
	sa, errA := a.ClusterSecret(ctx)
	sb, errB := b.ClusterSecret(ctx)
	if errA != nil || errB != nil || string(sa) == string(sb) {
		t.Errorf("cluster secrets: A %x (%v), B %x (%v); want two different ones", sa, errA, sb, errB)
	}
	// A's commit was announced before B watched; a new one must not reach B.
	if _, err := a.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/a-2", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topic.ID, Partition: 1, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
	}}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-bNotices:
		for _, tp := range n.Partitions {
			if tp.TopicID == topic.ID {
				t.Errorf("B heard A's commit: %+v", n)
			}
		}
	case <-time.After(300 * time.Millisecond):
	}

	// Keys: B's key does not open A, a wrong key opens nothing, nor does
	// an unknown vcluster; the answers do not tell which was wrong.
	for _, o := range []remote.Options{
		{Addr: cp.addr, VCluster: "tenant-a", Key: keyB},
		{Addr: cp.addr, VCluster: "tenant-a", Key: keyA + "x"},
		{Addr: cp.addr, VCluster: "tenant-c", Key: keyA},
	} {
		o.Logger = testutil.Logger(t)
		c, err := remote.Open(ctx, o)
		if err == nil {
			c.Close()
			t.Errorf("opened %s with a wrong key", o.VCluster)
		} else if !strings.Contains(err.Error(), "unknown virtual cluster or wrong key") {
			t.Errorf("refusal: %v", err)
		}
	}
}
