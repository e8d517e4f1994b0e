package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// FuzzTopicStates feeds arbitrary partitions values to the decoders: they
// answer an error or states that encode back to the same bytes, and never
// panic or size anything from an unchecked count.
func FuzzTopicStates(f *testing.F) {
	f.Add(topicStates{{5, 1, 0, 0}, {0, 0, 7, 2}, {1 << 40, 3, 1, 1}}.encode())
	f.Add(topicStates{}.encode())
	f.Add([]byte{topicStatesVersion, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{topicStatesVersion, 0, 0, 0, 1, 1, 2, 3})
	f.Add([]byte{2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		n, err := checkTopicStates(v)
		ts, derr := decodeTopicStates(v)
		if (err == nil) != (derr == nil) {
			t.Fatalf("check %v, decode %v", err, derr)
		}
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v is not errCorrupt", err)
			}
			return
		}
		if int(n) != len(ts) {
			t.Fatalf("count %d, decoded %d", n, len(ts))
		}
		if !bytes.Equal(ts.encode(), v) {
			t.Fatalf("value %x re-encodes as %x", v, ts.encode())
		}
		for p := range n {
			if stateAt(v, p) != ts[p] {
				t.Fatalf("partition %d: stateAt %+v, decoded %+v", p, stateAt(v, p), ts[p])
			}
		}
	})
}

// TestCorruptPartitionStates plants bad partitions values: reads and
// commits of the topic fail with errCorrupt, none panics.
func TestCorruptPartitionStates(t *testing.T) {
	for _, v := range [][]byte{
		nil, {}, {topicStatesVersion}, {9, 0, 0, 0, 0},
		{topicStatesVersion, 0, 0, 0, 2, 1, 2, 3},
		{topicStatesVersion, 0xff, 0xff, 0xff, 0xff},
		{topicStatesVersion, 0x80, 0, 0, 0},
	} {
		s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		err = s.db.Update(func(tx kv.Tx) error {
			return tx.Bucket([]byte(bucketPartStates)).Put(topic.ID[:], v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Offsets(ctx, topic.ID, 0); !errors.Is(err, errCorrupt) {
			t.Errorf("value %x: Offsets: %v, want a corrupt value error", v, err)
		}
		_, err = s.CommitSegment(ctx, metastore.SegmentCommit{Object: "o", Size: 1, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, ByteLength: 1, OffsetCount: 1, ProducerID: -1}}})
		if !errors.Is(err, errCorrupt) {
			t.Errorf("value %x: CommitSegment: %v, want a corrupt value error", v, err)
		}
		if _, err := s.CreatePartitions(ctx, "t", 3); !errors.Is(err, errCorrupt) {
			t.Errorf("value %x: CreatePartitions: %v, want a corrupt value error", v, err)
		}
		s.Close()
	}
}

// TestUpgradeCorruptPartitions opens files of the old layout whose
// per-partition keys are damaged: Open fails with errCorrupt and does
// not convert anything.
func TestUpgradeCorruptPartitions(t *testing.T) {
	for name, plant := range map[string]func(id metastore.TopicID) (k, v []byte){
		"value of 15 bytes":      func(id metastore.TopicID) ([]byte, []byte) { return partitionKey{id, 0}.bytes(), make([]byte, 15) },
		"key of 19 bytes":        func(id metastore.TopicID) ([]byte, []byte) { return partitionKey{id, 0}.bytes()[:19], make([]byte, 16) },
		"partition out of range": func(id metastore.TopicID) ([]byte, []byte) { return partitionKey{id, 2}.bytes(), make([]byte, 16) },
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "meta.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			topic, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2})
			if err != nil {
				t.Fatal(err)
			}
			// The old layout: no format key, one key per partition.
			err = s.db.Update(func(tx kv.Tx) error {
				parts := tx.Bucket([]byte(bucketPartitions))
				if err := deletePrefix(parts, topic.ID[:]); err != nil {
					return err
				}
				if err := tx.Bucket([]byte(bucketPartStates)).Delete(topic.ID[:]); err != nil {
					return err
				}
				k, v := plant(topic.ID)
				if err := parts.Put(k, v); err != nil {
					return err
				}
				return tx.Bucket([]byte(bucketMeta)).Delete([]byte(keyPartitionsFormat))
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if s, err := Open(path, Options{}); !errors.Is(err, errCorrupt) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want a corrupt value error", err)
			}
		})
	}
}

