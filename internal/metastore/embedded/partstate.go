package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// A partstates value holds the log bounds of every partition of one topic
// incarnation, keyed by the topic ID alone:
//
//	version(1)=1 count(4) count × [ highWatermark(8) logStartOffset(8) pendingSeq(8) pendingCount(8) ]
//
// count is the topic's partition count: CreateTopic writes the value,
// CreatePartitions extends it, DeleteTopic deletes it, so a partition
// exists exactly when its topic's value has its index (checkPartition
// reads that, not the topic's JSON record). A commit reads each topic's
// value once, updates the partitions it touches in memory and writes the
// value once: one key per topic instead of one per partition, so a
// commit touching thousands of partitions neither seeks nor dirties a
// leaf page per partition for their bounds.
//
// Files written before this layout (partitionsFormat 1) have one key per
// partition in the partitions bucket, topicID(16) partition(4) →
// highWatermark(8) logStartOffset(8), absent for a partition never
// written; Open rewrites them (upgradePartitions, which also takes in what
// an older binary wrote to a converted file). The partitions
// bucket keeps a key per partition whose value is the single byte 0xff
// (guardValue): a binary of the old layout reading the file fails on it
// (a corrupt value) instead of reading an absent key as an empty
// partition and handing out its offsets again. Those keys are written
// when a partition is created, never by a commit.
//
// pendingSeq is the first record of the extent log (extentlog.go) that
// holds an extent of the partition not yet moved to the extents bucket,
// or 0 when the extents bucket holds all of them, and pendingCount how
// many of its extents the log holds: a read or a fold stops looking
// through the log once it has found them all.
const (
	guardValue = 0xff
	// partitionsFormat is the meta key "partitions-format": 2 for
	// partition states per topic, 3 when sequence states are per topic
	// and producer too, 4 when they are per topic, producer and span of
	// partitions (seqstate.go). A binary of format 2 or 3 refuses a file
	// of any other, which is the guard that keeps it from reading a
	// converted file's producers as absent.
	partitionsFormat   = 4
	partitionsFormatV2 = 2
	topicStatesVersion = 1
	topicStatesHeader  = 1 + 4
	partitionStateSize = 8 + 8 + 8 + 8
)

// maxTopicPartitions bounds a topic's partition count in this store: its
// partitions value (32 bytes a partition, 128 MiB at the bound) is read
// and written whole, and a count read from a file sizes nothing above it.
const maxTopicPartitions = 1 << 22

// partitionState is the mutable per-partition log bounds.
type partitionState struct {
	highWatermark  int64
	logStartOffset int64
	pendingSeq     uint64 // 0: no extent in the log
	pendingCount   uint64
}

// topicStates is a decoded partitions value: one state per partition.
type topicStates []partitionState

func (ts topicStates) encode() []byte { return ts.appendTo(nil) }

// appendTo appends the encoded states to dst.
func (ts topicStates) appendTo(dst []byte) []byte {
	v := slices.Grow(dst, topicStatesHeader+partitionStateSize*len(ts))
	v = append(v, topicStatesVersion)
	v = binary.BigEndian.AppendUint32(v, uint32(len(ts)))
	for _, ps := range ts {
		v = binary.BigEndian.AppendUint64(v, uint64(ps.highWatermark))
		v = binary.BigEndian.AppendUint64(v, uint64(ps.logStartOffset))
		v = binary.BigEndian.AppendUint64(v, ps.pendingSeq)
		v = binary.BigEndian.AppendUint64(v, ps.pendingCount)
	}
	return v
}

// checkTopicStates checks a partitions value's header against its length
// and returns the partition count. The value is input like any other: its
// count sizes nothing before it is checked against the bytes present.
func checkTopicStates(v []byte) (int32, error) {
	if len(v) < topicStatesHeader || v[0] != topicStatesVersion {
		return 0, fmt.Errorf("partition states: %w: %d bytes", errCorrupt, len(v))
	}
	n := binary.BigEndian.Uint32(v[1:])
	if n > math.MaxInt32 || uint64(len(v)-topicStatesHeader) != uint64(n)*partitionStateSize {
		return 0, fmt.Errorf("partition states: %w: %d partitions in %d bytes", errCorrupt, n, len(v))
	}
	return int32(n), nil
}

