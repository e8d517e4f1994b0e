package protocol

// Metadata v0-v13.
//
// Every agent answers for every partition: Floe has no replicas and no
// partition depends on a particular agent. Each partition's nominal leader
// is the live agent that owns it by rendezvous hashing, which spreads
// clients over the agents; its leader epoch is 0 and it is the only
// replica. Clients see the agents of their zone that serve the same
// client roles as the agent they asked (see Cluster.For).
//
// v1+: a null topic list means all topics, an empty one none.
// v4+: AllowAutoTopicCreation (KIP-204 semantics); before v4 it is implied.
// v10+: topic IDs (KIP-516); v12 may ask by ID only (an unknown ID is
// UNKNOWN_TOPIC_ID). v13 adds a top-level error code (KIP-1102, for
// clients to rebootstrap on REBOOTSTRAP_REQUIRED), always 0 here: every
// agent knows every agent.
//
// ACLs: a list of all topics leaves out those the principal may not
// DESCRIBE; a named one answers TOPIC_AUTHORIZATION_FAILED, whether it
// exists or not. Auto-creation needs CREATE on the cluster or the topic.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(3, 0, 13, (*Handler).metadata) }

func (h *Handler) metadata(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	view := h.cfg.Cluster.For(req.ClientID)
	for _, b := range view.Brokers() {
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	resp.ClusterID = &h.cfg.ClusterID
	resp.ControllerID = view.Self().NodeID

	allowAuto := r.Version < 4 || r.AllowAutoTopicCreation
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	if all {
		topics, err := h.topics.Topics(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range topics {
			if !h.visible(req, acl.Describe, acl.Topic, t.Name) {
				continue
			}
			mt, err := h.topicMetadata(ctx, view, t)
			if err != nil {
				return nil, err
			}
			resp.Topics = append(resp.Topics, mt)
		}
		return now(resp), nil
	}
	lookup := h.lookup(ctx)
	for _, rt := range r.Topics {
		var (
			t   metastore.Topic
			err error
		)
		switch {
		case rt.Topic != nil && !h.allowed(req, acl.Describe, acl.Topic, *rt.Topic):
			resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{Topic: rt.Topic, ErrorCode: kerr.TopicAuthorizationFailed.Code})
			continue
		case rt.Topic != nil:
			t, err = lookup.name(*rt.Topic)
			if errors.Is(err, metastore.ErrUnknownTopicOrPartition) && allowAuto && h.cfg.AutoCreateTopics && !h.mayCreateTopic(req, *rt.Topic) {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{Topic: rt.Topic, ErrorCode: kerr.TopicAuthorizationFailed.Code})
				continue
			}
			if errors.Is(err, metastore.ErrUnknownTopicOrPartition) && allowAuto && h.cfg.AutoCreateTopics {
				var code int16
				t, code, err = h.createTopic(ctx, *rt.Topic, -1, -1, nil, false)
				if code == kerr.TopicAlreadyExists.Code {
					// Created by another agent just now: its notice may
					// not have reached this agent's cache yet.
					t, err = h.store.Topic(ctx, *rt.Topic)
				} else if code != 0 {
					name := *rt.Topic
					resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{Topic: &name, ErrorCode: code})
					continue
				}
			}
		default:
			t, err = lookup.id(rt.TopicID)
			if err != nil {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{TopicID: rt.TopicID, ErrorCode: kerr.UnknownTopicID.Code})
				continue
			}
			if !h.allowed(req, acl.Describe, acl.Topic, t.Name) {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{TopicID: rt.TopicID, ErrorCode: kerr.TopicAuthorizationFailed.Code})
				continue
			}
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		mt, err := h.topicMetadata(ctx, view, t)
		if err != nil {
			return nil, err
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return now(resp), nil
}

// topicMetadata describes a topic's partitions. Its cost grows with the
// partition count (about 1.5 µs and 300 bytes each with ten agents), which
// Limits bound; it stops when ctx ends, so that a large answer never
// holds up shutdown.
func (h *Handler) topicMetadata(ctx context.Context, view Cluster, t metastore.Topic) (kmsg.MetadataResponseTopic, error) {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
	// Every partition led by the same agent shares one replica list:
	// the response is only read, to be encoded.
	replicas := map[int32][]int32{}
	leaders := leadersIn(view, t.ID)
	for p := range t.Partitions {
		if p%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return mt, err
			}
		}
		leader := leaders.leader(p)
		list, ok := replicas[leader]
		if !ok {
			list = []int32{leader}
			replicas[leader] = list
		}
		mp := &mt.Partitions[p]
		mp.Default()
		mp.Partition = p
		mp.Leader = leader
		mp.LeaderEpoch = fetch.LeaderEpoch
		mp.Replicas = list
		mp.ISR = list
	}
	return mt, nil
}
