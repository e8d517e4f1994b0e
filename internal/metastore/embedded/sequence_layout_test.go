package embedded

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// The binary sequences value round-trips, and every malformed value
// (short, long, a count past RecentBatches, an unknown format) is
// errCorrupt, never a panic or an allocation it sizes.
func TestSequenceLayout(t *testing.T) {
	st := &sequence.State{Epoch: 3, LastSeq: 1<<31 - 1, Recent: []sequence.Batch{
		{FirstSeq: 0, LastSeq: 4, BaseOffset: 10}, {FirstSeq: 5, LastSeq: 1<<31 - 1, BaseOffset: 1 << 40},
	}}
	v, err := encodeSequence(st, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != sequenceHeader+2*sequenceBatch || v[0] != sequenceFormatBinary {
		t.Fatalf("encoded %d bytes, format %d", len(v), v[0])
	}
	got, ts, err := decodeSequence(v)
	if err != nil || ts != -1 || !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip: %+v, %d, %v; want %+v, -1", got, ts, err, st)
	}
	empty, _ := encodeSequence(&sequence.State{Epoch: 1, LastSeq: 7}, 99)
	if got, ts, err := decodeSequence(empty); err != nil || ts != 99 || got.Epoch != 1 || got.LastSeq != 7 || got.Recent != nil {
		t.Fatalf("no recent batches: %+v, %d, %v", got, ts, err)
	}
	if _, err := encodeSequence(&sequence.State{Recent: make([]sequence.Batch, sequence.RecentBatches+1)}, 0); err == nil {
		t.Error("encoded more recent batches than RecentBatches")
	}

	tooMany := append([]byte(nil), v...)
	tooMany[sequenceHeader-1] = 200
	unknown := append([]byte(nil), v...)
	unknown[0] = 2
	for name, bad := range map[string][]byte{
		"empty":                {},
		"header cut":           v[:sequenceHeader-1],
		"batch cut":            v[:len(v)-1],
		"trailing byte":        append(append([]byte(nil), v...), 0),
		"count past recent":    tooMany,
		"unknown format":       unknown,
		"json cut":             []byte(`{"epoch":1,`),
		"json of another type": []byte(`{"epoch":"x"}`),
	} {
		if _, _, err := decodeSequence(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err %v, want errCorrupt", name, err)
		}
	}
}

