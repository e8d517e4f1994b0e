package embedded

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// TestUpgradeObjects opens a file written before the object ledger (8-byte
// objects values, no format key): every object's references are counted
// from the extents, so the cleaner sees as unreferenced exactly the
// objects no extent names.
func TestUpgradeObjects(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := func(p int32, at int64) metastore.BatchCommit {
		return metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteOffset: at, ByteLength: 10, OffsetCount: 1, ProducerID: -1}
	}
	for _, c := range []metastore.SegmentCommit{
		{Object: "segments/two-partitions", Size: 20, Batches: []metastore.BatchCommit{b(0, 0), b(1, 10)}},
		{Object: "segments/gone", Size: 10, Batches: []metastore.BatchCommit{b(0, 0)}},
		{Object: "segments/kept", Size: 10, Batches: []metastore.BatchCommit{b(0, 0)}},
	} {
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := FoldAll(s); err != nil { // the old code had no extent log
		t.Fatal(err)
	}
	// Rewrite the file as the old code left it: the extent of "gone"
	// deleted by hand, objects values with the size alone.
	err = s.db.Update(func(tx kv.Tx) error {
		pk := partitionKey{id: topic.ID, partition: 0}
		if err := tx.Bucket([]byte(bucketExtents)).Delete(pk.extentKey(1)); err != nil {
			return err
		}
		objects := tx.Bucket([]byte(bucketObjects))
		for _, k := range []string{"segments/two-partitions", "segments/gone", "segments/kept"} {
			rec, err := decodeObject(objects.Get([]byte(k)))
			if err != nil {
				return err
			}
			if err := objects.Put([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(rec.size))); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket([]byte(bucketUnref)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Delete([]byte(keyObjectsFormat))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	del, err := s.ListDeletable(ctx, time.Now().Add(time.Minute), 0)
	if err != nil || len(del) != 1 || del[0].Key != "segments/gone" || del[0].Size != 10 {
		t.Fatalf("deletable after upgrade: %+v, %v; want only segments/gone", del, err)
	}
	u, err := s.ObjectUsage(ctx)
	if err != nil || u.ReferencedObjects != 2 || u.ReferencedBytes != 30 {
		t.Fatalf("ObjectUsage after upgrade = %+v, %v", u, err)
	}
	// The two-partition object stays referenced until both extents go.
	if _, err := s.AdvanceLogStart(ctx, topic.ID, 1, 1); err != nil {
		t.Fatal(err)
	}
	del, _ = s.ListDeletable(ctx, time.Now().Add(time.Minute), 0)
	if keys := []string{del[0].Key}; len(del) != 1 || !slices.Equal(keys, []string{"segments/gone"}) {
		t.Fatalf("deletable after partition 1's retention: %+v", del)
	}
	if _, err := s.AdvanceLogStart(ctx, topic.ID, 0, 1); err != nil {
		t.Fatal(err)
	}
	if del, _ = s.ListDeletable(ctx, time.Now().Add(time.Minute), 0); len(del) != 2 {
		t.Fatalf("deletable after both partitions' retention: %+v", del)
	}
}

// TestUpgradeTxns opens a file written before transactions: without the
// transaction buckets, and with sequences values that lack the last
// timestamp. Its partitions have nothing open, its producers an unknown
// last timestamp, and transactions work on it.
func TestUpgradeTxns(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := metastore.BatchCommit{TopicID: topic.ID, ByteLength: 10, OffsetCount: 2, MaxTimestamp: 5, ProducerID: 1000}
	if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/old", Size: 10, Batches: []metastore.BatchCommit{b}}); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx kv.Tx) error {
		for _, name := range []string{bucketTxns, bucketTxnIndex, bucketTxnOpen, bucketTxnAborted, bucketTxnOffsets} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := toOldSequences(tx); err != nil {
			return err
		}
		seqs := tx.Bucket([]byte(bucketSequences))
		k := sequenceKey{partitionKey: partitionKey{id: topic.ID}, producerID: 1000}.key()
		st, _, err := decodeSequence(seqs.Get(k))
		if err != nil {
			return err
		}
		old, err := json.Marshal(st) // the format before: no last timestamp
		if err != nil {
			return err
		}
		return seqs.Put(k, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, err := s.Offsets(ctx, topic.ID, 0); err != nil || o != (metastore.PartitionOffsets{HighWatermark: 2, LastStableOffset: 2}) {
		t.Fatalf("Offsets after upgrade = %+v, %v", o, err)
	}
	ps, err := s.ActiveProducers(ctx, topic.ID, 0)
	want := []metastore.ActiveProducer{{ProducerID: 1000, LastSequence: 1, LastTimestamp: -1, CurrentTxnStartOffset: -1}}
	if err != nil || !slices.Equal(ps, want) {
		t.Fatalf("ActiveProducers after upgrade = %+v, %v; want %+v", ps, err, want)
	}
	txn := metastore.Txn{TransactionalID: "tx", ProducerID: 1000, State: metastore.TxnOngoing,
		Partitions: []metastore.TopicPartition{{TopicID: topic.ID}}}
	if txn.Version, err = s.SaveTxn(ctx, txn); err != nil {
		t.Fatal(err)
	}
	b.Transactional, b.BaseSequence = true, 2
	res, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/new", Size: 10, Batches: []metastore.BatchCommit{b}})
	if err != nil || res[0].Err != nil || res[0].BaseOffset != 2 {
		t.Fatalf("transactional commit after upgrade: %+v, %v", res, err)
	}
	if o, _ := s.Offsets(ctx, topic.ID, 0); o.LastStableOffset != 2 || o.HighWatermark != 4 {
		t.Fatalf("Offsets with an open transaction: %+v", o)
	}
}