// TestOldBinaryGuard checks that every partition of every topic, created,
// extended or converted from the old layout, has a guard key in the
// partitions bucket that the old layout's decoder refuses (it wanted 16
// bytes), so that an older binary fails instead of reading the
// partition as empty.
func TestOldBinaryGuard(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	orig, err := os.ReadFile(formatFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "new", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePartitions(ctx, "new", 5); err != nil {
		t.Fatal(err)
	}
	topics, err := s.Topics(ctx)
	if err != nil || len(topics) != 3 {
		t.Fatalf("topics: %v, %v", topics, err)
	}
	err = s.db.View(func(tx kv.Tx) error {
		parts := tx.Bucket([]byte(bucketPartitions))
		n := 0
		for _, tp := range topics {
			for p := range tp.Partitions {
				v := parts.Get(partitionKey{id: tp.ID, partition: p}.bytes())
				if len(v) == 0 || len(v) == 16 {
					t.Errorf("%s/%d: guard value %x, want one an old binary refuses", tp.Name, p, v)
				}
				n++
			}
		}
		if got := parts.KeyN(); got != n {
			t.Errorf("partitions bucket holds %d keys, want %d guards", got, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOldBinaryAfterConversion does to a converted file what an older
// binary could (its guards stop it on existing partitions only): create a
// topic and commit to it, add a partition to a converted topic and commit
// to that, all in the old layout. Open takes them in.
func TestOldBinaryAfterConversion(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "kept", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "o", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: kept.ID, ByteLength: 10, OffsetCount: 4, ProducerID: -1}}}); err != nil {
		t.Fatal(err)
	}
	oldTopic := metastore.TopicID{9}
	oldState := func(hw, lso int64) []byte {
		v := binary.BigEndian.AppendUint64(nil, uint64(hw))
		return binary.BigEndian.AppendUint64(v, uint64(lso))
	}
	err = s.db.Update(func(tx kv.Tx) error {
		// The old binary's CreateTopic and a commit to partition 1.
		if err := tx.Bucket([]byte(bucketNames)).Put([]byte("old"), oldTopic[:]); err != nil {
			return err
		}
		if err := putTopic(tx, oldTopic, &topicRecord{Name: "old", Partitions: 2}); err != nil {
			return err
		}
		parts := tx.Bucket([]byte(bucketPartitions))
		if err := parts.Put(partitionKey{oldTopic, 1}.bytes(), oldState(7, 2)); err != nil {
			return err
		}
		// Its CreatePartitions on "kept" and a commit to the new one.
		if err := putTopic(tx, kept.ID, &topicRecord{Name: "kept", Partitions: 2}); err != nil {
			return err
		}
		return parts.Put(partitionKey{kept.ID, 1}.bytes(), oldState(3, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		id      metastore.TopicID
		p       int32
		hw, lso int64
	}{{oldTopic, 0, 0, 0}, {oldTopic, 1, 7, 2}, {kept.ID, 0, 4, 0}, {kept.ID, 1, 3, 0}} {
		o, err := s.Offsets(ctx, c.id, c.p)
		if err != nil || o.HighWatermark != c.hw || o.LogStartOffset != c.lso {
			t.Errorf("%x/%d: %+v, %v; want high watermark %d, log start %d", c.id, c.p, o, err, c.hw, c.lso)
		}
	}
	// Converted again: guards everywhere, no old keys left.
	err = s.db.View(func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketPartitions)).ForEach(func(k, v []byte) error {
			if len(v) != 1 || v[0] != guardValue {
				t.Errorf("key %x: value %x, want a guard", k, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
