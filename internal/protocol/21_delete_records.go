package protocol

// DeleteRecords v0-v2 (v2 is flexible, KIP-482).
//
// Moves a partition's log start offset up to the requested offset (-1:
// the high watermark) and answers the new low watermark. As in Kafka, the
// log start offset may point inside a batch: fetches below it get
// OFFSET_OUT_OF_RANGE and ListOffsets earliest answers it. An offset
// beyond the high watermark, or negative other than -1, is
// OFFSET_OUT_OF_RANGE; one at or below the current log start changes
// nothing. Extents entirely below the new log start are dropped from the
// metadata store at once; their objects are deleted by the cleaner after
// the grace period (docs/jobs.md). The work runs in the reply, after
// earlier requests of the connection, so that -1 covers what the same
// client produced just before.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(21, 0, 2, (*Handler).deleteRecords) }

func (h *Handler) deleteRecords(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DeleteRecordsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
		lookup := h.lookup(ctx)
		writer := h.cfg.Cluster.Serves(RoleProduce)
		for _, rt := range r.Topics {
			t, terr := lookup.name(rt.Topic)
			deletable := h.allowed(req, acl.Delete, acl.Topic, rt.Topic)
			respTopic := kmsg.NewDeleteRecordsResponseTopic()
			respTopic.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				pr := kmsg.NewDeleteRecordsResponseTopicPartition()
				pr.Partition = rp.Partition
				pr.LowWatermark = -1
				switch code := partitionErr(t, terr, rp.Partition); {
				case !deletable:
					pr.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case code != 0:
					pr.ErrorCode = code
				case !writer:
					// Deleting records is a write: it belongs to the
					// produce pool, as Kafka sends it to the leader.
					pr.ErrorCode = kerr.NotLeaderForPartition.Code
				case rp.Offset < metastore.LogStartHighWatermark:
					pr.ErrorCode = kerr.OffsetOutOfRange.Code
				default:
					offs, err := h.store.AdvanceLogStart(ctx, t.ID, rp.Partition, rp.Offset)
					pr.ErrorCode = errorCode(err)
					if err == nil {
						pr.LowWatermark = offs.LogStartOffset
						h.log.Info("records deleted", "topic", t.Name, "partition", rp.Partition, "log_start_offset", offs.LogStartOffset)
					} else if pr.ErrorCode == kerr.KafkaStorageError.Code {
						h.log.Warn("delete records failed", "topic", t.Name, "partition", rp.Partition, "err", err)
					}
				}
				respTopic.Partitions = append(respTopic.Partitions, pr)
			}
			resp.Topics = append(resp.Topics, respTopic)
		}
		return resp
	}, nil
}
