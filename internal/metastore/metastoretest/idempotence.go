package metastoretest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// idem is one idempotent batch and what the store must answer.
type idem struct {
	producer  int64
	partition int32
	epoch     int16
	seq       int32
	count     int64

	base int64 // wanted base offset (-1 when rejected)
	dup  bool
	err  error
}

const defaultProducer = 1000

// ok is a batch that must be accepted at base.
func ok(epoch int16, seq int32, count, base int64) idem {
	return idem{producer: defaultProducer, epoch: epoch, seq: seq, count: count, base: base}
}

// dup is a batch that must be recognised as a duplicate first written at base.
func dup(epoch int16, seq int32, count, base int64) idem {
	b := ok(epoch, seq, count, base)
	b.dup = true
	return b
}

// bad is a batch that must be rejected with err.
func bad(epoch int16, seq int32, count int64, err error) idem {
	b := ok(epoch, seq, count, -1)
	b.err = err
	return b
}

// on moves the batch to another producer and partition (producer < 0: not
// idempotent).
func (b idem) on(producer int64, partition int32) idem {
	b.producer, b.partition = producer, partition
	return b
}

func testIdempotence(t *testing.T, open func(t *testing.T) recordStore) {
	const maxSeq = math.MaxInt32
	errSeq, errEpoch := metastore.ErrOutOfOrderSequence, metastore.ErrInvalidProducerEpoch
	cases := []struct {
		name    string
		commits [][]idem // each inner slice is one CommitSegment
		hwm     [2]int64 // wanted high watermarks of partitions 0 and 1
	}{
		{
			name:    "in order",
			commits: [][]idem{{ok(0, 0, 5, 0)}, {ok(0, 5, 3, 5)}, {ok(0, 8, 1, 8)}},
			hwm:     [2]int64{9},
		},
		{
			name:    "duplicate returns the original offset",
			commits: [][]idem{{ok(0, 0, 5, 0)}, {ok(0, 5, 5, 5)}, {dup(0, 0, 5, 0), dup(0, 5, 5, 5)}, {ok(0, 10, 1, 10)}},
			hwm:     [2]int64{11},
		},
		{
			name:    "gap is out of order",
			commits: [][]idem{{ok(0, 0, 5, 0)}, {bad(0, 6, 1, errSeq)}, {bad(0, 4, 1, errSeq)}, {ok(0, 5, 1, 5)}},
			hwm:     [2]int64{6},
		},
		{
			name:    "overlap that is no exact duplicate is out of order",
			commits: [][]idem{{ok(0, 0, 5, 0)}, {bad(0, 3, 2, errSeq)}, {bad(0, 0, 4, errSeq)}, {bad(0, 0, 6, errSeq)}},
			hwm:     [2]int64{5},
		},
		{
			name:    "stale epoch",
			commits: [][]idem{{ok(1, 0, 5, 0)}, {bad(0, 5, 1, errEpoch)}, {bad(0, 0, 5, errEpoch)}, {ok(1, 5, 1, 5)}},
			hwm:     [2]int64{6},
		},
		{
			name: "new epoch must start at zero",
			commits: [][]idem{
				{ok(0, 0, 5, 0)},
				{bad(1, 5, 1, errSeq)},
				{ok(1, 0, 5, 5)}, // same sequences as epoch 0's batch, but no duplicate
				{bad(0, 5, 1, errEpoch)},
				{ok(1, 5, 1, 10)},
			},
			hwm: [2]int64{11},
		},
		{
			name:    "unknown producer may start anywhere",
			commits: [][]idem{{ok(0, 42, 3, 0)}, {ok(0, 45, 1, 3)}, {ok(3, 7, 1, 0).on(defaultProducer, 1)}},
			hwm:     [2]int64{4, 1},
		},
		{
			name:    "sequence wraps to zero after MaxInt32",
			commits: [][]idem{{ok(0, maxSeq-1, 2, 0)}, {bad(0, 1, 1, errSeq)}, {ok(0, 0, 1, 2)}, {ok(0, 1, 1, 3)}},
			hwm:     [2]int64{4},
		},
		{
			name:    "batch spanning the wrap",
			commits: [][]idem{{ok(0, maxSeq-1, 4, 0)}, {dup(0, maxSeq-1, 4, 0)}, {bad(0, 0, 1, errSeq)}, {ok(0, 2, 1, 4)}},
			hwm:     [2]int64{5},
		},
		{
			name: "only the last five batches are duplicates",
			commits: [][]idem{
				{ok(0, 0, 1, 0)}, {ok(0, 1, 1, 1)}, {ok(0, 2, 1, 2)}, {ok(0, 3, 1, 3)}, {ok(0, 4, 1, 4)}, {ok(0, 5, 1, 5)},
				{dup(0, 1, 1, 1)}, {dup(0, 5, 1, 5)}, {bad(0, 0, 1, errSeq)},
			},
			hwm: [2]int64{6},
		},
		{
			name: "batches see earlier ones of the same commit",
			commits: [][]idem{{
				ok(0, 0, 2, 0), dup(0, 0, 2, 0), ok(0, 2, 2, 2), bad(0, 9, 1, errSeq),
				ok(1, 0, 1, 4), bad(0, 4, 1, errEpoch), dup(1, 0, 1, 4),
			}},
			hwm: [2]int64{5},
		},
		{
			// A store that assigns offsets relative to the partition's
			// high watermark must give duplicates within a commit the
			// absolute offset too.
			name: "duplicates within a commit on a partition that has offsets",
			commits: [][]idem{
				{ok(0, 0, 3, 0)},
				{ok(0, 3, 2, 3), dup(0, 3, 2, 3), ok(0, 5, 1, 5)},
				{dup(0, 3, 2, 3), dup(0, 5, 1, 5), ok(0, 6, 1, 6)},
			},
			hwm: [2]int64{7},
		},
		{
			name: "more batches in one commit than are remembered",
			commits: [][]idem{
				{ok(0, 0, 1, 0)},
				{ok(0, 1, 1, 1), ok(0, 2, 1, 2), ok(0, 3, 1, 3), ok(0, 4, 1, 4), ok(0, 5, 1, 5), ok(0, 6, 1, 6), dup(0, 2, 1, 2), bad(0, 1, 1, errSeq)},
				{dup(0, 6, 1, 6), dup(0, 2, 1, 2), bad(0, 1, 1, errSeq), ok(0, 7, 1, 7)},
			},
			hwm: [2]int64{8},
		},
		{
			name: "producers and partitions are independent",
			commits: [][]idem{
				{ok(0, 0, 1, 0), ok(0, 0, 1, 0).on(defaultProducer, 1), ok(0, 0, 1, 1).on(defaultProducer+1, 0)},
				{ok(0, 1, 1, 2), ok(0, 1, 1, 3).on(defaultProducer+1, 0), ok(0, 1, 1, 1).on(defaultProducer, 1)},
			},
			hwm: [2]int64{4, 2},
		},
		{
			name:    "non-idempotent batches are not checked",
			commits: [][]idem{{ok(0, 0, 1, 0).on(-1, 0), ok(0, 0, 1, 1).on(-1, 0)}, {ok(0, 0, 1, 2).on(-1, 0)}},
			hwm:     [2]int64{3},
		},
	}
	s := open(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := createTopic(t, s, fmt.Sprintf("idempotence-%d", i), 2)
			for j, batches := range tc.commits {
				c := segment()
				for k, b := range batches {
					bc := batch(topic.ID, b.partition, int64(k)*10, 10, b.count)
					bc.ProducerID, bc.ProducerEpoch, bc.BaseSequence = b.producer, b.epoch, b.seq
					c.Batches = append(c.Batches, bc)
				}
				c.Size = int64(len(batches)) * 10
				for k, r := range commit(t, s, c) {
					checkIdem(t, fmt.Sprintf("commit %d batch %d", j, k), batches[k], r)
				}
			}
			for p, want := range tc.hwm {
				if o := offsets(t, s, topic.ID, int32(p)); o.HighWatermark != want {
					t.Errorf("partition %d high watermark %d, want %d", p, o.HighWatermark, want)
				}
			}
		})
	}
}

