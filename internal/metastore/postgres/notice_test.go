package postgres

import (
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func TestNoticeRoundTrip(t *testing.T) {
	a, b := metastore.TopicID{1, 2, 3}, metastore.TopicID{0xff, 9}
	cases := []metastore.CommitNotice{
		{},
		{Partitions: []metastore.TopicPartition{}},
		{Partitions: []metastore.TopicPartition{{TopicID: a, Partition: 0}}},
		{Partitions: []metastore.TopicPartition{
			{TopicID: a, Partition: 3}, {TopicID: a, Partition: 1}, {TopicID: b, Partition: 0}, {TopicID: a, Partition: 7},
		}},
	}
	for _, n := range cases {
		payload := encodeNotice("origin-1", n)
		origin, got, err := decodeNotice(payload)
		if err != nil || origin != "origin-1" || !slices.Equal(got.Partitions, n.Partitions) || (got.Partitions == nil) != (n.Partitions == nil) {
			t.Errorf("%+v → %q → %q %+v %v", n, payload, origin, got, err)
		}
	}
}

func TestLargeNoticeMeansEverything(t *testing.T) {
	var n metastore.CommitNotice
	for p := range int32(5000) {
		n.Partitions = append(n.Partitions, metastore.TopicPartition{TopicID: metastore.TopicID{byte(p % 7)}, Partition: p})
	}
	payload := encodeNotice("o", n)
	if len(payload) > maxPayload {
		t.Fatalf("payload of %d bytes", len(payload))
	}
	if _, got, err := decodeNotice(payload); err != nil || got.Partitions != nil {
		t.Fatalf("decoded %d partitions, %v; want everything (nil)", len(got.Partitions), err)
	}
}

func TestBadNotices(t *testing.T) {
	for _, payload := range []string{"", "no-origin", "o|zz:1", "o|0102:1", "o|00000000000000000000000000000000:x"} {
		if _, _, err := decodeNotice(payload); err == nil {
			t.Errorf("decodeNotice(%q) succeeded", payload)
		}
	}
}
