package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchOffset answers OffsetFetch v7 for one partition.
func (f *fixture) fetchOffset(group, topic string, partition int32) kmsg.OffsetFetchResponseTopicPartition {
	f.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
	r := do[*kmsg.OffsetFetchResponse](f, 7, req)
	if r.ErrorCode != 0 {
		f.t.Fatalf("offset fetch %s: %s", group, codeName(r.ErrorCode))
	}
	return r.Topics[0].Partitions[0]
}

func TestOffsetFetch(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.commit(9, "g", -1, "", "t", 0, 7)

	type part struct {
		topic     string
		partition int32
		offset    int64
		epoch     int32 // checked from v5
		metadata  string
		code      int16
	}
	for _, tc := range []struct {
		name     string
		version  int16
		group    string
		topics   []kmsg.OffsetFetchRequestTopic // nil: all (v2+)
		wantCode int16                          // group level (v2+)
		want     []part
	}{
		{name: "committed and not", version: 7, group: "g", topics: []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}},
			want: []part{{"t", 0, 7, 0, "m", 0}, {"t", 1, -1, -1, "", 0}}},
		{name: "v1", version: 1, group: "g", topics: []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}},
			want: []part{{"t", 0, 7, 0, "m", 0}}},
		// Clients depend on this: no error, offset -1.
		{name: "unknown group", version: 7, group: "nope", topics: []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}},
			want: []part{{"t", 0, -1, -1, "", 0}}},
		{name: "unknown group v1", version: 1, group: "nope", topics: []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}},
			want: []part{{"t", 0, -1, -1, "", 0}}},
		{name: "unknown topic", version: 7, group: "g", topics: []kmsg.OffsetFetchRequestTopic{{Topic: "nope", Partitions: []int32{0}}},
			want: []part{{"nope", 0, -1, -1, "", 0}}},
		{name: "all committed (null topics)", version: 7, group: "g",
			want: []part{{"t", 0, 7, 0, "m", 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group, req.Topics = tc.group, tc.topics
			r := do[*kmsg.OffsetFetchResponse](f, tc.version, req)
			if tc.version >= 2 {
				expectCode(t, "group", r.ErrorCode, tc.wantCode)
			}
			var got []part
			for _, rt := range r.Topics {
				for _, p := range rt.Partitions {
					got = append(got, part{rt.Topic, p.Partition, p.Offset, p.LeaderEpoch, derefOr(p.Metadata, "<null>"), p.ErrorCode})
				}
			}
			for i := range tc.want {
				if tc.version < 5 {
					tc.want[i].epoch = got[min(i, len(got)-1)].epoch
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("partitions %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("partition %+v, want %+v", got[i], tc.want[i])
				}
			}
		})
	}
}

// TestOffsetFetchGroups: v8+ fetches several groups at once, each with
// its own error; v10 names topics by id.
func TestOffsetFetchGroups(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.commit(9, "a", -1, "", "t", 0, 1)
	f.commit(9, "b", -1, "", "t", 0, 2)
	id := f.metadata(12, false, "t").Topics[0].TopicID

	req := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range []string{"a", "b", "nope"} {
		req.Groups = append(req.Groups, kmsg.OffsetFetchRequestGroup{Group: g, MemberEpoch: -1,
			Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}})
	}
	r := do[*kmsg.OffsetFetchResponse](f, 9, req)
	want := []struct {
		group  string
		code   int16
		offset int64
	}{{"a", 0, 1}, {"b", 0, 2}, {"nope", 0, -1}}
	if len(r.Groups) != len(want) {
		t.Fatalf("%d groups answered, want %d", len(r.Groups), len(want))
	}
	for i, w := range want {
		g := r.Groups[i]
		expectCode(t, "group "+w.group, g.ErrorCode, w.code)
		if g.Group != w.group || len(g.Topics) != 1 || g.Topics[0].Partitions[0].Offset != w.offset {
			t.Errorf("group %q: %+v, want offset %d", w.group, g.Topics, w.offset)
		}
	}

	for _, tc := range []struct {
		name     string
		id       [16]byte
		wantCode int16
		want     int64
	}{
		{name: "v10 by id", id: id, want: 1},
		{name: "v10 unknown id", id: [16]byte{7}, wantCode: kerr.UnknownTopicID.Code, want: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "a", MemberEpoch: -1,
				Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: tc.id, Partitions: []int32{0}}}}}
			g := do[*kmsg.OffsetFetchResponse](f, 10, req).Groups[0]
			expectCode(t, "group", g.ErrorCode, 0)
			p := g.Topics[0].Partitions[0]
			expectCode(t, "partition", p.ErrorCode, tc.wantCode)
			if p.Offset != tc.want {
				t.Errorf("offset %d, want %d", p.Offset, tc.want)
			}
		})
	}
}
