package protocol_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// startShares starts an agent whose share groups start at the earliest
// offset.
func startShares(t *testing.T) *fixture {
	t.Helper()
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
	}})
	return &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
}

func (f *fixture) topicID(topic string) [16]byte {
	f.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp := do[*kmsg.MetadataResponse](f, 12, req)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		f.t.Fatalf("metadata %s: %+v", topic, resp.Topics)
	}
	return resp.Topics[0].TopicID
}

func shareHeartbeat(f *fixture, group, member string, epoch int32, topics ...string) *kmsg.ShareGroupHeartbeatResponse {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch = group, member, epoch
	if topics != nil {
		req.SubscribedTopicNames = topics
	}
	return do[*kmsg.ShareGroupHeartbeatResponse](f, 1, req)
}

type shareAck struct {
	first, last int64
	types       []int8
}

func shareFetchReq(group, member string, epoch int32, id [16]byte, partition int32, acks ...shareAck) *kmsg.ShareFetchRequest {
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr(group), kmsg.StringPtr(member), epoch
	req.MaxWaitMillis, req.MaxBytes, req.MaxRecords = 0, 1<<20, 100
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewShareFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = partition, 1<<20
	for _, a := range acks {
		b := kmsg.NewShareFetchRequestTopicPartitionAcknowledgementBatch()
		b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = a.first, a.last, a.types
		rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, b)
	}
	rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{rp}
	req.Topics = []kmsg.ShareFetchRequestTopic{rt}
	return req
}

