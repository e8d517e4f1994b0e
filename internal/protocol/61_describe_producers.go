package protocol

// DescribeProducers v0 (KIP-664).
//
// Lists the producers with state on each partition: id, epoch, last
// sequence and timestamp, and the first offset of its open transaction
// (-1 when none), from the metadata store. Every agent can answer for
// every partition. Needs READ on the topic. CoordinatorEpoch is always -1:
// Floe's transaction coordinators have no epoch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(61, 0, 0, (*Handler).describeProducers) }

func (h *Handler) describeProducers(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeProducersRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
		lookup := h.lookup(ctx)
		for _, rt := range r.Topics {
			t, terr := lookup.name(rt.Topic)
			readable := h.allowed(req, acl.Read, acl.Topic, rt.Topic)
			respTopic := kmsg.NewDescribeProducersResponseTopic()
			respTopic.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewDescribeProducersResponseTopicPartition()
				rp.Partition = p
				switch {
				case !readable:
					rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case partitionErr(t, terr, p) != 0:
					rp.ErrorCode = partitionErr(t, terr, p)
				default:
					producers, err := h.store.ActiveProducers(ctx, t.ID, p)
					if err != nil {
						rp.ErrorCode = errorCode(err)
						rp.ErrorMessage = errMessage(err)
						break
					}
					for _, ap := range producers {
						a := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
						a.ProducerID, a.ProducerEpoch = ap.ProducerID, int32(ap.ProducerEpoch)
						a.LastSequence, a.LastTimestamp = ap.LastSequence, ap.LastTimestamp
						a.CoordinatorEpoch = -1
						a.CurrentTxnStartOffset = ap.CurrentTxnStartOffset
						rp.ActiveProducers = append(rp.ActiveProducers, a)
					}
				}
				respTopic.Partitions = append(respTopic.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, respTopic)
		}
		return resp
	}, nil
}
