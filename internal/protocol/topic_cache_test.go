package protocol_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// topicReads counts the store's topic reads.
type topicReads struct {
	metastore.Store
	n atomic.Int64
}

func (s *topicReads) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	s.n.Add(1)
	return s.Store.Topic(ctx, name)
}

func (s *topicReads) Topics(ctx context.Context) ([]metastore.Topic, error) {
	s.n.Add(1)
	return s.Store.Topics(ctx)
}

// TestNoTopicReadsPerRequest: at steady state Produce and Fetch (by name
// and by topic ID), ListOffsets and Metadata read no topic from the metadata
// store: the agent's topic cache answers (internal/topiccache).
func TestNoTopicReadsPerRequest(t *testing.T) {
	store := &topicReads{}
	a := agenttest.Start(t, agenttest.Options{WrapStore: func(s metastore.Store) metastore.Store {
		store.Store = s
		return store
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 2)
	id := f.metadata(13, false, "t").Topics[0].TopicID
	before := store.n.Load()
	const n = 50
	for i := range n {
		f.produce("t", int32(i%2), 1, int64(i))
		fr := do[*kmsg.FetchResponse](f, 12, fetchRequest("t", 0, 0))
		expectCode(t, "fetch", fr.Topics[0].Partitions[0].ErrorCode, 0)
		fr = do[*kmsg.FetchResponse](f, 17, fetchByID(id, 1, 0))
		expectCode(t, "fetch by id", fr.Topics[0].Partitions[0].ErrorCode, 0)
		pr := produceRequest("", 1, batch(1, int64(i)))
		pr.Topics[0].TopicID = id
		expectCode(t, "produce by id", do[*kmsg.ProduceResponse](f, 13, pr).Topics[0].Partitions[0].ErrorCode, 0)
		expectCode(t, "list offsets", f.listOffset("t", 0, -1).ErrorCode, 0)
		if md := f.metadata(12, false, "t"); md.Topics[0].ErrorCode != 0 {
			t.Fatalf("metadata: %s", codeName(md.Topics[0].ErrorCode))
		}
		f.metadata(12, false) // every topic
	}
	if got := store.n.Load() - before; got != 0 {
		t.Errorf("%d topic reads from the store for %d produce, fetch, list offsets and metadata requests, want 0", got, 7*n)
	}
}

// TestTopicChangesSeen: what admin requests change is seen by the next
// request on the same agent: new partitions, a config, a deletion and a
// re-creation (a new topic ID).
func TestTopicChangesSeen(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	old := f.metadata(12, false, "t").Topics[0].TopicID

	cp := kmsg.NewPtrCreatePartitionsRequest()
	ct := kmsg.NewCreatePartitionsRequestTopic()
	ct.Topic, ct.Count = "t", 3
	cp.Topics = append(cp.Topics, ct)
	cp.TimeoutMillis = 10_000
	expectCode(t, "create partitions", do[*kmsg.CreatePartitionsResponse](f, 3, cp).Topics[0].ErrorCode, 0)
	f.produce("t", 2, 1, 1)

	ac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	small := "100"
	cfg.Name, cfg.Value = "max.message.bytes", &small
	res.Configs = append(res.Configs, cfg)
	ac.Resources = append(ac.Resources, res)
	expectCode(t, "alter configs", do[*kmsg.IncrementalAlterConfigsResponse](f, 1, ac).Resources[0].ErrorCode, 0)
	pr := do[*kmsg.ProduceResponse](f, 9, produceRequest("t", 0, batch(20, 1)))
	expectCode(t, "produce over max.message.bytes", pr.Topics[0].Partitions[0].ErrorCode, kerr.MessageTooLarge.Code)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"t"}
	dt.TimeoutMillis = 10_000
	expectCode(t, "delete", do[*kmsg.DeleteTopicsResponse](f, 5, dt).Topics[0].ErrorCode, 0)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = old
	req.Topics = append(req.Topics, rt)
	expectCode(t, "metadata of the deleted id", do[*kmsg.MetadataResponse](f, 12, req).Topics[0].ErrorCode, kerr.UnknownTopicID.Code)

	f.createTopic("t", 1)
	if id := f.metadata(12, false, "t").Topics[0].TopicID; id == old {
		t.Fatal("re-created topic has the old id")
	}
}

// TestTopicChangesAcrossAgents: two agents on one metadata store (as
// agents of one process share it): what one agent's admin requests change,
// the other's next request sees, by name and by ID.
func TestTopicChangesAcrossAgents(t *testing.T) {
	a := start(t)
	peer := agenttest.StartPeer(t, a.a, agenttest.Options{})
	b := &fixture{t: t, a: peer, c: testutil.Dial(t, peer.Addr())}
	b.metadata(13, false) // b's cache is loaded, without the topic
	a.createTopic("t", 1)
	id := b.metadata(13, false, "t").Topics[0].TopicID
	pr := produceRequest("", 0, batch(2, 1))
	pr.Topics[0].TopicID = id
	expectCode(t, "produce through b by id", do[*kmsg.ProduceResponse](b, 13, pr).Topics[0].Partitions[0].ErrorCode, 0)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t", Count: 2}}
	cp.TimeoutMillis = 10_000
	expectCode(t, "create partitions through a", do[*kmsg.CreatePartitionsResponse](a, 3, cp).Topics[0].ErrorCode, 0)
	pr.Topics[0].Partitions[0].Partition = 1
	expectCode(t, "produce to the new partition through b", do[*kmsg.ProduceResponse](b, 13, pr).Topics[0].Partitions[0].ErrorCode, 0)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: id}}
	expectCode(t, "delete through a", do[*kmsg.DeleteTopicsResponse](a, 6, dt).Topics[0].ErrorCode, 0)
	fr := do[*kmsg.FetchResponse](b, 17, fetchByID(id, 0, 0))
	expectCode(t, "fetch the deleted id through b", fr.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID.Code)
	fr = do[*kmsg.FetchResponse](b, 12, fetchRequest("t", 0, 0))
	expectCode(t, "fetch the deleted name through b", fr.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
}
