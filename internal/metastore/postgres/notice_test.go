package postgres

import (
	"slices"
	"testing"
	"time"

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

// Without the lost-notice poll nothing prunes what heard records, so it
// records nothing.
func TestHeardOnlyWithThePoll(t *testing.T) {
	var h heard
	tp := metastore.TopicPartition{Partition: 3}
	h.record(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}}, time.Now())
	if len(h.at) != 0 {
		t.Fatalf("recorded %d partitions with the poll off", len(h.at))
	}
	h.start()
	before := time.Now()
	h.record(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}}, before.Add(time.Millisecond))
	if !h.since(tp, before) || h.since(tp, before.Add(time.Second)) {
		t.Fatal("since does not compare the recorded time")
	}
	h.prune(before.Add(time.Second))
	if len(h.at) != 0 {
		t.Fatal("prune kept an entry older than its time")
	}
}

func TestEncodeNoticesSplits(t *testing.T) {
	var parts []metastore.TopicPartition
	for p := range int32(5000) {
		parts = append(parts, metastore.TopicPartition{TopicID: metastore.TopicID{byte(p % 7)}, Partition: p})
	}
	payloads := encodeNotices("o", parts)
	var got []metastore.TopicPartition
	for _, p := range payloads {
		if len(p) > maxPayload {
			t.Fatalf("payload of %d bytes", len(p))
		}
		_, n, err := decodeNotice(p)
		if err != nil || n.Partitions == nil {
			t.Fatalf("payload %.40q: %v, everything=%v", p, err, n.Partitions == nil)
		}
		got = append(got, n.Partitions...)
	}
	if len(payloads) < 2 || len(got) != len(parts) {
		t.Fatalf("%d payloads with %d partitions, want several with %d", len(payloads), len(got), len(parts))
	}
}