func checkIdem(t *testing.T, what string, b idem, r metastore.BatchResult) {
	t.Helper()
	if !errors.Is(r.Err, b.err) || (b.err == nil) != (r.Err == nil) {
		t.Errorf("%s (epoch %d seq %d): error %v, want %v", what, b.epoch, b.seq, r.Err, b.err)
		return
	}
	if r.BaseOffset != b.base || r.Duplicate != b.dup {
		t.Errorf("%s (epoch %d seq %d): base %d duplicate %v, want base %d duplicate %v",
			what, b.epoch, b.seq, r.BaseOffset, r.Duplicate, b.base, b.dup)
	}
}

func testInitProducerID(t *testing.T, open func(t *testing.T) producerStore) {
	s := open(t)
	ctx := t.Context()
	errSeq, errEpoch := metastore.ErrOutOfOrderSequence, metastore.ErrInvalidProducerEpoch
	init := func(id int64, epoch int16) (int64, int16, error) { return s.InitProducerID(ctx, id, epoch) }

	id1, e1, err := init(-1, -1)
	wantErr(t, "allocate", err, nil)
	id2, e2, err := init(-1, -1)
	wantErr(t, "allocate again", err, nil)
	if id1 < 0 || id2 < 0 || id1 == id2 || e1 != 0 || e2 != 0 {
		t.Fatalf("allocated (%d, %d) and (%d, %d), want two distinct ids >= 0 with epoch 0", id1, e1, id2, e2)
	}

	steps := []struct {
		name      string
		id        int64
		epoch     int16
		wantEpoch int16
		err       error
	}{
		{"bump", id1, 0, 1, nil},
		{"bump again", id1, 1, 2, nil},
		{"stale epoch", id1, 1, 0, errEpoch},
		{"future epoch", id1, 7, 0, errEpoch},
		{"other producer unaffected", id2, 0, 1, nil},
		{"unknown id", math.MaxInt64 - 1, 0, 0, metastore.ErrUnknownProducerID},
		{"current epoch still bumps", id1, 2, 3, nil},
	}
	for _, st := range steps {
		id, epoch, err := init(st.id, st.epoch)
		wantErr(t, st.name, err, st.err)
		if st.err == nil && (id != st.id || epoch != st.wantEpoch) {
			t.Errorf("%s: (%d, %d), want (%d, %d)", st.name, id, epoch, st.id, st.wantEpoch)
		}
	}

	// Batches follow the producer's epochs: the bumped epoch restarts at
	// sequence 0 and fences the old one.
	topic := createTopic(t, s, "t", 1)
	send := func(epoch int16, seq int32) metastore.BatchResult {
		b := batch(topic.ID, 0, 0, 10, 1)
		b.ProducerID, b.ProducerEpoch, b.BaseSequence = id2, epoch, seq
		return commit(t, s, segment(b))[0]
	}
	if r := send(1, 0); r.Err != nil {
		t.Fatalf("epoch 1 seq 0: %v", r.Err)
	}
	_, e, err := init(id2, 1)
	wantErr(t, "bump to 2", err, nil)
	if r := send(e, 1); !errors.Is(r.Err, errSeq) {
		t.Errorf("new epoch seq 1: %v, want %v", r.Err, errSeq)
	}
	if r := send(e, 0); r.Err != nil || r.BaseOffset != 1 {
		t.Errorf("new epoch seq 0: %+v, want offset 1", r)
	}
	if r := send(1, 1); !errors.Is(r.Err, errEpoch) {
		t.Errorf("old epoch after bump: %v, want %v", r.Err, errEpoch)
	}

	t.Run("EpochExhaustion", func(t *testing.T) {
		if testing.Short() {
			t.Skip("bumps the epoch 32767 times")
		}
		id, epoch, err := init(-1, -1)
		wantErr(t, "allocate", err, nil)
		for epoch < math.MaxInt16 {
			var next int16
			if _, next, err = init(id, epoch); err != nil || next != epoch+1 {
				t.Fatalf("bump (%d, %d): epoch %d, %v", id, epoch, next, err)
			}
			epoch = next
		}
		fresh, freshEpoch, err := init(id, epoch)
		wantErr(t, "bump past MaxInt16", err, nil)
		if fresh == id || fresh == id1 || fresh == id2 || freshEpoch != 0 {
			t.Errorf("bump past MaxInt16 gave (%d, %d), want a fresh id with epoch 0", fresh, freshEpoch)
		}
	})
}
