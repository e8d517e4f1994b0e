package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// seqStatesSample covers the encoding's edges: no recent batch, five,
// sequences wrapping past MaxInt32, offsets far apart and out of order,
// an unknown (-1) and a large timestamp, the largest partition.
func seqStatesSample() []seqEntry {
	full := &sequence.State{Epoch: math.MaxInt16, LastSeq: 1, Recent: []sequence.Batch{
		{FirstSeq: math.MaxInt32 - 9, LastSeq: math.MaxInt32 - 5, BaseOffset: 1 << 40},
		{FirstSeq: math.MaxInt32 - 4, LastSeq: math.MaxInt32, BaseOffset: 1<<40 + 5},
		{FirstSeq: 0, LastSeq: 0, BaseOffset: 3}, // offsets need not increase in a hostile value
		{FirstSeq: 1, LastSeq: 1, BaseOffset: math.MaxInt64},
		{FirstSeq: 7, LastSeq: 1, BaseOffset: 0},
	}}
	return []seqEntry{
		{partition: 0, state: &sequence.State{Epoch: 0, LastSeq: 4}, lastTimestamp: -1},
		{partition: 1, state: full, lastTimestamp: 1_764_000_000_000},
		{partition: 300, state: &sequence.State{Epoch: -1, LastSeq: -1, Recent: []sequence.Batch{{FirstSeq: 0, LastSeq: 4, BaseOffset: 10}}}, lastTimestamp: math.MinInt64},
		{partition: math.MaxInt32, state: full, lastTimestamp: math.MaxInt64},
	}
}

// TestSeqStatesLayout: values round-trip, an entry is found without the
// others, changed entries merge into a stored value in place, and every
// malformed value is errCorrupt.
func TestSeqStatesLayout(t *testing.T) {
	es := seqStatesSample()
	v, err := encodeSeqStates(es)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSeqStates(v)
	if err != nil || !reflect.DeepEqual(got, es) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, es)
	}
	for _, e := range es {
		st, ts, err := findSeqState(v, e.partition)
		if err != nil || !reflect.DeepEqual(st, e.state) || ts != e.lastTimestamp {
			t.Errorf("find partition %d: %+v %d %v", e.partition, st, ts, err)
		}
	}
	if st, _, err := findSeqState(v, 2); st != nil || err != nil {
		t.Errorf("find a partition without state: %+v, %v", st, err)
	}
	// A merge replaces partition 1, adds 2 and 400, keeps the others.
	refs, err := indexSeqStates(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := []seqEntry{
		{partition: 1, state: &sequence.State{Epoch: 1}, lastTimestamp: 5},
		{partition: 2, state: &sequence.State{Epoch: 2, LastSeq: 9}, lastTimestamp: 6},
		{partition: 400, state: &sequence.State{Epoch: 3}, lastTimestamp: 7},
	}
	merged, err := (&seqValue{v: v, refs: refs}).merge(nil, changed)
	if err != nil {
		t.Fatal(err)
	}
	want := []seqEntry{es[0], changed[0], changed[1], es[2], changed[2], es[3]}
	if got, err := decodeSeqStates(merged); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("merged: %+v, %v; want %+v", got, err, want)
	}
	if _, err := encodeSeqStates([]seqEntry{es[1], es[0]}); err == nil {
		t.Error("encoded entries out of partition order")
	}
	if _, err := encodeSeqStates([]seqEntry{{partition: 0, state: &sequence.State{Recent: make([]sequence.Batch, sequence.RecentBatches+1)}}}); err == nil {
		t.Error("encoded more recent batches than RecentBatches")
	}

	one, _ := encodeSeqStates(es[:1])
	twice := append(bytes.Clone(one), one[1:]...)
	longBody := bytes.Clone(one)
	longBody[1]++
	longBody = append(longBody, 0)
	for name, bad := range map[string][]byte{
		"empty":             {},
		"unknown version":   {2},
		"length past end":   append([]byte{seqStatesVersion, one[1] + 1}, one[2:]...),
		"length too short":  {seqStatesVersion, 1, 0},
		"length too long":   append([]byte{seqStatesVersion, maxSeqEntryBody + 1}, make([]byte, maxSeqEntryBody+1)...),
		"partition twice":   twice,
		"trailing in body":  longBody,
		"partition too big": append([]byte{seqStatesVersion, 8, 0xff, 0xff, 0xff, 0xff, 0x0f}, 0, 0, 0, 0, 0, 0),
	} {
		_, derr := decodeSeqStates(bad)
		// A find decodes only its partition's body and walks the
		// framing up to it: one of these two meets the damage.
		_, _, ferr := findSeqState(bad, 0)
		if ferr == nil {
			_, _, ferr = findSeqState(bad, math.MaxInt32)
		}
		if !errors.Is(derr, errCorrupt) || !errors.Is(ferr, errCorrupt) {
			t.Errorf("%s (%x): decode %v, find %v; want errCorrupt", name, bad, derr, ferr)
		}
	}
	// A batch count past RecentBatches in a well-framed entry.
	tooMany := bytes.Clone(one)
	tooMany[len(tooMany)-1] = sequence.RecentBatches + 1
	if _, err := decodeSeqStates(tooMany); !errors.Is(err, errCorrupt) {
		t.Errorf("too many recent batches: %v", err)
	}
}

