package protocol_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareGroupAdminRequests: the share-group admin APIs as raw
// requests (test/compat's TestShareGroupAdmin goes through kadm):
// DescribeShareGroupOffsets v0 and v1 (start offsets, lag), unknown
// groups, topics and partitions; AlterShareGroupOffsets and
// DeleteShareGroupOffsets refused while the group has a member, then
// applied; ListGroups v5 filtered by type and state; DeleteGroups of a
// share group and of a missing one.
func TestShareGroupAdminRequests(t *testing.T) {
	f := startShares(t)
	f.createTopic("t", 2)
	id := f.topicID("t")
	f.produce("t", 0, 5, time.Now().UnixMilli())

	if r := shareHeartbeat(f, "g", "m", 0, "t"); r.ErrorCode != 0 {
		t.Fatalf("join: %s", codeName(r.ErrorCode))
	}
	sf := func(req *kmsg.ShareFetchRequest) kmsg.ShareFetchResponseTopicPartition {
		t.Helper()
		return onlyPartition(t, do[*kmsg.ShareFetchResponse](f, 1, req))
	}
	if p := sf(shareFetchReq("g", "m", 0, id, 0)); len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].LastOffset != 4 {
		t.Fatalf("fetch: %+v", p.AcquiredRecords)
	}
	if p := sf(shareFetchReq("g", "m", 1, id, 0, shareAck{0, 2, []int8{1}})); p.AcknowledgeErrorCode != 0 {
		t.Fatalf("accept 0-2: %s", codeName(p.AcknowledgeErrorCode))
	}

	type part struct {
		start, lag int64
		code       int16
	}
	describe := func(version int16, group string, topics map[string][]int32) (int16, map[string]map[int32]part) {
		t.Helper()
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = group
		if topics != nil {
			rg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{}
			for name, ps := range topics {
				rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
				rt.Topic, rt.Partitions = name, ps
				rg.Topics = append(rg.Topics, rt)
			}
		}
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{rg}
		resp := do[*kmsg.DescribeShareGroupOffsetsResponse](f, version, req)
		if len(resp.Groups) != 1 || resp.Groups[0].GroupID != group {
			t.Fatalf("describe %s: %+v", group, resp.Groups)
		}
		out := map[string]map[int32]part{}
		for _, rt := range resp.Groups[0].Topics {
			out[rt.Topic] = map[int32]part{}
			for _, rp := range rt.Partitions {
				out[rt.Topic][rp.Partition] = part{rp.StartOffset, rp.Lag, rp.ErrorCode}
			}
		}
		return resp.Groups[0].ErrorCode, out
	}
	// Topics null: every share partition the group has (only 0 has a
	// state). Start 3, lag 2 (3 and 4 are acquired, not acknowledged).
	if code, got := describe(1, "g", nil); code != 0 || len(got) != 1 || len(got["t"]) != 1 || got["t"][0] != (part{3, 2, 0}) {
		t.Fatalf("describe all: %s, %+v", codeName(code), got)
	}
	code, got := describe(1, "g", map[string][]int32{"t": {0, 1, 7}, "nope": {0}})
	if code != 0 || got["t"][0] != (part{3, 2, 0}) || got["t"][1] != (part{-1, -1, 0}) ||
		got["t"][7].code != kerr.UnknownTopicOrPartition.Code || got["nope"][0].code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("describe named partitions: %s, %+v", codeName(code), got)
	}
	// v0 has no lag: the start offset alone.
	if code, got := describe(0, "g", map[string][]int32{"t": {0}}); code != 0 || got["t"][0].start != 3 {
		t.Fatalf("describe v0: %s, %+v", codeName(code), got)
	}
	if code, _ := describe(1, "missing", nil); code != kerr.GroupIDNotFound.Code {
		t.Errorf("describe a missing group: %s, want GROUP_ID_NOT_FOUND", codeName(code))
	}
	if code, _ := describe(1, "", nil); code != kerr.InvalidGroupID.Code {
		t.Errorf("describe an empty group id: %s, want INVALID_GROUP_ID", codeName(code))
	}

	alter := func(starts map[string]map[int32]int64) (int16, map[string]map[int32]int16) {
		t.Helper()
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = "g"
		for name, ps := range starts {
			rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
			rt.Topic = name
			for p, off := range ps {
				rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
				rp.Partition, rp.StartOffset = p, off
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp := do[*kmsg.AlterShareGroupOffsetsResponse](f, 0, req)
		out := map[string]map[int32]int16{}
		for _, rt := range resp.Topics {
			out[rt.Topic] = map[int32]int16{}
			for _, rp := range rt.Partitions {
				out[rt.Topic][rp.Partition] = rp.ErrorCode
			}
		}
		return resp.ErrorCode, out
	}
	deleteOffsets := func(topics ...string) (int16, map[string]int16) {
		t.Helper()
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = "g"
		for _, name := range topics {
			rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
		}
		resp := do[*kmsg.DeleteShareGroupOffsetsResponse](f, 0, req)
		out := map[string]int16{}
		for _, rt := range resp.Topics {
			out[rt.Topic] = rt.ErrorCode
		}
		return resp.ErrorCode, out
	}
	// A member: both refused, nothing changes.
	if code, parts := alter(map[string]map[int32]int64{"t": {0: 1}}); code != kerr.NonEmptyGroup.Code || parts["t"][0] != kerr.NonEmptyGroup.Code {
		t.Fatalf("alter with a member: %s, %+v; want NON_EMPTY_GROUP", codeName(code), parts)
	}
	if code, _ := deleteOffsets("t"); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete offsets with a member: %s, want NON_EMPTY_GROUP", codeName(code))
	}
	if _, got := describe(1, "g", nil); got["t"][0] != (part{3, 2, 0}) {
		t.Fatalf("after refused changes: %+v", got)
	}

	listed := func(types, states []string) map[string]kmsg.ListGroupsResponseGroup {
		t.Helper()
		req := kmsg.NewPtrListGroupsRequest()
		req.TypesFilter, req.StatesFilter = types, states
		resp := do[*kmsg.ListGroupsResponse](f, 5, req)
		if resp.ErrorCode != 0 {
			t.Fatalf("ListGroups: %s", codeName(resp.ErrorCode))
		}
		out := map[string]kmsg.ListGroupsResponseGroup{}
		for _, g := range resp.Groups {
			out[g.Group] = g
		}
		return out
	}
	if g, ok := listed([]string{"share"}, nil)["g"]; !ok || g.GroupType != "share" || g.ProtocolType != "share" || g.GroupState != "Stable" {
		t.Fatalf("ListGroups(share): %+v (found %v)", g, ok)
	}
	if _, ok := listed([]string{"classic", "consumer"}, nil)["g"]; ok {
		t.Fatal("a share group listed by ListGroups(classic, consumer)")
	}
	if _, ok := listed(nil, []string{"Empty"})["g"]; ok {
		t.Fatal("a share group with a member listed as Empty")
	}

	// The member leaves and closes its share session (releasing 3-4).
	if r := shareHeartbeat(f, "g", "m", -1); r.ErrorCode != 0 {
		t.Fatalf("leave: %s", codeName(r.ErrorCode))
	}
	if resp := do[*kmsg.ShareFetchResponse](f, 1, shareFetchReq("g", "m", -1, id, 0)); resp.ErrorCode != 0 {
		t.Fatalf("close the share session: %s", codeName(resp.ErrorCode))
	}
	if g, ok := listed([]string{"SHARE"}, []string{"empty"})["g"]; !ok || g.GroupState != "Empty" {
		t.Fatalf("ListGroups(share, empty) after the leave: %+v (found %v)", g, ok)
	}

	code, parts := alter(map[string]map[int32]int64{"t": {0: 1, 1: 100}, "nope": {0: 0}})
	if code != 0 || parts["t"][0] != 0 || parts["t"][1] != kerr.OffsetOutOfRange.Code || parts["nope"][0] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("alter: %s, %+v; want partition 0 set, 1 OFFSET_OUT_OF_RANGE, nope UNKNOWN_TOPIC_OR_PARTITION", codeName(code), parts)
	}
	// Start 1: offsets 1-4 are the lag, in flight no more.
	if _, got := describe(1, "g", nil); got["t"][0] != (part{1, 4, 0}) || len(got["t"]) != 1 {
		t.Fatalf("after alter: %+v, want partition 0 at 1 with lag 4", got)
	}
	if code, topics := deleteOffsets("t", "nope"); code != 0 || topics["t"] != 0 || topics["nope"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete offsets: %s, %+v", codeName(code), topics)
	}
	if code, got := describe(1, "g", nil); code != 0 || len(got) != 0 {
		t.Fatalf("after deleting the topic's offsets: %s, %+v; want no share partition", codeName(code), got)
	}

	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"g", "missing"}
	res := map[string]int16{}
	for _, g := range do[*kmsg.DeleteGroupsResponse](f, 2, dg).Groups {
		res[g.Group] = g.ErrorCode
	}
	if res["g"] != 0 || res["missing"] != kerr.GroupIDNotFound.Code {
		t.Fatalf("DeleteGroups: g %s, missing %s", codeName(res["g"]), codeName(res["missing"]))
	}
	if _, ok := listed([]string{"share"}, nil)["g"]; ok {
		t.Fatal("a deleted share group listed")
	}
	if code, _ := describe(1, "g", nil); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe the deleted group: %s, want GROUP_ID_NOT_FOUND", codeName(code))
	}
}
