package protocol

// OffsetFetch v1-v10.
//
// Returns committed offsets, leader epochs (v5+) and metadata. A
// partition without a committed offset, and any partition of a group
// that does not exist, is offset -1 with no error (clients depend on
// this). Null topics (v2+) fetch every committed offset of the group.
// v8+ fetches several groups at once. RequireStable (v7+, KIP-447): a
// partition of which a transaction holds an offset of the group pending
// (TxnOffsetCommit, not yet ended) is UNSTABLE_OFFSET_COMMIT, offset -1,
// which clients retry; a member then starts from what the transaction
// commits, not from the offset before it. v9's member id and epoch concern KIP-848 consumer groups: a
// member must exist (UNKNOWN_MEMBER_ID) and send its current epoch
// (STALE_MEMBER_EPOCH); a request without them (null member id, epoch
// -1: admins) is not checked. Classic groups ignore them, as in Kafka.
// v10 names topics by id.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(9, 1, 10, (*Handler).offsetFetch) }

// fetchedOffset is one partition of an OffsetFetch answer.
type fetchedOffset struct {
	topic     string
	topicID   metastore.TopicID
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	code      int16
}

// fetchTopic is one requested topic: by name, or by id (v10).
type fetchTopic struct {
	name       string
	id         metastore.TopicID
	partitions []int32
}