func FuzzDecodeSequence(f *testing.F) {
	v, _ := encodeSequence(&sequence.State{Epoch: 1, LastSeq: 4, Recent: []sequence.Batch{{FirstSeq: 0, LastSeq: 4, BaseOffset: 7}}}, 5)
	f.Add(v)
	f.Add([]byte(`{"epoch":1,"last_seq":4,"recent":[{"first_seq":0,"last_seq":4,"base_offset":7}]}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		st, ts, err := decodeSequence(v)
		if err != nil || st == nil {
			return
		}
		if len(st.Recent) > sequence.RecentBatches {
			t.Fatalf("%d recent batches decoded", len(st.Recent))
		}
		again, err := encodeSequence(st, ts)
		if err != nil {
			t.Fatal(err)
		}
		st2, ts2, err := decodeSequence(again)
		if len(st.Recent) == 0 {
			st.Recent = nil // JSON's [] and null are both none
		}
		if err != nil || ts2 != ts || !reflect.DeepEqual(st, st2) {
			t.Fatalf("re-encoded value decodes to %+v, %d, %v; want %+v, %d", st2, ts2, err, st, ts)
		}
	})
}

// TestUpgradeSequences opens a file whose sequences values are JSON (the
// layout before the binary one, with and without the last timestamp) and
// keyed per partition and producer (the layout before seqstates): Open
// moves them to one value per producer and topic, and the producers'
// state is intact:
// a retried batch is still a duplicate with its first offsets, the next
// sequence is accepted, a gap is not.
func TestUpgradeSequences(t *testing.T) {
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
	batch := func(p int32, seq int32) metastore.BatchCommit {
		return metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteLength: 10, OffsetCount: 2, MaxTimestamp: 50, ProducerID: 1000, BaseSequence: seq}
	}
	commit := func(obj string, bs ...metastore.BatchCommit) []metastore.BatchResult {
		t.Helper()
		c := metastore.SegmentCommit{Object: obj, Size: 10}
		c.Batches = bs
		res, err := s.CommitSegment(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	commit("segments/a", batch(0, 0))
	commit("segments/b", batch(0, 2))
	commit("segments/c", batch(1, 0))
	keys := [][]byte{
		sequenceKey{partitionKey{topic.ID, 0}, 1000}.key(),
		sequenceKey{partitionKey{topic.ID, 1}, 1000}.key(),
	}
	want := map[string]*sequence.State{}
	err = s.db.Update(func(tx kv.Tx) error {
		// Back to the layouts before: one key per partition and
		// producer, JSON values, format 2.
		if err := toOldSequences(tx); err != nil {
			return err
		}
		seqs := tx.Bucket([]byte(bucketSequences))
		for i, k := range keys {
			st, ts, err := decodeSequence(seqs.Get(k))
			if err != nil {
				return err
			}
			want[string(k)] = st
			var old []byte
			if i == 0 {
				old, err = json.Marshal(storedSequence{State: *st, LastTimestamp: &ts})
			} else {
				old, err = json.Marshal(st) // before transactions: no last timestamp
			}
			if err != nil {
				return err
			}
			if err := seqs.Put(k, old); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte(bucketMeta)).Delete([]byte(keySequencesFmt))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.View(func(tx kv.Tx) error {
		if n := tx.Bucket([]byte(bucketSequences)).KeyN(); n != 0 {
			t.Errorf("%d keys left in the old sequences bucket", n)
		}
		if f, _ := decodeInt64(tx.Bucket([]byte(bucketMeta)).Get([]byte(keyPartitionsFormat)), "format"); f != partitionsFormat {
			t.Errorf("partitions format %d after the upgrade, want %d", f, partitionsFormat)
		}
		v := tx.Bucket([]byte(bucketSeqStates)).Get(seqStatesKey{id: topic.ID, producerID: 1000}.bytes())
		for i, k := range keys {
			st, ts, err := findSeqState(v, int32(i))
			if err != nil || !reflect.DeepEqual(st, want[string(k)]) {
				t.Errorf("partition %d after the upgrade: %+v, %v; want %+v", i, st, err, want[string(k)])
			}
			if wantTS := []int64{50, -1}[i]; ts != wantTS {
				t.Errorf("partition %d: last timestamp %d, want %d", i, ts, wantTS)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	res := commit("segments/d", batch(0, 2), batch(0, 4), batch(1, 4))
	if r := res[0]; !r.Duplicate || r.BaseOffset != 2 {
		t.Errorf("retried batch after the upgrade: %+v, want a duplicate at 2", r)
	}
	if r := res[1]; r.Err != nil || r.Duplicate || r.BaseOffset != 4 {
		t.Errorf("next batch after the upgrade: %+v, want offset 4", r)
	}
	if r := res[2]; !errors.Is(r.Err, metastore.ErrOutOfOrderSequence) {
		t.Errorf("batch after a gap: %+v, want ErrOutOfOrderSequence", r)
	}
}

// toOldSequences rewrites a store's sequence states as the layout before
// seqstates had them (binary values keyed per partition and producer,
// partitions format 2), for the upgrade tests.
func toOldSequences(tx kv.Tx) error {
	states := tx.Bucket([]byte(bucketSeqStates))
	old := tx.Bucket([]byte(bucketSequences))
	var keys [][]byte
	err := states.ForEach(func(k, v []byte) error {
		sk, err := decodeSeqStatesKey(k)
		if err != nil {
			return err
		}
		es, err := decodeSeqStates(v)
		if err != nil {
			return err
		}
		for _, e := range es {
			ov, err := encodeSequence(e.state, e.lastTimestamp)
			if err != nil {
				return err
			}
			key := sequenceKey{partitionKey: partitionKey{id: sk.id, partition: e.partition}, producerID: sk.producerID}.key()
			if err := old.Put(key, ov); err != nil {
				return err
			}
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return err
	}
	if err := deleteKeys(states, keys); err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyPartitionsFormat), binary.BigEndian.AppendUint64(nil, partitionsFormatV2))
}