// FuzzSeqStates feeds arbitrary seqstates values (a snapshot's bytes
// reach these decoders too): they answer errCorrupt or entries that
// encode to a value decoding the same, find what the full decode finds,
// and never panic or size anything from an unchecked length.
func FuzzSeqStates(f *testing.F) {
	v, _ := encodeSeqStates(seqStatesSample())
	f.Add(v)
	f.Add([]byte{seqStatesVersion})
	f.Add([]byte{seqStatesVersion, 6, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{seqStatesVersion, 255, 1})
	f.Fuzz(func(t *testing.T, v []byte) {
		es, err := decodeSeqStates(v)
		_, ierr := indexSeqStates(v, nil)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v is not errCorrupt", err)
			}
			return
		}
		if ierr != nil {
			t.Fatalf("decoded, but index: %v", ierr)
		}
		again, err := encodeSeqStates(es)
		if err != nil {
			t.Fatal(err)
		}
		es2, err := decodeSeqStates(again)
		if err != nil || !reflect.DeepEqual(es, es2) {
			t.Fatalf("re-encoded value decodes to %+v, %v; want %+v", es2, err, es)
		}
		for _, e := range es {
			st, ts, err := findSeqState(v, e.partition)
			if err != nil || !reflect.DeepEqual(st, e.state) || ts != e.lastTimestamp {
				t.Fatalf("find partition %d: %+v %d %v; want %+v %d", e.partition, st, ts, err, e.state, e.lastTimestamp)
			}
		}
	})
}

// TestCorruptSeqStates plants bad seqstates values (as a snapshot could
// carry): a commit of the producer on the topic and ActiveProducers fail
// with errCorrupt, none panics, other producers are unaffected.
func TestCorruptSeqStates(t *testing.T) {
	for _, v := range [][]byte{
		{}, {9}, {seqStatesVersion, 200}, {seqStatesVersion, 6, 0, 0, 0, 0, 0, 6},
		{seqStatesVersion, 7, 0, 0, 0, 0, 0, 0, 1},
	} {
		s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		err = s.db.Update(func(tx kv.Tx) error {
			return tx.Bucket([]byte(bucketSeqStates)).Put(seqStatesKey{id: topic.ID, producerID: 1000}.bytes(), v)
		})
		if err != nil {
			t.Fatal(err)
		}
		commit := func(pid int64) error {
			_, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "o", Size: 1, Batches: []metastore.BatchCommit{
				{TopicID: topic.ID, ByteLength: 1, OffsetCount: 1, ProducerID: pid}}})
			return err
		}
		if err := commit(1000); !errors.Is(err, errCorrupt) {
			t.Errorf("value %x: CommitSegment: %v, want a corrupt value error", v, err)
		}
		if err := commit(1001); err != nil {
			t.Errorf("value %x: another producer's commit: %v", v, err)
		}
		if _, err := s.ActiveProducers(ctx, topic.ID, 0); !errors.Is(err, errCorrupt) {
			t.Errorf("value %x: ActiveProducers: %v, want a corrupt value error", v, err)
		}
		s.Close()
	}
}