func decodeTopicStates(v []byte) (topicStates, error) { return decodeTopicStatesInto(nil, v) }

// decodeTopicStatesInto is decodeTopicStates into dst's array when it is
// large enough.
func decodeTopicStatesInto(dst topicStates, v []byte) (topicStates, error) {
	n, err := checkTopicStates(v)
	if err != nil {
		return nil, err
	}
	ts := slices.Grow(dst[:0], int(n))[:n]
	for i := range ts {
		ts[i] = stateAt(v, int32(i))
	}
	return ts, nil
}

// stateAt reads one partition's state from a value checkTopicStates
// accepted, without decoding the others.
func stateAt(v []byte, p int32) partitionState {
	b := v[topicStatesHeader+int(p)*partitionStateSize:]
	return partitionState{
		highWatermark:  int64(binary.BigEndian.Uint64(b)),
		logStartOffset: int64(binary.BigEndian.Uint64(b[8:])),
		pendingSeq:     binary.BigEndian.Uint64(b[16:]),
		pendingCount:   binary.BigEndian.Uint64(b[24:]),
	}
}

// readPartition returns a partition's state, or ErrUnknownTopicOrPartition
// unless its topic incarnation exists and has it.
func readPartition(tx kv.Tx, pk partitionKey) (partitionState, error) {
	v := tx.Bucket([]byte(bucketPartStates)).Get(pk.id[:])
	if v == nil {
		return partitionState{}, metastore.ErrUnknownTopicOrPartition
	}
	n, err := checkTopicStates(v)
	if err != nil {
		return partitionState{}, err
	}
	if pk.partition < 0 || pk.partition >= n {
		return partitionState{}, metastore.ErrUnknownTopicOrPartition
	}
	return stateAt(v, pk.partition), nil
}

// writePartition stores one partition's state, rewriting its topic's
// value: for the rare calls that change one partition (AdvanceLogStart).
func writePartition(tx kv.Tx, pk partitionKey, ps partitionState) error {
	b := tx.Bucket([]byte(bucketPartStates))
	v := b.Get(pk.id[:])
	if v == nil {
		return metastore.ErrUnknownTopicOrPartition
	}
	n, err := checkTopicStates(v)
	if err != nil {
		return err
	}
	if pk.partition < 0 || pk.partition >= n {
		return metastore.ErrUnknownTopicOrPartition
	}
	nv := bytes.Clone(v) // v is bbolt's memory until the transaction ends
	at := topicStatesHeader + int(pk.partition)*partitionStateSize
	binary.BigEndian.PutUint64(nv[at:], uint64(ps.highWatermark))
	binary.BigEndian.PutUint64(nv[at+8:], uint64(ps.logStartOffset))
	binary.BigEndian.PutUint64(nv[at+16:], ps.pendingSeq)
	binary.BigEndian.PutUint64(nv[at+24:], ps.pendingCount)
	return b.Put(pk.id[:], nv)
}

// resizeTopicStates sets a topic's partition count in its value, creating
// it (new topic) or extending it with empty partitions (CreatePartitions).
// Partition counts never shrink.
func resizeTopicStates(tx kv.Tx, id metastore.TopicID, count int32) error {
	b := tx.Bucket([]byte(bucketPartStates))
	var ts topicStates
	if v := b.Get(id[:]); v != nil {
		var err error
		if ts, err = decodeTopicStates(v); err != nil {
			return err
		}
	}
	switch {
	case count > maxTopicPartitions:
		return fmt.Errorf("%d partitions: %w: this store holds at most %d per topic", count, metastore.ErrInvalidPartitions, maxTopicPartitions)
	case int(count) < len(ts):
		return fmt.Errorf("partition states: %w: %d partitions stored, topic has %d", errCorrupt, len(ts), count)
	case int(count) == len(ts) && ts != nil:
		return nil
	}
	if err := putGuards(tx, id, int32(len(ts)), count); err != nil {
		return err
	}
	ts = append(ts, make(topicStates, int(count)-len(ts))...)
	return b.Put(id[:], ts.encode())
}

// putGuards writes the partitions bucket's guard keys of partitions
// [from, to) of a topic.
func putGuards(tx kv.Tx, id metastore.TopicID, from, to int32) error {
	parts := tx.Bucket([]byte(bucketPartitions))
	for p := from; p < to; p++ {
		if err := parts.Put(partitionKey{id: id, partition: p}.bytes(), []byte{guardValue}); err != nil {
			return err
		}
	}
	return nil
}

