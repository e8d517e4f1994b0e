package metastore_test

import (
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func TestTxnListsRoundTrip(t *testing.T) {
	parts := []metastore.TopicPartition{
		{TopicID: metastore.TopicID{1}, Partition: 0},
		{TopicID: metastore.TopicID{1}, Partition: 7},
		{TopicID: metastore.TopicID{2, 255}, Partition: 1 << 30},
	}
	got, err := metastore.DecodeTxnPartitions(metastore.EncodeTxnPartitions(parts))
	if err != nil || !slices.Equal(got, parts) {
		t.Fatalf("partitions round trip: %v, %v", got, err)
	}
	groups := []string{"", "a", "a\x00", "\xff\xfe", string(make([]byte, 300))}
	slices.Sort(groups)
	gotGroups, err := metastore.DecodeTxnGroups(metastore.EncodeTxnGroups(groups))
	if err != nil || !slices.Equal(gotGroups, groups) {
		t.Fatalf("groups round trip: %q, %v", gotGroups, err)
	}
	if p, err := metastore.DecodeTxnPartitions(nil); err != nil || p != nil {
		t.Fatalf("no partitions: %v, %v", p, err)
	}
	if g, err := metastore.DecodeTxnGroups(nil); err != nil || g != nil {
		t.Fatalf("no groups: %v, %v", g, err)
	}
}

func TestTxnListsCorrupt(t *testing.T) {
	unsorted := metastore.EncodeTxnPartitions([]metastore.TopicPartition{{TopicID: metastore.TopicID{2}}, {TopicID: metastore.TopicID{1}}})
	for name, b := range map[string][]byte{
		"short":     make([]byte, 19),
		"unsorted":  unsorted,
		"repeated":  metastore.EncodeTxnPartitions([]metastore.TopicPartition{{}, {}}),
		"negative":  metastore.EncodeTxnPartitions([]metastore.TopicPartition{{Partition: -1}}),
		"too long":  append(make([]byte, 20), 1),
		"truncated": metastore.EncodeTxnPartitions([]metastore.TopicPartition{{}})[:10],
	} {
		if _, err := metastore.DecodeTxnPartitions(b); err == nil {
			t.Errorf("partitions %s: decoded", name)
		}
	}
	for name, b := range map[string][]byte{
		"length past the end": {5, 'a'},
		"huge length":         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bad varint":          {0x80},
		"unsorted":            metastore.EncodeTxnGroups([]string{"b", "a"}),
		"repeated":            metastore.EncodeTxnGroups([]string{"a", "a"}),
	} {
		if _, err := metastore.DecodeTxnGroups(b); err == nil {
			t.Errorf("groups %s: decoded", name)
		}
	}
}

// FuzzTxnLists feeds stored-list decoders arbitrary bytes: they must fail
// or return what encodes back to the same bytes, and never panic.
func FuzzTxnLists(f *testing.F) {
	f.Add(metastore.EncodeTxnPartitions([]metastore.TopicPartition{{Partition: 3}, {TopicID: metastore.TopicID{9}}}))
	f.Add(metastore.EncodeTxnGroups([]string{"a", "bc", "d\xff"}))
	f.Add([]byte{0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if ps, err := metastore.DecodeTxnPartitions(b); err == nil {
			if got := metastore.EncodeTxnPartitions(ps); string(got) != string(b) {
				t.Fatalf("partitions %x decode to %v, which encode to %x", b, ps, got)
			}
		}
		if gs, err := metastore.DecodeTxnGroups(b); err == nil {
			// Uvarints have several encodings; the names must survive.
			again, err := metastore.DecodeTxnGroups(metastore.EncodeTxnGroups(gs))
			if err != nil || !slices.Equal(again, gs) {
				t.Fatalf("groups %x decode to %q, which do not round-trip: %q, %v", b, gs, again, err)
			}
		}
	})
}

func TestNewPartitionOffsets(t *testing.T) {
	cases := []struct {
		logStart, hwm, oldest int64
		want                  int64
	}{
		{0, 10, -1, 10},
		{0, 10, 4, 4},
		{6, 10, 4, 6}, // never below the log start
		{10, 10, 4, 10},
		{0, 0, -1, 0},
	}
	for _, tc := range cases {
		o := metastore.NewPartitionOffsets(tc.logStart, tc.hwm, tc.oldest)
		if o.LastStableOffset != tc.want || o.LogStartOffset != tc.logStart || o.HighWatermark != tc.hwm {
			t.Errorf("NewPartitionOffsets(%d, %d, %d) = %+v, want last stable offset %d", tc.logStart, tc.hwm, tc.oldest, o, tc.want)
		}
	}
}
