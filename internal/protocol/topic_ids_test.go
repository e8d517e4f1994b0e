package protocol_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
)

// fetchByID fetches one partition of a topic named by ID (v13+).
func fetchByID(id [16]byte, partition int32, offset int64) *kmsg.FetchRequest {
	req := fetchRequest("", partition, offset)
	req.Topics[0].TopicID = id
	return req
}

// TestFetchByTopicID: Fetch v13-v17 name topics by ID and answer with
// IDs; an unknown ID is UNKNOWN_TOPIC_ID for its partitions (KIP-516).
func TestFetchByTopicID(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	id := f.metadata(13, false, "t").Topics[0].TopicID
	f.produce("t", 1, 3, 1000)
	unknown := [16]byte{0xde, 0xad}
	for v := int16(13); v <= 17; v++ {
		req := fetchByID(id, 1, 0)
		other := kmsg.NewFetchRequestTopic()
		other.TopicID = unknown
		other.Partitions = append(other.Partitions, req.Topics[0].Partitions[0])
		req.Topics = append(req.Topics, other)
		resp := do[*kmsg.FetchResponse](f, v, req)
		expectCode(t, fmt.Sprintf("v%d", v), resp.ErrorCode, 0)
		if len(resp.Topics) != 2 {
			t.Fatalf("v%d: %d topics answered", v, len(resp.Topics))
		}
		got := resp.Topics[0]
		if got.TopicID != id || got.Topic != "" {
			t.Errorf("v%d: answered topic %q id %x, want id %x only", v, got.Topic, got.TopicID, id)
		}
		p := got.Partitions[0]
		expectCode(t, fmt.Sprintf("v%d partition", v), p.ErrorCode, 0)
		if offs := recordOffsets(t, p.RecordBatches); len(offs) != 3 || p.HighWatermark != 3 {
			t.Errorf("v%d: offsets %v, high watermark %d; want 0-2, 3", v, offs, p.HighWatermark)
		}
		bad := resp.Topics[1]
		if bad.TopicID != unknown {
			t.Errorf("v%d: unknown topic answered as %x", v, bad.TopicID)
		}
		expectCode(t, fmt.Sprintf("v%d unknown id", v), bad.Partitions[0].ErrorCode, kerr.UnknownTopicID.Code)
	}
	// A partition the topic does not have is UNKNOWN_TOPIC_OR_PARTITION.
	resp := do[*kmsg.FetchResponse](f, 13, fetchByID(id, 7, 0))
	expectCode(t, "partition 7", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
}

// TestFetchSessionTopicIDs: a session made by ID (v13+) is continued by
// ID, ForgottenTopics included; an incremental fetch by name on it (or by
// ID on a session made of names) is FETCH_SESSION_TOPIC_ID_ERROR.
func TestFetchSessionTopicIDs(t *testing.T) {
	f := start(t)
	f.createTopic("a", 1)
	f.createTopic("b", 1)
	a := f.metadata(13, false, "a").Topics[0].TopicID
	b := f.metadata(13, false, "b").Topics[0].TopicID
	full := fetchByID(a, 0, 0)
	other := kmsg.NewFetchRequestTopic()
	other.TopicID = b
	other.Partitions = append(other.Partitions, full.Topics[0].Partitions[0])
	full.Topics = append(full.Topics, other)
	full.SessionEpoch = 0
	resp := do[*kmsg.FetchResponse](f, 13, full)
	if resp.ErrorCode != 0 || resp.SessionID == 0 || len(resp.Topics) != 2 {
		t.Fatalf("full fetch: error %s, session %d, %d topics", codeName(resp.ErrorCode), resp.SessionID, len(resp.Topics))
	}
	session := resp.SessionID

	// Forget b; records in both; only a is answered.
	inc := kmsg.NewPtrFetchRequest()
	inc.ReplicaID, inc.MaxWaitMillis, inc.MinBytes, inc.MaxBytes = -1, 0, 1, 1<<20
	inc.SessionID, inc.SessionEpoch = session, 1
	inc.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: b, Partitions: []int32{0}}}
	f.produce("a", 0, 1, 1)
	f.produce("b", 0, 1, 1)
	resp = do[*kmsg.FetchResponse](f, 15, inc)
	expectCode(t, "incremental by id", resp.ErrorCode, 0)
	if len(resp.Topics) != 1 || resp.Topics[0].TopicID != a || len(recordOffsets(t, resp.Topics[0].Partitions[0].RecordBatches)) != 1 {
		t.Fatalf("incremental by id answered %+v, want a's one record", resp.Topics)
	}

	// The same session continued by name.
	byName := kmsg.NewPtrFetchRequest()
	byName.ReplicaID, byName.MaxWaitMillis, byName.MinBytes, byName.MaxBytes = -1, 0, 1, 1<<20
	byName.SessionID, byName.SessionEpoch = session, 2
	resp = do[*kmsg.FetchResponse](f, 12, byName)
	expectCode(t, "incremental by name on an id session", resp.ErrorCode, kerr.FetchSessionTopicIDError.Code)

	// And the other way round.
	named := fetchRequest("a", 0, 0)
	named.SessionEpoch = 0
	resp = do[*kmsg.FetchResponse](f, 12, named)
	if resp.SessionID == 0 {
		t.Fatal("no session made by name")
	}
	inc.SessionID, inc.SessionEpoch, inc.ForgottenTopics = resp.SessionID, 1, nil
	resp = do[*kmsg.FetchResponse](f, 13, inc)
	expectCode(t, "incremental by id on a name session", resp.ErrorCode, kerr.FetchSessionTopicIDError.Code)
}