func onlyPartition(t *testing.T, resp *kmsg.ShareFetchResponse) kmsg.ShareFetchResponseTopicPartition {
	t.Helper()
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("share fetch: %s, %+v", codeName(resp.ErrorCode), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

func TestShareGroupHeartbeatRequests(t *testing.T) {
	f := startShares(t)
	f.createTopic("t", 2)
	id := f.topicID("t")
	expectCode(t, "empty group", shareHeartbeat(f, "", "m", 0, "t").ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "empty member", shareHeartbeat(f, "g", "", 0, "t").ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "no subscription", shareHeartbeat(f, "g", "m", 0).ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "unknown member", shareHeartbeat(f, "g", "m", 3).ErrorCode, kerr.UnknownMemberID.Code)
	r := shareHeartbeat(f, "g", "m", 0, "t")
	if r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment == nil || len(r.Assignment.TopicPartitions) != 1 ||
		r.Assignment.TopicPartitions[0].TopicID != id || len(r.Assignment.TopicPartitions[0].Partitions) != 2 || r.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("join: %+v", r)
	}
	if r := shareHeartbeat(f, "g", "m", 1); r.ErrorCode != 0 || r.Assignment != nil {
		t.Fatalf("heartbeat: %+v (no assignment expected: unchanged)", r)
	}
	expectCode(t, "future epoch", shareHeartbeat(f, "g", "m", 7).ErrorCode, kerr.FencedMemberEpoch.Code)

	desc := kmsg.NewPtrShareGroupDescribeRequest()
	desc.GroupIDs = []string{"g", "nope", ""}
	groups := do[*kmsg.ShareGroupDescribeResponse](f, 1, desc).Groups
	if len(groups) != 3 || groups[0].ErrorCode != 0 || groups[0].GroupState != "Stable" || len(groups[0].Members) != 1 ||
		groups[0].Members[0].Assignment.TopicPartitions[0].Topic != "t" {
		t.Fatalf("describe: %+v", groups)
	}
	expectCode(t, "describe unknown", groups[1].ErrorCode, kerr.GroupIDNotFound.Code)
	expectCode(t, "describe empty id", groups[2].ErrorCode, kerr.InvalidGroupID.Code)
	if r := shareHeartbeat(f, "g", "m", -1); r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
}

func TestShareFetchRequests(t *testing.T) {
	f := startShares(t)
	f.createTopic("t", 2)
	id := f.topicID("t")
	f.produce("t", 0, 5, time.Now().UnixMilli())

	sf := func(req *kmsg.ShareFetchRequest) *kmsg.ShareFetchResponse {
		t.Helper()
		return do[*kmsg.ShareFetchResponse](f, 1, req)
	}
	noGroup := shareFetchReq("g", "m", 0, id, 0)
	noGroup.GroupID = nil
	expectCode(t, "no group", sf(noGroup).ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "no session", sf(shareFetchReq("g", "m", 1, id, 0)).ErrorCode, kerr.ShareSessionNotFound.Code)
	expectCode(t, "acks when opening", sf(shareFetchReq("g", "m", 0, id, 0, shareAck{0, 0, []int8{1}})).ErrorCode, kerr.InvalidRequest.Code)

	p := onlyPartition(t, sf(shareFetchReq("g", "m", 0, id, 0)))
	if p.ErrorCode != 0 || len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].FirstOffset != 0 || p.AcquiredRecords[0].LastOffset != 4 ||
		p.AcquiredRecords[0].DeliveryCount != 1 || len(recordOffsets(t, p.Records)) != 5 {
		t.Fatalf("first fetch: %+v", p)
	}
	expectCode(t, "replayed epoch", sf(shareFetchReq("g", "m", 0+2, id, 0)).ErrorCode, kerr.InvalidShareSessionEpoch.Code)

	// Hostile acknowledgements: a range to the end of int64, a wrong type
	// count, an unknown type. Each is refused whole, nothing changes.
	for i, c := range []struct {
		ack  shareAck
		want int16
	}{
		{shareAck{0, math.MaxInt64, []int8{1}}, kerr.InvalidRecordState.Code},
		{shareAck{0, 4, []int8{1, 1}}, kerr.InvalidRequest.Code},
		{shareAck{0, 0, []int8{9}}, kerr.InvalidRequest.Code},
		{shareAck{3, 1, []int8{1}}, kerr.InvalidRequest.Code},
	} {
		p := onlyPartition(t, sf(shareFetchReq("g", "m", int32(1+i), id, 0, c.ack)))
		expectCode(t, "hostile ack", p.AcknowledgeErrorCode, c.want)
	}
	// Accept 0-1, release 2, reject 3, keep 4: the released record comes
	// back at once, in this very response, with delivery count 2.
	p = onlyPartition(t, sf(shareFetchReq("g", "m", 5, id, 0, shareAck{0, 3, []int8{1, 1, 2, 3}})))
	expectCode(t, "ack", p.AcknowledgeErrorCode, 0)
	if len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].FirstOffset != 2 || p.AcquiredRecords[0].LastOffset != 2 || p.AcquiredRecords[0].DeliveryCount != 2 {
		t.Fatalf("after release: %+v", p.AcquiredRecords)
	}
	// Another member gets nothing: 2 and 4 are held, the rest done.
	other := onlyPartition(t, sf(shareFetchReq("g", "other", 0, id, 0)))
	if len(other.AcquiredRecords) != 0 {
		t.Fatalf("another member acquired %+v", other.AcquiredRecords)
	}

	ack := func(epoch int32, acks ...shareAck) *kmsg.ShareAcknowledgeResponse {
		req := kmsg.NewPtrShareAcknowledgeRequest()
		req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("g"), kmsg.StringPtr("m"), epoch
		rt := kmsg.NewShareAcknowledgeRequestTopic()
		rt.TopicID = id
		rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
		for _, a := range acks {
			b := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
			b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = a.first, a.last, a.types
			rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, b)
		}
		rt.Partitions = []kmsg.ShareAcknowledgeRequestTopicPartition{rp}
		req.Topics = []kmsg.ShareAcknowledgeRequestTopic{rt}
		return do[*kmsg.ShareAcknowledgeResponse](f, 1, req)
	}
	expectCode(t, "ack at epoch 0", ack(0).ErrorCode, kerr.InvalidShareSessionEpoch.Code)
	if r := ack(6, shareAck{2, 2, []int8{1}}, shareAck{4, 4, []int8{1}}); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("ShareAcknowledge: %+v", r)
	}
	if r := ack(7, shareAck{2, 2, []int8{1}}); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRecordState.Code {
		t.Fatalf("acknowledging twice: %+v", r)
	}
	if r := ack(-1); r.ErrorCode != 0 {
		t.Fatalf("closing: %+v", r)
	}
	expectCode(t, "closed session", ack(9).ErrorCode, kerr.ShareSessionNotFound.Code)

	// Partitions that do not exist.
	p = onlyPartition(t, sf(shareFetchReq("g", "x", 0, [16]byte{1}, 0)))
	expectCode(t, "unknown topic id", p.ErrorCode, kerr.UnknownTopicID.Code)
	p = onlyPartition(t, sf(shareFetchReq("g", "y", 0, id, 7)))
	expectCode(t, "unknown partition", p.ErrorCode, kerr.UnknownTopicOrPartition.Code)

	// Too many partitions in one request.
	many := shareFetchReq("g", "z", 0, id, 0)
	for i := range 10_001 {
		many.Topics[0].Partitions = append(many.Topics[0].Partitions, kmsg.ShareFetchRequestTopicPartition{Partition: int32(i)})
	}
	expectCode(t, "too many partitions", sf(many).ErrorCode, kerr.InvalidRequest.Code)
}

// conflictingStore refuses WriteShareStates as if another agent had
// written the share partition since, while conflict is set.
type conflictingStore struct {
	metastore.Store
	conflict *atomic.Bool
}

func (s conflictingStore) WriteShareStates(ctx context.Context, group string, states []metastore.ShareState) ([]int64, error) {
	if s.conflict.Load() {
		return nil, fmt.Errorf("test: %w", metastore.ErrShareVersionConflict)
	}
	return s.Store.WriteShareStates(ctx, group, states)
}

