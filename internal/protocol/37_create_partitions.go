package protocol

// CreatePartitions v0-v3.
//
// Raises a topic's partition count; assignments are accepted and ignored
// because no partition lives on a particular agent.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(37, 0, 3, (*Handler).createPartitions) }

func (h *Handler) createPartitions(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !h.allowed(req, acl.Alter, acl.Topic, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := h.store.Topic(ctx, rt.Topic)
		switch {
		case err != nil:
			st.ErrorCode = errorCode(err)
		case rt.Count <= t.Partitions:
			st.ErrorCode = kerr.InvalidPartitions.Code
			st.ErrorMessage = strPtr(fmt.Sprintf("topic currently has %d partitions, which is higher than or equal to the requested %d", t.Partitions, rt.Count))
		case r.ValidateOnly:
		default:
			if _, err := h.store.CreatePartitions(ctx, rt.Topic, rt.Count); err != nil {
				st.ErrorCode = errorCode(err)
				st.ErrorMessage = errMessage(err)
			} else {
				h.log.Info("partitions created", "topic", rt.Topic, "partitions", rt.Count)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
