package protocol

// OffsetDelete v0 (KIP-496).
//
// Deletes committed offsets of some partitions of a group. A group with
// members refuses it for topics its members subscribe to
// (GROUP_SUBSCRIBED_TO_TOPIC, read from the "consumer" protocol
// subscriptions of classic groups, where a subscription that cannot be
// decoded counts as subscribing to everything, and from the topic names
// and regular expressions of KIP-848 consumer groups) and refuses it
// altogether for other classic protocol types (NON_EMPTY_GROUP).
// GROUP_ID_NOT_FOUND for an unknown group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(47, 0, 0, (*Handler).offsetDelete) }

func (h *Handler) offsetDelete(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.OffsetDeleteRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition = p.Partition
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		co, code := h.groupsOrErr()
		if code == 0 && !h.allowed(req, acl.Delete, acl.Group, r.Group) {
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code == 0 && r.Group == "" {
			code = kerr.InvalidGroupID.Code
		}
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		readable := map[string]bool{}
		for _, t := range r.Topics {
			readable[t.Topic] = h.allowed(req, acl.Read, acl.Topic, t.Topic)
		}
		lookup := h.lookup(ctx)
		resp.ErrorCode = co.DeleteOffsets(ctx, r.Group, func(g *groups.Group, cg *consumer.Group, exists bool) ([]metastore.TopicPartition, int16) {
			if !exists {
				return nil, kerr.GroupIDNotFound.Code
			}
			subscribed, all := map[string]bool{}, false
			switch {
			case cg != nil:
				for _, t := range r.Topics {
					subscribed[t.Topic] = cg.Subscribes(t.Topic)
				}
			case g.Len() > 0:
				if g.ProtocolType() != "consumer" {
					return nil, kerr.NonEmptyGroup.Code
				}
				subscribed, all = subscriptions(g)
			}
			var parts []metastore.TopicPartition
			for i, t := range r.Topics {
				topic, err := lookup.name(t.Topic)
				for j, p := range t.Partitions {
					rp := &resp.Topics[i].Partitions[j]
					switch {
					case !readable[t.Topic]:
						rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
					case err != nil || p.Partition < 0 || p.Partition >= topic.Partitions:
						rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					case all || subscribed[t.Topic]:
						rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
					default:
						parts = append(parts, metastore.TopicPartition{TopicID: topic.ID, Partition: p.Partition})
					}
				}
			}
			return parts, 0
		})
		return resp
	}, nil
}

// subscriptions decodes the topics a consumer group's members subscribe
// to. all is true when some member's subscription cannot be read.
func subscriptions(g *groups.Group) (topics map[string]bool, all bool) {
	topics = map[string]bool{}
	metadata, ok := g.Subscriptions()
	if !ok {
		return topics, true
	}
	for _, md := range metadata {
		var m kmsg.ConsumerMemberMetadata
		if err := m.ReadFrom(md); err != nil {
			return topics, true
		}
		for _, t := range m.Topics {
			topics[t] = true
		}
	}
	return topics, false
}
