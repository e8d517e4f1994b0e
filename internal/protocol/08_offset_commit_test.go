package protocol_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetCommitRequest commits offset for one partition, with metadata
// "m" and leader epoch 0.
func offsetCommitRequest(group string, generation int32, member, topic string, partition int32, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = group, generation, member
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = partition, offset, 0, kmsg.StringPtr("m")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// commit commits offset and fails the test on an error.
func (f *fixture) commit(version int16, group string, generation int32, member, topic string, partition int32, offset int64) {
	f.t.Helper()
	r := do[*kmsg.OffsetCommitResponse](f, version, offsetCommitRequest(group, generation, member, topic, partition, offset))
	if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
		f.t.Fatalf("commit %s %s/%d: %s", group, topic, partition, codeName(code))
	}
}

// Not pinned here: the empty group id. Kafka 4 still accepts it in
// OffsetCommit, OffsetFetch, DeleteGroups and FindCoordinator (KIP-289
// deprecated it; only a null id is INVALID_GROUP_ID), where Floe answers
// INVALID_GROUP_ID (FindCoordinator: INVALID_REQUEST).
func TestOffsetCommit(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	member, gen := f.stableGroup("members")
	tooLarge := offsetCommitRequest("simple", -1, "", "t", 0, 1)
	tooLarge.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(strings.Repeat("x", 4097))

	for _, tc := range []struct {
		name     string
		version  int16
		req      *kmsg.OffsetCommitRequest
		wantCode int16
	}{
		// A commit without a member into a group that does not exist
		// creates it (a "simple" consumer, or an admin tool).
		{name: "simple commit", version: 9, req: offsetCommitRequest("simple", -1, "", "t", 0, 7)},
		{name: "simple commit v2", version: 2, req: offsetCommitRequest("simple2", -1, "", "t", 1, 3)},
		{name: "member", version: 9, req: offsetCommitRequest("members", gen, member, "t", 0, 4)},
		{name: "member, old generation", version: 9, req: offsetCommitRequest("members", gen+1, member, "t", 0, 4), wantCode: kerr.IllegalGeneration.Code},
		{name: "unknown member", version: 9, req: offsetCommitRequest("members", gen, "ghost", "t", 0, 4), wantCode: kerr.UnknownMemberID.Code},
		{name: "member of a group that does not exist v9", version: 9, req: offsetCommitRequest("nope", 1, "m", "t", 0, 4), wantCode: kerr.GroupIDNotFound.Code},
		{name: "member of a group that does not exist v8", version: 8, req: offsetCommitRequest("nope", 1, "m", "t", 0, 4), wantCode: kerr.IllegalGeneration.Code},
		{name: "unknown topic", version: 9, req: offsetCommitRequest("simple", -1, "", "nope", 0, 1), wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown partition", version: 9, req: offsetCommitRequest("simple", -1, "", "t", 2, 1), wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "metadata too large", version: 9, req: tooLarge, wantCode: kerr.OffsetMetadataTooLarge.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do[*kmsg.OffsetCommitResponse](f, tc.version, tc.req)
			if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
				t.Fatalf("answer %+v, want one topic with one partition", r.Topics)
			}
			expectCode(t, "commit", r.Topics[0].Partitions[0].ErrorCode, tc.wantCode)
		})
	}
	// Only the accepted commits are visible.
	for _, tc := range []struct {
		group     string
		partition int32
		want      int64
	}{{"simple", 0, 7}, {"simple2", 1, 3}, {"members", 0, 4}, {"nope", 0, -1}} {
		if got := f.fetchOffset(tc.group, "t", tc.partition).Offset; got != tc.want {
			t.Errorf("%s t/%d: committed %d, want %d", tc.group, tc.partition, got, tc.want)
		}
	}
}

// TestOffsetCommitByTopicID: v10 names topics by id.
func TestOffsetCommitByTopicID(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	id := f.metadata(12, false, "t").Topics[0].TopicID
	for _, tc := range []struct {
		name     string
		id       [16]byte
		wantCode int16
	}{
		{name: "known id", id: id},
		{name: "unknown id", id: [16]byte{7}, wantCode: kerr.UnknownTopicID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := offsetCommitRequest("g", -1, "", "", 0, 3)
			req.Topics[0].TopicID = tc.id
			r := do[*kmsg.OffsetCommitResponse](f, 10, req)
			expectCode(t, "commit", r.Topics[0].Partitions[0].ErrorCode, tc.wantCode)
		})
	}
	if got := f.fetchOffset("g", "t", 0).Offset; got != 3 {
		t.Errorf("committed %d by topic id, want 3", got)
	}
}

// failingTopics is a store whose topic reads fail, as when the database is
// down.
type failingTopics struct {
	metastore.Store
	fail atomic.Bool
}

func (s *failingTopics) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	if s.fail.Load() {
		return metastore.Topic{}, errors.New("database unreachable")
	}
	return s.Store.Topic(ctx, name)
}

func (s *failingTopics) Topics(ctx context.Context) ([]metastore.Topic, error) {
	if s.fail.Load() {
		return nil, errors.New("database unreachable")
	}
	return s.Store.Topics(ctx)
}

// TestOffsetCommitStoreDown: a commit whose topic cannot be looked up
// because the store fails is COORDINATOR_NOT_AVAILABLE (retriable), not
// UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID: the topic may exist. A
// topic the agent's cache holds is found without the store
// (internal/topiccache), so its commit goes through.
func TestOffsetCommitStoreDown(t *testing.T) {
	store := &failingTopics{}
	a := agenttest.Start(t, agenttest.Options{WrapStore: func(s metastore.Store) metastore.Store {
		store.Store = s
		return store
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 1)
	id := f.metadata(12, false, "t").Topics[0].TopicID
	store.fail.Store(true)
	for _, v := range []int16{9, 10} {
		// v9 names a topic the cache does not hold ("u"): read through,
		// and the read fails.
		req := offsetCommitRequest("g", -1, "", "", 0, 3)
		req.Topics[0].Topic = "u"
		want := kerr.CoordinatorNotAvailable.Code
		if v == 10 { // by the ID of "t", which the cache holds
			req.Topics[0].TopicID = id
			want = 0
		}
		r := do[*kmsg.OffsetCommitResponse](f, v, req)
		expectCode(t, fmt.Sprintf("v%d commit", v), r.Topics[0].Partitions[0].ErrorCode, want)
	}
}
