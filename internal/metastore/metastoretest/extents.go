package metastoretest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func testExtents(t *testing.T, open func(t *testing.T) recordStore) {
	t.Run("From", func(t *testing.T) {
		s := open(t)
		// Partitions 0 and 2 surround partition 1, and other topics hold
		// extents too, so seeks near a partition's ends land on other
		// partitions' extents.
		topic := createTopic(t, s, "t", 3)
		for _, name := range []string{"other-1", "other-2", "other-3"} {
			other := createTopic(t, s, name, 1)
			commitOK(t, s, segment(batch(other.ID, 0, 0, 10, 50)))
		}
		// Partition 1: extents [0,10) [10,15) [15,40); partition 2: [0,3).
		commitOK(t, s, segment(batch(topic.ID, 1, 0, 10, 10), batch(topic.ID, 2, 10, 10, 3)))
		commitOK(t, s, segment(batch(topic.ID, 1, 0, 10, 5)))
		commitOK(t, s, segment(batch(topic.ID, 1, 0, 10, 25)))

		cases := []struct {
			partition int32
			from      int64
			limit     int
			want      []int64 // base offsets
		}{
			{1, 0, 0, []int64{0, 10, 15}},
			{1, 0, -1, []int64{0, 10, 15}},
			{1, 9, 0, []int64{0, 10, 15}},
			{1, 10, 0, []int64{10, 15}},
			{1, 14, 0, []int64{10, 15}},
			{1, 15, 0, []int64{15}},
			{1, 39, 0, []int64{15}},
			{1, 40, 0, nil},
			{1, 1000, 0, nil},
			{1, 0, 1, []int64{0}},
			{1, 12, 1, []int64{10}},
			{1, 5, 2, []int64{0, 10}},
			{1, 5, 3, []int64{0, 10, 15}},
			{1, 5, 10, []int64{0, 10, 15}},
			{2, 0, 0, []int64{0}},
			{2, 2, 0, []int64{0}},
			{2, 3, 0, nil},
			{0, 0, 0, nil},
			{0, 5, 0, nil},
		}
		for _, tc := range cases {
			es := extents(t, s, topic.ID, tc.partition, tc.from, tc.limit)
			var got []int64
			for _, e := range es {
				if e.TopicID != topic.ID || e.Partition != tc.partition {
					t.Errorf("Extents(%d, from %d): extent of another partition %+v", tc.partition, tc.from, e)
				}
				got = append(got, e.BaseOffset)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Extents(%d, from %d, limit %d) bases %v, want %v", tc.partition, tc.from, tc.limit, got, tc.want)
			}
		}
	})

	t.Run("UnknownPartition", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 2)
		commitOK(t, s, segment(batch(topic.ID, 0, 0, 10, 1), batch(topic.ID, 1, 10, 10, 1)))
		targets := []struct {
			id metastore.TopicID
			p  int32
		}{{metastore.TopicID{9}, 0}, {topic.ID, 2}, {topic.ID, -1}}
		for _, tg := range targets {
			what := fmt.Sprintf("%x/%d", tg.id, tg.p)
			_, err := s.Offsets(t.Context(), tg.id, tg.p)
			wantErr(t, "Offsets "+what, err, metastore.ErrUnknownTopicOrPartition)
			_, err = s.Extents(t.Context(), tg.id, tg.p, 0, 0)
			wantErr(t, "Extents "+what, err, metastore.ErrUnknownTopicOrPartition)
			_, _, err = s.ExtentAtTimestamp(t.Context(), tg.id, tg.p, 0)
			wantErr(t, "ExtentAtTimestamp "+what, err, metastore.ErrUnknownTopicOrPartition)
			_, _, err = s.ExtentWithMaxTimestamp(t.Context(), tg.id, tg.p)
			wantErr(t, "ExtentWithMaxTimestamp "+what, err, metastore.ErrUnknownTopicOrPartition)
		}
	})

	t.Run("Timestamps", func(t *testing.T) {
		s := open(t)
		topic := createTopic(t, s, "t", 2)
		// Separate commits, so one extent each: bases 0, 2, 4, 6.
		for _, ts := range []int64{100, 300, 200, 300} {
			b := batch(topic.ID, 0, 0, 10, 2)
			b.MaxTimestamp = ts
			commitOK(t, s, segment(b))
		}
		cases := []struct {
			ts        int64
			wantBase  int64
			wantFound bool
		}{
			{-1, 0, true}, {0, 0, true}, {100, 0, true}, {101, 2, true},
			{250, 2, true}, {300, 2, true}, {301, 0, false},
		}
		for _, tc := range cases {
			e, found, err := s.ExtentAtTimestamp(t.Context(), topic.ID, 0, tc.ts)
			wantErr(t, "ExtentAtTimestamp", err, nil)
			if found != tc.wantFound || (found && e.BaseOffset != tc.wantBase) {
				t.Errorf("ExtentAtTimestamp(%d) = base %d found %v, want base %d found %v", tc.ts, e.BaseOffset, found, tc.wantBase, tc.wantFound)
			}
		}
		e, found, err := s.ExtentWithMaxTimestamp(t.Context(), topic.ID, 0)
		wantErr(t, "ExtentWithMaxTimestamp", err, nil)
		if !found || e.BaseOffset != 2 || e.MaxTimestamp != 300 {
			t.Errorf("ExtentWithMaxTimestamp = %+v found %v, want the first with 300 (base 2)", e, found)
		}

		// An empty partition has neither.
		if _, found, err := s.ExtentAtTimestamp(t.Context(), topic.ID, 1, 0); err != nil || found {
			t.Errorf("ExtentAtTimestamp on empty partition: found %v, err %v", found, err)
		}
		if _, found, err := s.ExtentWithMaxTimestamp(t.Context(), topic.ID, 1); err != nil || found {
			t.Errorf("ExtentWithMaxTimestamp on empty partition: found %v, err %v", found, err)
		}
	})
}
