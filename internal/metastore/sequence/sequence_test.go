package sequence_test

import (
	"errors"
	"math"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

func TestLast(t *testing.T) {
	cases := []struct {
		base  int32
		count int64
		want  int32
	}{
		{0, 1, 0},
		{0, 5, 4},
		{math.MaxInt32, 1, math.MaxInt32},
		{math.MaxInt32, 2, 0},
		{math.MaxInt32 - 1, 4, 1},
	}
	for _, tc := range cases {
		if got := sequence.Last(tc.base, tc.count); got != tc.want {
			t.Errorf("Last(%d, %d) = %d, want %d", tc.base, tc.count, got, tc.want)
		}
	}
	if got := sequence.Next(math.MaxInt32); got != 0 {
		t.Errorf("Next(MaxInt32) = %d, want 0", got)
	}
}

func TestCheck(t *testing.T) {
	st := &sequence.State{Epoch: 2, LastSeq: 9, Recent: []sequence.Batch{{0, 4, 100}, {5, 9, 105}}}
	cases := []struct {
		name        string
		st          *sequence.State
		epoch       int16
		first, last int32
		dupBase     int64
		dup         bool
		err         error
	}{
		{"no state accepts any sequence", nil, 0, 42, 43, 0, false, nil},
		{"negative sequence", nil, 0, -1, 0, 0, false, metastore.ErrOutOfOrderSequence},
		{"next in order", st, 2, 10, 12, 0, false, nil},
		{"gap", st, 2, 11, 12, 0, false, metastore.ErrOutOfOrderSequence},
		{"duplicate", st, 2, 5, 9, 105, true, nil},
		{"partial overlap", st, 2, 5, 8, 0, false, metastore.ErrOutOfOrderSequence},
		{"stale epoch", st, 1, 10, 10, 0, false, metastore.ErrInvalidProducerEpoch},
		{"new epoch from zero", st, 3, 0, 0, 0, false, nil},
		{"new epoch not from zero", st, 3, 10, 10, 0, false, metastore.ErrOutOfOrderSequence},
	}
	for _, tc := range cases {
		base, dup, err := tc.st.Check(tc.epoch, tc.first, tc.last)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) || dup != tc.dup || base != tc.dupBase {
			t.Errorf("%s: (%d, %v, %v), want (%d, %v, %v)", tc.name, base, dup, err, tc.dupBase, tc.dup, tc.err)
		}
	}
}

func TestAcceptKeepsTheLastBatches(t *testing.T) {
	var st *sequence.State
	for i := range int32(7) {
		st = st.Accept(0, i, i, int64(i)*10)
	}
	if len(st.Recent) != sequence.RecentBatches || st.Recent[0].FirstSeq != 2 || st.LastSeq != 6 {
		t.Fatalf("after 7 batches: %+v, want the last %d", st, sequence.RecentBatches)
	}
	bumped := st.Accept(1, 0, 0, 99)
	if len(bumped.Recent) != 1 || bumped.Epoch != 1 || len(st.Recent) != sequence.RecentBatches {
		t.Fatalf("new epoch: %+v (old %+v), want only the new batch and the old state untouched", bumped, st)
	}
}
