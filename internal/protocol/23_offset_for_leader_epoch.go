package protocol

// OffsetForLeaderEpoch v0-v4.
//
// Every partition has one leader epoch, 0, forever (see fetch.LeaderEpoch),
// so the end offset of epoch 0 is the high watermark, and a later epoch is
// unknown. Consumers use this to detect log truncation, which cannot
// happen in Floe.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(23, 0, 4, (*Handler).offsetForLeaderEpoch) }

func (h *Handler) offsetForLeaderEpoch(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	lookup := h.lookup(ctx)
	for _, rt := range r.Topics {
		t, terr := lookup.name(rt.Topic)
		describable := h.allowed(req, acl.Describe, acl.Topic, rt.Topic)
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if !describable {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if code := partitionErr(t, terr, rp.Partition); code != 0 {
				sp.ErrorCode = code
			} else if code := checkLeaderEpoch(rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
			} else if rp.LeaderEpoch <= fetch.LeaderEpoch {
				offs, err := h.store.Offsets(ctx, t.ID, rp.Partition)
				if err != nil {
					sp.ErrorCode = errorCode(err)
				} else {
					sp.LeaderEpoch, sp.EndOffset = fetch.LeaderEpoch, offs.HighWatermark
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
