package protocol

// DeleteShareGroupOffsets v0 (KIP-932): deletes the share-partition states
// of whole topics of a share group without members (NON_EMPTY_GROUP
// otherwise); those partitions start again by share.auto.offset.reset.
// NOT_COORDINATOR on another agent, GROUP_AUTHORIZATION_FAILED; per topic
// UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(92, 0, 0, (*Handler).deleteShareGroupOffsets) }

func (h *Handler) deleteShareGroupOffsets(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DeleteShareGroupOffsetsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
		co, code := h.sharesOrErr()
		switch {
		case code != 0:
		case !h.allowed(req, acl.Delete, acl.Group, r.GroupID):
			code = kerr.GroupAuthorizationFailed.Code
		case r.GroupID == "":
			code = kerr.InvalidGroupID.Code
		}
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		lookup := h.lookup(ctx)
		var tps []metastore.TopicPartition
		var ok []int
		for _, rt := range r.Topics {
			ot := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
			ot.Topic = rt.Topic
			t, err := lookup.name(rt.Topic)
			switch {
			case !h.allowed(req, acl.Read, acl.Topic, rt.Topic):
				ot.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				ot.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				ot.TopicID = t.ID
				for p := range t.Partitions {
					tps = append(tps, metastore.TopicPartition{TopicID: t.ID, Partition: p})
				}
				ok = append(ok, len(resp.Topics))
			}
			resp.Topics = append(resp.Topics, ot)
		}
		if len(ok) == 0 {
			return resp
		}
		if code := co.DeleteStarts(ctx, r.GroupID, tps); code != 0 {
			resp.ErrorCode = code
			for _, i := range ok {
				resp.Topics[i].ErrorCode = code
			}
		}
		return resp
	}, nil
}