// TestShareFetchFenced: a ShareFetch whose acquisition cannot be stored
// (another agent wrote the share partition since: it leads it now)
// answers NOT_LEADER_OR_FOLLOWER without the records it acquired, and
// the acquisition is forgotten: once the store accepts writes again, the
// records are delivered for the first time.
func TestShareFetchFenced(t *testing.T) {
	var conflict atomic.Bool
	a := agenttest.Start(t, agenttest.Options{
		Config:    func(cfg *agent.Config) { cfg.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest} },
		WrapStore: func(s metastore.Store) metastore.Store { return conflictingStore{s, &conflict} },
	})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 1)
	id := f.topicID("t")
	f.produce("t", 0, 3, time.Now().UnixMilli())
	sf := func(req *kmsg.ShareFetchRequest) kmsg.ShareFetchResponseTopicPartition {
		t.Helper()
		return onlyPartition(t, do[*kmsg.ShareFetchResponse](f, 1, req))
	}
	if p := sf(shareFetchReq("g", "m", 0, id, 0)); p.ErrorCode != 0 || len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].LastOffset != 2 {
		t.Fatalf("first fetch: %+v", p)
	}
	f.produce("t", 0, 3, time.Now().UnixMilli())
	conflict.Store(true)
	p := sf(shareFetchReq("g", "m", 1, id, 0, shareAck{0, 2, []int8{1}}))
	if p.ErrorCode != kerr.NotLeaderForPartition.Code || len(p.AcquiredRecords) != 0 || len(p.Records) != 0 ||
		p.AcknowledgeErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fenced fetch: error %s, ack error %s, acquired %+v, %d record bytes; want NOT_LEADER_OR_FOLLOWER for both and nothing sent",
			codeName(p.ErrorCode), codeName(p.AcknowledgeErrorCode), p.AcquiredRecords, len(p.Records))
	}
	conflict.Store(false)
	// The memory was dropped: the records of the refused acquisition (3-5)
	// and the ones acquired before (0-2, whose acceptance was not stored)
	// come as the store has them.
	p = sf(shareFetchReq("g", "m", 2, id, 0))
	got := ""
	for _, r := range p.AcquiredRecords {
		got += fmt.Sprintf("[%d-%d #%d]", r.FirstOffset, r.LastOffset, r.DeliveryCount)
	}
	if p.ErrorCode != 0 || got != "[0-2 #2][3-5 #1]" {
		t.Fatalf("after the fence: error %s, acquired %s; want [0-2 #2][3-5 #1]", codeName(p.ErrorCode), got)
	}
}

// TestShareFetchHeldByMember: a ShareFetch that finds nothing to acquire
// because the member's own records fill the in-flight window (more
// records wait past it) answers at once rather than after MaxWaitMillis:
// the acknowledgements that would make room come with the member's next
// request, which this one would hold back. Another member, which holds
// nothing there, waits as usual. Without the early answer a share
// consumer whose polls are larger than its partitions' windows stalled
// for MaxWaitMillis every other fetch (docs/benchmarks.md, issue 17).
func TestShareFetchHeldByMember(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
		cfg.Shares.Partition.MaxRecordLocks = 4
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 1)
	id := f.topicID("t")
	for range 10 {
		f.produce("t", 0, 1, time.Now().UnixMilli()) // one record a batch
	}
	sf := func(req *kmsg.ShareFetchRequest, wait time.Duration) (kmsg.ShareFetchResponseTopicPartition, time.Duration) {
		t.Helper()
		req.MaxWaitMillis = int32(wait.Milliseconds())
		start := time.Now()
		p := onlyPartition(t, do[*kmsg.ShareFetchResponse](f, 1, req))
		return p, time.Since(start)
	}
	acquired := func(p kmsg.ShareFetchResponseTopicPartition) string {
		s := ""
		for _, r := range p.AcquiredRecords {
			s += fmt.Sprintf("[%d-%d]", r.FirstOffset, r.LastOffset)
		}
		return s
	}
	if p, _ := sf(shareFetchReq("g", "m", 0, id, 0), 0); p.ErrorCode != 0 || acquired(p) != "[0-3]" {
		t.Fatalf("first fetch: error %s, acquired %s; want [0-3], the window's 4", codeName(p.ErrorCode), acquired(p))
	}
	const maxWait = 5 * time.Second
	p, took := sf(shareFetchReq("g", "m", 1, id, 0), maxWait)
	if p.ErrorCode != 0 || len(p.AcquiredRecords) != 0 || took > maxWait/2 {
		t.Fatalf("fetch held up by the member's own records: error %s, acquired %s after %v; want nothing, well before MaxWait %v",
			codeName(p.ErrorCode), acquired(p), took, maxWait)
	}
	const otherWait = 600 * time.Millisecond
	if p, took := sf(shareFetchReq("g", "other", 0, id, 0), otherWait); p.ErrorCode != 0 || len(p.AcquiredRecords) != 0 || took < otherWait*3/4 {
		t.Fatalf("another member: error %s, acquired %s after %v; want nothing after about MaxWait %v",
			codeName(p.ErrorCode), acquired(p), took, otherWait)
	}
	// The member's acknowledgements make room, in the same request.
	if p, _ := sf(shareFetchReq("g", "m", 2, id, 0, shareAck{0, 3, []int8{1}}), maxWait); p.AcknowledgeErrorCode != 0 || acquired(p) != "[4-7]" {
		t.Fatalf("after accepting 0-3: ack %s, acquired %s; want [4-7]", codeName(p.AcknowledgeErrorCode), acquired(p))
	}
}
