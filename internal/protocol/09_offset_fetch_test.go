package protocol_test

import (
	"fmt"
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

// TestOffsetFetchRequireStable: while a transaction holds an offset of a
// group pending (TxnOffsetCommit, not yet ended), OffsetFetch with
// RequireStable (v7+, KIP-447) answers that partition
// UNSTABLE_OFFSET_COMMIT with offset -1, in every form of the request,
// so that a new member does not start from the offset before the
// transaction's; without RequireStable, or before v7, the committed
// offset is answered. Other partitions and groups are unaffected, and the
// transaction's commit makes its offset the stable one.
func TestOffsetFetchRequireStable(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.commit(9, "g", -1, "", "t", 0, 7)
	f.commit(9, "g", -1, "", "t", 1, 3)

	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.TransactionalID, initReq.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60_000
	ip := do[*kmsg.InitProducerIDResponse](f, 4, initReq)
	expectCode(t, "InitProducerId", ip.ErrorCode, 0)
	addReq := kmsg.NewPtrAddOffsetsToTxnRequest()
	addReq.TransactionalID, addReq.ProducerID, addReq.ProducerEpoch, addReq.Group = "tx", ip.ProducerID, ip.ProducerEpoch, "g"
	expectCode(t, "AddOffsetsToTxn", do[*kmsg.AddOffsetsToTxnResponse](f, 3, addReq).ErrorCode, 0)
	commitReq := kmsg.NewPtrTxnOffsetCommitRequest()
	commitReq.TransactionalID, commitReq.Group, commitReq.ProducerID, commitReq.ProducerEpoch = "tx", "g", ip.ProducerID, ip.ProducerEpoch
	commitReq.Generation = -1
	commitReq.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 20, LeaderEpoch: -1}}}}
	expectCode(t, "TxnOffsetCommit", do[*kmsg.TxnOffsetCommitResponse](f, 3, commitReq).Topics[0].Partitions[0].ErrorCode, 0)

	// fetch answers "partition:offset/code" per partition of each group.
	fetch := func(version int16, stable bool, groups []string, all bool) map[string][]string {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.RequireStable = stable
		topics := []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
		if all {
			topics = nil
		}
		if version < 8 {
			req.Group, req.Topics = groups[0], topics
		}
		for _, g := range groups {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = g
			if !all {
				rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0, 1}}}
			}
			req.Groups = append(req.Groups, rg)
		}
		r := do[*kmsg.OffsetFetchResponse](f, version, req)
		out := map[string][]string{}
		add := func(g string, p int32, offset int64, code int16) {
			out[g] = append(out[g], fmt.Sprintf("%d:%d/%s", p, offset, codeName(code)))
		}
		if version < 8 {
			for _, rt := range r.Topics {
				for _, p := range rt.Partitions {
					add(groups[0], p.Partition, p.Offset, p.ErrorCode)
				}
			}
			return out
		}
		for _, rg := range r.Groups {
			for _, rt := range rg.Topics {
				for _, p := range rt.Partitions {
					add(rg.Group, p.Partition, p.Offset, p.ErrorCode)
				}
			}
		}
		return out
	}
	unstable := kerr.UnstableOffsetCommit.Code
	pending := []string{"0:-1/" + codeName(unstable), "1:3/NONE"}
	committed := []string{"0:7/NONE", "1:3/NONE"}
	for _, tc := range []struct {
		name    string
		version int16
		stable  bool
		groups  []string
		all     bool
		want    map[string][]string
	}{
		{"v7 stable", 7, true, []string{"g"}, false, map[string][]string{"g": pending}},
		{"v7 stable, all", 7, true, []string{"g"}, true, map[string][]string{"g": pending}},
		{"v7", 7, false, []string{"g"}, false, map[string][]string{"g": committed}},
		{"v6 has no RequireStable", 6, true, []string{"g"}, false, map[string][]string{"g": committed}},
		{"v8 stable, two groups", 8, true, []string{"g", "other"}, false,
			map[string][]string{"g": pending, "other": {"0:-1/NONE", "1:-1/NONE"}}},
		{"v8 stable, all", 8, true, []string{"g"}, true, map[string][]string{"g": pending}},
		{"v8", 8, false, []string{"g"}, false, map[string][]string{"g": committed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fetch(tc.version, tc.stable, tc.groups, tc.all); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	endReq := kmsg.NewPtrEndTxnRequest()
	endReq.TransactionalID, endReq.ProducerID, endReq.ProducerEpoch, endReq.Commit = "tx", ip.ProducerID, ip.ProducerEpoch, true
	expectCode(t, "EndTxn", do[*kmsg.EndTxnResponse](f, 3, endReq).ErrorCode, 0)
	if got, want := fetch(7, true, []string{"g"}, false), map[string][]string{"g": {"0:20/NONE", "1:3/NONE"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the commit: %v, want %v", got, want)
	}
}