// TestOlderBinaryWritesAfterSeqConversion does to a converted file what
// a binary older than partitions format 2 still could (the partitions
// guards stop it on existing partitions, and it does not check the
// format): write old-layout sequence keys for a partition it added to a
// converted topic and for a topic it created, and delete a topic
// without its seqstates values. Open takes the keys in, merged with the
// producer's value, and drops the deleted topic's values.
func TestOlderBinaryWritesAfterSeqConversion(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "kept", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "gone", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []metastore.TopicID{kept.ID, gone.ID} {
		if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/" + uuidString(id), Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: id, ByteLength: 10, OffsetCount: 3, MaxTimestamp: 9, ProducerID: 1000}}}); err != nil {
			t.Fatal(err)
		}
	}
	oldTopic := metastore.TopicID{7}
	added := &sequence.State{Epoch: 0, LastSeq: 1, Recent: []sequence.Batch{{FirstSeq: 0, LastSeq: 1, BaseOffset: 0}}}
	err = s.db.Update(func(tx kv.Tx) error {
		old := tx.Bucket([]byte(bucketSequences))
		v, err := encodeSequence(added, 4)
		if err != nil {
			return err
		}
		// Its CreatePartitions on "kept" and an idempotent commit to
		// the new partition 2.
		if err := putTopic(tx, kept.ID, &topicRecord{Name: "kept", Partitions: 3}); err != nil {
			return err
		}
		if err := old.Put(sequenceKey{partitionKey{kept.ID, 2}, 1000}.key(), v); err != nil {
			return err
		}
		// Its CreateTopic "old" and a commit to it.
		if err := tx.Bucket([]byte(bucketNames)).Put([]byte("old"), oldTopic[:]); err != nil {
			return err
		}
		if err := putTopic(tx, oldTopic, &topicRecord{Name: "old", Partitions: 1}); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketPartitions)).Put(partitionKey{oldTopic, 0}.bytes(), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 2), 0)); err != nil {
			return err
		}
		if err := old.Put(sequenceKey{partitionKey{oldTopic, 0}, 1001}.key(), v); err != nil {
			return err
		}
		// Its DeleteTopic of "gone": the topic's keys, not seqstates.
		if err := tx.Bucket([]byte(bucketNames)).Delete([]byte("gone")); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketTopics)).Delete(gone.ID[:])
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
		id   metastore.TopicID
		p    int32
		want []metastore.ActiveProducer
	}{
		{kept.ID, 0, []metastore.ActiveProducer{{ProducerID: 1000, LastSequence: 2, LastTimestamp: 9, CurrentTxnStartOffset: -1}}},
		{kept.ID, 1, nil},
		{kept.ID, 2, []metastore.ActiveProducer{{ProducerID: 1000, LastSequence: 1, LastTimestamp: 4, CurrentTxnStartOffset: -1}}},
		{oldTopic, 0, []metastore.ActiveProducer{{ProducerID: 1001, LastSequence: 1, LastTimestamp: 4, CurrentTxnStartOffset: -1}}},
	} {
		got, err := s.ActiveProducers(ctx, c.id, c.p)
		if err != nil || !reflect.DeepEqual(got, c.want) && len(got)+len(c.want) > 0 {
			t.Errorf("%x/%d: %+v, %v; want %+v", c.id[:1], c.p, got, err, c.want)
		}
	}
	err = s.db.View(func(tx kv.Tx) error {
		if n := tx.Bucket([]byte(bucketSequences)).KeyN(); n != 0 {
			t.Errorf("%d old keys left", n)
		}
		c := tx.Bucket([]byte(bucketSeqStates)).Cursor()
		if k, _ := c.Seek(gone.ID[:]); bytes.HasPrefix(k, gone.ID[:]) {
			t.Error("the deleted topic's seqstates value is left")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The retried batch on the added partition is a duplicate.
	res, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/retry", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: kept.ID, Partition: 2, ByteLength: 10, OffsetCount: 2, ProducerID: 1000}}})
	if err != nil || !res[0].Duplicate || res[0].BaseOffset != 0 {
		t.Fatalf("retry on the added partition: %+v, %v; want a duplicate at 0", res, err)
	}
}

// TestSnapshotCarriesSeqStates loads a store from a snapshot's keys and
// values (as the control plane does) and checks that the producers'
// states came with it: a retried batch is still a duplicate.
func TestSnapshotCarriesSeqStates(t *testing.T) {
	ctx := t.Context()
	a, err := Open(filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	topic, err := a.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(p int32, seq int32) metastore.BatchCommit {
		return metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteLength: 10, OffsetCount: 2, MaxTimestamp: 5, ProducerID: 1000, BaseSequence: seq}
	}
	if _, err := a.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/1", Size: 30, Batches: []metastore.BatchCommit{batch(0, 0), batch(2, 0)}}); err != nil {
		t.Fatal(err)
	}
	bPath := loadSnapshot(t, a)
	b, err := Open(bPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for p := range int32(3) {
		pa, errA := a.ActiveProducers(ctx, topic.ID, p)
		pb, errB := b.ActiveProducers(ctx, topic.ID, p)
		if errA != nil || errB != nil || !slices.Equal(pa, pb) {
			t.Errorf("partition %d: %+v (%v) in the original, %+v (%v) loaded", p, pa, errA, pb, errB)
		}
	}
	res, err := b.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/2", Size: 20, Batches: []metastore.BatchCommit{batch(2, 0), batch(2, 2)}})
	if err != nil || !res[0].Duplicate || res[0].BaseOffset != 0 || res[1].Err != nil || res[1].BaseOffset != 2 {
		t.Fatalf("commit to the loaded store: %+v, %v", res, err)
	}
}

func uuidString(id metastore.TopicID) string { return fmt.Sprintf("%x", id[:]) }

// TestUpgradePerTopicSeqStates turns a producer's sequence states back
// into partitions format 3's one value per topic and producer, and opens
// the file again: Open splits it into a value per span of partitions,
// every state still there (a retry is a duplicate on each partition, and
// ActiveProducers finds the producer on each); and a value holding a
// partition outside its key's span is refused as corrupt.
func TestUpgradePerTopicSeqStates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 120})
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := s.InitProducerID(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	parts := []int32{0, 5, 17, 40, 100, 101}
	commit := func(s *Store, seq int32) []metastore.BatchResult {
		t.Helper()
		c := metastore.SegmentCommit{Object: fmt.Sprintf("o%d", seq), Size: 100}
		for i, p := range parts {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteOffset: int64(i) * 10, ByteLength: 10,
				OffsetCount: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
		}
		rs, err := s.CommitSegment(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	commit(s, 0)
	first := commit(s, 2)
	// Back to format 3: one value of all the producer's entries.
	var spans int
	err = s.db.Update(func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketSeqStates))
		var all []seqEntry
		var keys [][]byte
		err := b.ForEach(func(k, v []byte) error {
			es, err := decodeSeqStates(v)
			all = append(all, es...)
			keys = append(keys, bytes.Clone(k))
			return err
		})
		if err != nil {
			return err
		}
		spans = len(keys)
		if err := deleteKeys(b, keys); err != nil {
			return err
		}
		v, err := encodeSeqStates(all)
		if err != nil {
			return err
		}
		if err := b.Put(seqStatesKey{id: topic.ID, producerID: pid}.bytes()[:24], v); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyPartitionsFormat), binary.BigEndian.AppendUint64(nil, 3))
	})
	if err != nil {
		t.Fatal(err)
	}
	if spans != 4 { // 0 and 5; 17; 40; 100 and 101
		t.Fatalf("%d sequence state values before the conversion, want 4", spans)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkConverted(t, s)
	err = s.db.View(func(tx kv.Tx) error {
		var n int
		err := tx.Bucket([]byte(bucketSeqStates)).ForEach(func(k, v []byte) error {
			n++
			_, err := decodeSeqStatesKey(k)
			return err
		})
		if n != 4 {
			t.Errorf("%d values after the conversion, want 4", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range commit(s, 2) {
		if !r.Duplicate || r.BaseOffset != first[i].BaseOffset {
			t.Errorf("partition %d: retry after the conversion %+v, want a duplicate at %d", parts[i], r, first[i].BaseOffset)
		}
	}
	for i, r := range commit(s, 4) {
		if r.Err != nil || r.Duplicate || r.BaseOffset != first[i].BaseOffset+2 {
			t.Errorf("partition %d: next batch after the conversion %+v, want offset %d", parts[i], r, first[i].BaseOffset+2)
		}
	}
	// A second producer on partition 100 only: the walk of partition
	// 40's producers skips from the first one's later spans to it and
	// past it.
	pid2, _, err := s.InitProducerID(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "o2", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topic.ID, Partition: 100, ByteLength: 10, OffsetCount: 1, ProducerID: pid2}}}); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.ActiveProducers(ctx, topic.ID, 100); err != nil || len(ps) != 2 {
		t.Errorf("partition 100: active producers %+v, %v; want both", ps, err)
	}
	for _, p := range append(parts, 1, 16, 41) {
		ps, err := s.ActiveProducers(ctx, topic.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Contains(parts, p)
		if p == 100 {
			ps = slices.DeleteFunc(ps, func(a metastore.ActiveProducer) bool { return a.ProducerID == pid2 })
		}
		if got := len(ps) == 1 && ps[0].ProducerID == pid && ps[0].LastSequence == 5; got != want || (!want && len(ps) != 0) {
			t.Errorf("partition %d: active producers %+v, want the producer: %v", p, ps, want)
		}
	}

	// A value with a partition outside its key's span.
	err = s.db.Update(func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketSeqStates))
		v := b.Get(seqStatesKey{id: topic.ID, producerID: pid, span: 1}.bytes()) // partition 17
		return b.Put(seqStatesKey{id: topic.ID, producerID: pid, span: 2}.bytes(), bytes.Clone(v))
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CommitSegment(ctx, metastore.SegmentCommit{Object: "o-bad", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topic.ID, Partition: 33, ByteLength: 10, OffsetCount: 1, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 6}}})
	if !errors.Is(err, errCorrupt) {
		t.Errorf("commit to a span whose value holds another span's partition: %v, want a corrupt value error", err)
	}
}