func (h *Handler) offsetFetch(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.OffsetFetchRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		lookup := h.lookup(ctx)
		if r.Version < 8 {
			var topics []fetchTopic
			for _, t := range r.Topics {
				topics = append(topics, fetchTopic{name: t.Topic, partitions: t.Partitions})
			}
			if r.Topics == nil && r.Version < 2 {
				topics = []fetchTopic{} // null topics means "all" only from v2
			}
			parts, code := h.fetchOffsets(ctx, req, lookup, r.Group, topics, r.Topics == nil && r.Version >= 2, false, r.Version >= 7 && r.RequireStable)
			resp.ErrorCode = code
			byTopic := map[string]int{}
			for _, p := range parts {
				i, ok := byTopic[p.topic]
				if !ok {
					i = len(resp.Topics)
					byTopic[p.topic] = i
					rt := kmsg.NewOffsetFetchResponseTopic()
					rt.Topic = p.topic
					resp.Topics = append(resp.Topics, rt)
				}
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.epoch, strPtr(p.metadata)
				rp.ErrorCode = p.code
				if code != 0 && r.Version < 2 {
					rp.ErrorCode = code // no top-level error before v2
				}
				resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
			}
			return resp
		}
		for _, g := range r.Groups {
			if r.Version >= 9 && (g.MemberID != nil || g.MemberEpoch >= 0) && g.Group != "" {
				if co, code := h.groupsOrErr(); code == 0 {
					if code := co.ValidateFetch(ctx, g.Group, g.MemberID, g.MemberEpoch); code != 0 {
						rg := kmsg.NewOffsetFetchResponseGroup()
						rg.Group, rg.ErrorCode = g.Group, code
						resp.Groups = append(resp.Groups, rg)
						continue
					}
				}
			}
			var topics []fetchTopic
			for _, t := range g.Topics {
				topics = append(topics, fetchTopic{name: t.Topic, id: t.TopicID, partitions: t.Partitions})
			}
			parts, code := h.fetchOffsets(ctx, req, lookup, g.Group, topics, g.Topics == nil, r.Version >= 10, r.RequireStable)
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			byTopic := map[string]int{}
			for _, p := range parts {
				k := p.topic + "\x00" + string(p.topicID[:])
				i, ok := byTopic[k]
				if !ok {
					i = len(rg.Topics)
					byTopic[k] = i
					rt := kmsg.NewOffsetFetchResponseGroupTopic()
					rt.Topic, rt.TopicID = p.topic, p.topicID
					rg.Topics = append(rg.Topics, rt)
				}
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.epoch, strPtr(p.metadata)
				rp.ErrorCode = p.code
				rg.Topics[i].Partitions = append(rg.Topics[i].Partitions, rp)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}, nil
}

// fetchOffsets answers one group: the requested partitions in request
// order, or with all every committed offset of the group. It needs
// DESCRIBE on the group; all leaves out the topics the principal may not
// DESCRIBE, and requested ones fail with TOPIC_AUTHORIZATION_FAILED. With
// stable, partitions with offsets pending in a transaction are
// UNSTABLE_OFFSET_COMMIT (with all, those with a committed offset, as
// Kafka answers).
func (h *Handler) fetchOffsets(ctx context.Context, req *wire.Request, lookup *topicLookup, group string, topics []fetchTopic, all, byID, stable bool) ([]fetchedOffset, int16) {
	// Requested partitions are answered even when the group fails, so
	// that per-partition error codes can be set by the caller.
	unanswered := func(code int16) []fetchedOffset {
		var out []fetchedOffset
		for _, t := range topics {
			for _, p := range t.partitions {
				out = append(out, fetchedOffset{topic: t.name, topicID: t.id, partition: p, offset: -1, epoch: -1})
			}
		}
		return out
	}
	co, code := h.groupsOrErr()
	if code == 0 && !h.allowed(req, acl.Describe, acl.Group, group) {
		code = kerr.GroupAuthorizationFailed.Code
	}
	if code == 0 && group == "" {
		code = kerr.InvalidGroupID.Code
	}
	if code != 0 {
		return unanswered(code), code
	}
	var (
		committed []metastore.CommittedOffset
		pending   []metastore.TopicPartition
	)
	if stable {
		committed, pending, code = co.FetchStableOffsets(ctx, group)
	} else {
		committed, code = co.FetchOffsets(ctx, group)
	}
	if code != 0 {
		return unanswered(code), code
	}
	// unstable marks f when a transaction holds its partition's offset.
	unstable := func(f *fetchedOffset) {
		if slices.Contains(pending, metastore.TopicPartition{TopicID: f.topicID, Partition: f.partition}) {
			f.offset, f.epoch, f.metadata, f.code = -1, -1, "", kerr.UnstableOffsetCommit.Code
		}
	}
	if all {
		var out []fetchedOffset
		for _, o := range committed {
			t, err := lookup.id(o.TopicID)
			if err != nil {
				continue // the topic was deleted
			}
			if !h.visible(req, acl.Describe, acl.Topic, t.Name) {
				continue
			}
			f := fetchedOffset{topic: t.Name, topicID: t.ID, partition: o.Partition,
				offset: o.Offset, epoch: o.LeaderEpoch, metadata: o.Metadata}
			unstable(&f)
			out = append(out, f)
		}
		return out, 0
	}
	type key struct {
		id metastore.TopicID
		p  int32
	}
	byKey := make(map[key]metastore.CommittedOffset, len(committed))
	for _, o := range committed {
		byKey[key{o.TopicID, o.Partition}] = o
	}
	var out []fetchedOffset
	for _, t := range topics {
		var topic metastore.Topic
		var err error
		if byID {
			topic, err = lookup.id(t.id)
		} else {
			topic, err = lookup.name(t.name)
		}
		name := t.name
		if byID {
			name = topic.Name
		}
		describable := (err != nil && byID) || h.allowed(req, acl.Describe, acl.Topic, name)
		for _, p := range t.partitions {
			f := fetchedOffset{topic: t.name, topicID: t.id, partition: p, offset: -1, epoch: -1}
			switch {
			case !describable:
				f.code = kerr.TopicAuthorizationFailed.Code
			case err != nil && byID:
				f.code = kerr.UnknownTopicID.Code
			case err == nil:
				f.topic, f.topicID = topic.Name, topic.ID
				if o, ok := byKey[key{topic.ID, p}]; ok {
					f.offset, f.epoch, f.metadata = o.Offset, o.LeaderEpoch, o.Metadata
				}
				unstable(&f)
			}
			out = append(out, f)
		}
	}
	return out, 0
}
