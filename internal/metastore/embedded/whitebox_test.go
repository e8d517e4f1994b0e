package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/kv"
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
	err = s.db.Update(func(tx kv.Tx) error {
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
	// The kept topic's extents are in the extent log until folded.
	if err := FoldAll(s); err != nil {
		t.Fatal(err)
	}

	count := func(tx kv.Tx, bucket string, id metastore.TopicID) int {
		n := 0
		c := tx.Bucket([]byte(bucket)).Cursor()
		for k, _ := c.Seek(id[:]); bytes.HasPrefix(k, id[:]); k, _ = c.Next() {
			n++
		}
		return n
	}
	err = s.db.View(func(tx kv.Tx) error {
		for _, b := range []string{bucketTopics, bucketPartitions, bucketPartStates, bucketExtents, bucketSeqStates} {
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

// TestDeleteTopicRemovesTxnState checks that no open or aborted
// transaction entry, nor any pending offset, of a deleted topic is left.
func TestDeleteTopicRemovesTxnState(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var topics []metastore.Topic
	var parts []metastore.TopicPartition
	for _, name := range []string{"gone", "kept"} {
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, topic)
		parts = append(parts, metastore.TopicPartition{TopicID: topic.ID})
	}
	slices.SortFunc(parts, metastore.CompareTopicPartitions)
	txn := metastore.Txn{TransactionalID: "tx", ProducerID: 1000, State: metastore.TxnOngoing, Partitions: parts, Groups: []string{"g"}}
	batches := func(seq int32) []metastore.BatchCommit {
		var bs []metastore.BatchCommit
		for i, tp := range parts {
			bs = append(bs, metastore.BatchCommit{TopicID: tp.TopicID, ByteOffset: int64(i) * 10, ByteLength: 10, OffsetCount: 1,
				ProducerID: 1000, BaseSequence: seq, Transactional: true})
		}
		return bs
	}
	// One aborted transaction, then one left open with pending offsets.
	for i, commit := range []bool{false, true} {
		if txn.Version, err = s.SaveTxn(ctx, txn); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: fmt.Sprint("segments/", i), Size: 20, Batches: batches(int32(i))}); err != nil {
			t.Fatal(err)
		}
		if commit {
			break
		}
		var markers []metastore.BatchCommit
		for j, tp := range parts {
			markers = append(markers, metastore.BatchCommit{TopicID: tp.TopicID, ByteOffset: int64(j), ByteLength: 1, OffsetCount: 1})
		}
		next := txn
		next.State = metastore.TxnCompleteAbort
		if _, err := s.EndTxn(ctx, metastore.TxnEnd{Next: next, ProducerID: 1000,
			Markers: metastore.SegmentCommit{Object: "markers/0", Size: 2, Batches: markers}}); err != nil {
			t.Fatal(err)
		}
		txn.Version++
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
	count := func(tx kv.Tx, bucket string, id metastore.TopicID) int {
		n := 0
		_ = tx.Bucket([]byte(bucket)).ForEach(func(k, _ []byte) error {
			if bytes.Contains(k, id[:]) {
				n++
			}
			return nil
		})
		return n
	}
	err = s.db.View(func(tx kv.Tx) error {
		for _, b := range []string{bucketTxnOpen, bucketTxnAborted, bucketTxnOffsets} {
			if n := count(tx, b, topics[0].ID); n != 0 {
				t.Errorf("bucket %s: %d keys of the deleted topic left", b, n)
			}
			if n := count(tx, b, topics[1].ID); n != 1 {
				t.Errorf("bucket %s: %d keys of the kept topic, want 1", b, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptTxnValues plants undecodable transaction values: every call
// that reads one fails with an error, none panics.
func TestCorruptTxnValues(t *testing.T) {
	topicID := metastore.TopicID{1}
	pk := partitionKey{id: topicID}
	txKey, _ := txnKey("tx")
	gk, _ := groupKey("g")
	goodRecord := func(mod func(*txnRecord)) []byte {
		r := txnRecord{ProducerID: 1000, State: string(metastore.TxnOngoing), Version: 1,
			Partitions: metastore.EncodeTxnPartitions([]metastore.TopicPartition{{TopicID: topicID}}), Groups: metastore.EncodeTxnGroups([]string{"g"})}
		mod(&r)
		v, _ := json.Marshal(r)
		return v
	}
	type plant struct{ bucket, key, value []byte }
	txnBatch := metastore.BatchCommit{TopicID: topicID, ByteLength: 10, OffsetCount: 1, ProducerID: 1000, Transactional: true}
	calls := map[string]func(s *Store) error{
		"LoadTxn":  func(s *Store) error { _, _, err := s.LoadTxn(t.Context(), "tx"); return err },
		"ListTxns": func(s *Store) error { _, err := s.ListTxns(t.Context()); return err },
		"SaveTxn": func(s *Store) error {
			_, err := s.SaveTxn(t.Context(), metastore.Txn{TransactionalID: "tx", State: metastore.TxnEmpty, Version: 1})
			return err
		},
		"CommitSegment": func(s *Store) error {
			_, err := s.CommitSegment(t.Context(), metastore.SegmentCommit{Object: "o", Size: 10, Batches: []metastore.BatchCommit{txnBatch}})
			return err
		},
		"Offsets":         func(s *Store) error { _, err := s.Offsets(t.Context(), topicID, 0); return err },
		"ActiveProducers": func(s *Store) error { _, err := s.ActiveProducers(t.Context(), topicID, 0); return err },
		"AbortedTxns":     func(s *Store) error { _, err := s.AbortedTxns(t.Context(), topicID, 0, 0, 100); return err },
		"PendingTxnOffsets": func(s *Store) error {
			_, err := s.PendingTxnOffsets(t.Context(), "g")
			return err
		},
		"EndTxn": func(s *Store) error {
			_, err := s.EndTxn(t.Context(), metastore.TxnEnd{Next: metastore.Txn{TransactionalID: "tx", State: metastore.TxnCompleteCommit, Version: 1},
				ProducerID: 1000, Commit: true, Groups: []string{"g"}})
			return err
		},
		"DeleteTopic": func(s *Store) error { _, err := s.DeleteTopic(t.Context(), "t"); return err },
	}
	cases := []struct {
		name  string
		plant plant
		fail  []string
	}{
		{"record not JSON", plant{[]byte(bucketTxns), txKey, []byte("{")}, []string{"LoadTxn", "ListTxns", "SaveTxn", "CommitSegment", "EndTxn"}},
		{"record with a bad state", plant{[]byte(bucketTxns), txKey, goodRecord(func(r *txnRecord) { r.State = "Bogus" })}, []string{"LoadTxn", "ListTxns", "CommitSegment"}},
		{"record with ragged partitions", plant{[]byte(bucketTxns), txKey, goodRecord(func(r *txnRecord) { r.Partitions = r.Partitions[:7] })}, []string{"LoadTxn", "ListTxns", "CommitSegment"}},
		{"record with a bad group length", plant{[]byte(bucketTxns), txKey, goodRecord(func(r *txnRecord) { r.Groups = []byte{0xff, 0xff, 0xff, 0x0f} })}, []string{"LoadTxn", "ListTxns"}},
		{"record with an epoch out of range", plant{[]byte(bucketTxns), txKey, []byte(`{"producer_epoch": 70000, "state": "Empty"}`)}, []string{"LoadTxn", "ListTxns"}},
		{"key shorter than its length", plant{[]byte(bucketTxns), []byte{0, 9, 'a'}, goodRecord(func(*txnRecord) {})}, []string{"ListTxns"}},
		{"open entry of 3 bytes", plant{[]byte(bucketTxnOpen), sequenceKey{pk, 1000}.key(), []byte{1, 2, 3}}, []string{"Offsets", "ActiveProducers"}},
		{"open entry key of 23 bytes", plant{[]byte(bucketTxnOpen), append(pk.bytes(), 1, 2, 3), make([]byte, 8)}, []string{"Offsets", "ActiveProducers"}},
		{"aborted entry of 5 bytes", plant{[]byte(bucketTxnAborted), abortedKey(pk, 3), make([]byte, 5)}, []string{"AbortedTxns"}},
		{"pending offset of 2 bytes", plant{[]byte(bucketTxnOffsets), slices.Concat(txKey, gk, pk.bytes()), []byte{1, 2}}, []string{"EndTxn", "PendingTxnOffsets"}},
		{"pending offset key without a group", plant{[]byte(bucketTxnOffsets), slices.Concat(txKey, []byte{0xff}), make([]byte, offsetValueHeader)}, []string{"EndTxn", "DeleteTopic", "PendingTxnOffsets"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Topic "t" with the id the planted keys name.
			err = s.db.Update(func(tx kv.Tx) error {
				if err := tx.Bucket([]byte(bucketNames)).Put([]byte("t"), topicID[:]); err != nil {
					return err
				}
				if err := putTopic(tx, topicID, &topicRecord{Name: "t", Partitions: 1}); err != nil {
					return err
				}
				if err := resizeTopicStates(tx, topicID, 1); err != nil {
					return err
				}
				if tc.plant.bucket != nil && string(tc.plant.bucket) == bucketTxns {
					if err := tx.Bucket([]byte(bucketTxnIndex)).Put(producerKey(1000), tc.plant.key); err != nil {
						return err
					}
				} else if err := tx.Bucket([]byte(bucketTxns)).Put(txKey, goodRecord(func(*txnRecord) {})); err != nil {
					return err
				} else if err := tx.Bucket([]byte(bucketTxnIndex)).Put(producerKey(1000), txKey); err != nil {
					return err
				}
				return tx.Bucket(tc.plant.bucket).Put(tc.plant.key, tc.plant.value)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tc.fail {
				if err := calls[name](s); err == nil {
					t.Errorf("%s succeeded", name)
				} else if !errors.Is(err, errCorrupt) {
					t.Errorf("%s: %v, want a corrupt value error", name, err)
				}
			}
		})
	}
}