// TestProduceByTopicID: Produce v13 names topics by ID; the answer echoes
// it; an unknown ID is UNKNOWN_TOPIC_ID.
func TestProduceByTopicID(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	id := f.metadata(13, false, "t").Topics[0].TopicID
	for i, v := range []int16{12, 13} {
		req := produceRequest("t", 0, batch(2, 100))
		if v >= 13 {
			req.Topics[0].Topic, req.Topics[0].TopicID = "", id
		}
		resp := do[*kmsg.ProduceResponse](f, v, req)
		p := resp.Topics[0].Partitions[0]
		expectCode(t, fmt.Sprintf("v%d", v), p.ErrorCode, 0)
		if p.BaseOffset != int64(2*i) {
			t.Errorf("v%d: base offset %d, want %d", v, p.BaseOffset, 2*i)
		}
		if v >= 13 && resp.Topics[0].TopicID != id {
			t.Errorf("v13: answered id %x, want %x", resp.Topics[0].TopicID, id)
		}
	}
	req := produceRequest("", 0, batch(1, 100))
	req.Topics[0].TopicID = [16]byte{1, 2, 3}
	resp := do[*kmsg.ProduceResponse](f, 13, req)
	expectCode(t, "unknown id", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID.Code)
	// Nothing was written by it.
	if got := f.listOffset("t", 0, -1).Offset; got != 4 {
		t.Errorf("high watermark %d, want 4", got)
	}
	// A deleted topic's ID is unknown, even once its name is re-created.
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: id}}
	expectCode(t, "delete by id", do[*kmsg.DeleteTopicsResponse](f, 6, dt).Topics[0].ErrorCode, 0)
	f.createTopic("t", 1)
	req = produceRequest("", 0, batch(1, 100))
	req.Topics[0].TopicID = id
	resp = do[*kmsg.ProduceResponse](f, 13, req)
	expectCode(t, "old id", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID.Code)
}

// TestListOffsetsV9V10: -5 (latest tiered, v9+) answers -1 as Kafka does
// without remote storage; special timestamps before their version, or
// undefined ones, are UNSUPPORTED_VERSION; a partition named twice is
// INVALID_REQUEST.
func TestListOffsetsV9V10(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.produce("t", 0, 5, 1000)
	one := func(v int16, ts int64, partitions ...int32) []kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		for _, p := range partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return do[*kmsg.ListOffsetsResponse](f, v, req).Topics[0].Partitions
	}
	for _, tc := range []struct {
		version     int16
		ts          int64
		code        int16
		offset      int64
		leaderEpoch int32
	}{
		{10, -1, 0, 5, 0},
		{10, -2, 0, 0, 0},
		{9, -3, 0, 4, 0},
		{10, -4, 0, 0, 0},
		{9, -5, 0, -1, -1},
		{10, -5, 0, -1, -1},
		{8, -5, kerr.UnsupportedVersion.Code, -1, -1},
		{7, -4, kerr.UnsupportedVersion.Code, -1, -1},
		{6, -3, kerr.UnsupportedVersion.Code, -1, -1},
		{10, -6, kerr.UnsupportedVersion.Code, -1, -1},
		{1, -7, kerr.UnsupportedVersion.Code, -1, -1},
	} {
		p := one(tc.version, tc.ts, 0)[0]
		what := fmt.Sprintf("v%d timestamp %d", tc.version, tc.ts)
		expectCode(t, what, p.ErrorCode, tc.code)
		if p.Offset != tc.offset || (tc.code == 0 && tc.version >= 4 && p.LeaderEpoch != tc.leaderEpoch) {
			t.Errorf("%s: offset %d epoch %d, want %d epoch %d", what, p.Offset, p.LeaderEpoch, tc.offset, tc.leaderEpoch)
		}
	}
	ps := one(10, -1, 0, 1, 0)
	expectCode(t, "duplicate, first", ps[0].ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "distinct", ps[1].ErrorCode, 0)
	expectCode(t, "duplicate, second", ps[2].ErrorCode, kerr.InvalidRequest.Code)
}

// TestMetadataV13: v13 answers topic IDs and a top-level error code 0; an
// unknown ID is UNKNOWN_TOPIC_ID.
func TestMetadataV13(t *testing.T) {
	f := start(t)
	f.createTopic("t", 3)
	resp := f.metadata(13, false, "t")
	expectCode(t, "top level", resp.ErrorCode, 0)
	id := resp.Topics[0].TopicID
	if id == (metastore.TopicID{}) || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("v13: id %x, %d partitions", id, len(resp.Topics[0].Partitions))
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}, {TopicID: [16]byte{7}}}
	got := do[*kmsg.MetadataResponse](f, 13, req)
	if *got.Topics[0].Topic != "t" || got.Topics[0].ErrorCode != 0 {
		t.Errorf("by id: %q %s", *got.Topics[0].Topic, codeName(got.Topics[0].ErrorCode))
	}
	expectCode(t, "unknown id", got.Topics[1].ErrorCode, kerr.UnknownTopicID.Code)
}