// upgradePartitions rewrites a file's per-partition keys of the layout
// before partitionsFormat 2 as one value per topic, and records the
// format. It runs at every Open, so that what an older binary did to a
// converted file is taken in too: the guards stop it on the partitions
// that exist, but it can create topics and partitions, and write to
// those (old-layout keys, no states value). A topic with no key for a
// partition had never written to it: its state is empty, as the old code
// read it. The scan is one pass over the partitions bucket's keys.
func upgradePartitions(tx kv.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if v := meta.Get([]byte(keyPartitionsFormat)); v != nil {
		if f, err := decodeInt64(v, "partitions format"); err != nil || f < partitionsFormatV2 || f > partitionsFormat {
			return fmt.Errorf("partitions format %x: %w: this code reads formats %d to %d", v, errCorrupt, partitionsFormatV2, partitionsFormat)
		}
	}
	parts := tx.Bucket([]byte(bucketPartitions))
	old := map[metastore.TopicID]map[int32]partitionState{}
	var keys [][]byte
	err := parts.ForEach(func(k, v []byte) error {
		if len(k) == 20 && len(v) == 1 && v[0] == guardValue {
			return nil
		}
		if len(k) != 20 || len(v) != 16 {
			return fmt.Errorf("upgrade partition state %x: %w: %d bytes", k, errCorrupt, len(v))
		}
		var id metastore.TopicID
		copy(id[:], k)
		if old[id] == nil {
			old[id] = map[int32]partitionState{}
		}
		old[id][int32(binary.BigEndian.Uint32(k[16:]))] = partitionState{
			highWatermark:  int64(binary.BigEndian.Uint64(v)),
			logStartOffset: int64(binary.BigEndian.Uint64(v[8:])),
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return err
	}
	if err := deleteKeys(parts, keys); err != nil {
		return err
	}
	states := tx.Bucket([]byte(bucketPartStates))
	err = tx.Bucket([]byte(bucketTopics)).ForEach(func(k, v []byte) error {
		var id metastore.TopicID
		if len(k) != len(id) {
			return fmt.Errorf("upgrade partition states: topic id: %w: %d bytes", errCorrupt, len(k))
		}
		copy(id[:], k)
		var ts topicStates
		if sv := states.Get(id[:]); sv != nil {
			var err error
			if ts, err = decodeTopicStates(sv); err != nil {
				return err
			}
		}
		// Usually the topic is converted already and nothing changed;
		// the topic's JSON is decoded only when that is not so, or to
		// check that its partition count did not grow.
		rec, err := decodeTopic(v)
		if err != nil {
			return err
		}
		if ts != nil && len(old[id]) == 0 && int(rec.Partitions) == len(ts) {
			return nil
		}
		if rec.Partitions < 0 || rec.Partitions > maxTopicPartitions || int(rec.Partitions) < len(ts) {
			return fmt.Errorf("upgrade partition states: topic %s: %w: %d partitions, %d states", rec.Name, errCorrupt, rec.Partitions, len(ts))
		}
		known := int32(len(ts))
		ts = append(ts, make(topicStates, int(rec.Partitions)-len(ts))...)
		for p, ps := range old[id] {
			if p < known || p >= rec.Partitions {
				return fmt.Errorf("upgrade partition states: topic %s: %w: old state of partition %d (%d known, %d in all)", rec.Name, errCorrupt, p, known, rec.Partitions)
			}
			ts[p] = ps
		}
		delete(old, id)
		if err := putGuards(tx, id, known, rec.Partitions); err != nil {
			return err
		}
		return states.Put(id[:], ts.encode())
	})
	if err != nil {
		return err
	}
	// What is left in old belongs to no topic (the old code deleted a
	// topic's keys with it): nothing could read it, so it is dropped.
	return nil
}

// putPartitionsFormat records the layout, once Open's conversions have
// run in its transaction.
func putPartitionsFormat(tx kv.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	want := binary.BigEndian.AppendUint64(nil, partitionsFormat)
	if bytes.Equal(meta.Get([]byte(keyPartitionsFormat)), want) {
		return nil
	}
	return meta.Put([]byte(keyPartitionsFormat), want)
}
