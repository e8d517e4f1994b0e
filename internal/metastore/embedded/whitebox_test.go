package embedded

import (
	"bytes"
	"math"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/floe-io/floe/internal/metastore"
)

// TestEpochExhaustion plants a producer at the last epoch instead of
// bumping it 32767 times as the contract suite's slow test does.
func TestEpochExhaustion(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	id, _, err := s.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return putProducer(tx.Bucket([]byte(bucketProducers)), id, math.MaxInt16)
	})
	if err != nil {
		t.Fatal(err)
	}
	fresh, epoch, err := s.InitProducerID(ctx, id, math.MaxInt16)
	if err != nil || fresh == id || epoch != 0 {
		t.Fatalf("bump past MaxInt16: (%d, %d), %v; want a fresh id with epoch 0", fresh, epoch, err)
	}
	if _, epoch, err := s.InitProducerID(ctx, fresh, 0); err != nil || epoch != 1 {
		t.Fatalf("bump of the fresh id: epoch %d, %v; want 1", epoch, err)
	}
}

// TestDeleteTopicRemovesState checks what the interface cannot show: no
// key of a deleted topic is left behind.
func TestDeleteTopicRemovesState(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var ids []metastore.TopicID
	for _, name := range []string{"gone", "kept"} {
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, topic.ID)
		c := metastore.SegmentCommit{Object: "segments/" + name, Size: 20, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, Partition: 0, ByteLength: 10, OffsetCount: 1, ProducerID: 1000},
			{TopicID: topic.ID, Partition: 1, ByteOffset: 10, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
		}}
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	count := func(tx *bolt.Tx, bucket string, id metastore.TopicID) int {
		n := 0
		c := tx.Bucket([]byte(bucket)).Cursor()
		for k, _ := c.Seek(id[:]); bytes.HasPrefix(k, id[:]); k, _ = c.Next() {
			n++
		}
		return n
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketTopics, bucketPartitions, bucketExtents, bucketSequences} {
			if n := count(tx, b, ids[0]); n != 0 {
				t.Errorf("bucket %s: %d keys of the deleted topic left", b, n)
			}
			if n := count(tx, b, ids[1]); n == 0 {
				t.Errorf("bucket %s: no keys of the kept topic", b)
			}
		}
		if tx.Bucket([]byte(bucketNames)).Get([]byte("gone")) != nil {
			t.Error("name of the deleted topic left")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
