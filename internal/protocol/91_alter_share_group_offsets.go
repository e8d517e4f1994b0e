package protocol

// AlterShareGroupOffsets v0 (KIP-932): sets the start offset of share
// partitions of a share group without members (NON_EMPTY_GROUP
// otherwise), dropping their in-flight records and moving their state
// epoch on. An offset must lie within the partition's log, from its log
// start to its high watermark (OFFSET_OUT_OF_RANGE otherwise; tools such
// as kafka-share-groups.sh resolve earliest, latest and timestamps before
// sending). NOT_COORDINATOR on another agent, GROUP_AUTHORIZATION_FAILED;
// per partition UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(91, 0, 0, (*Handler).alterShareGroupOffsets) }

func (h *Handler) alterShareGroupOffsets(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AlterShareGroupOffsetsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		co, code := h.sharesOrErr()
		switch {
		case code != 0:
		case !h.allowed(req, acl.Read, acl.Group, r.GroupID):
			code = kerr.GroupAuthorizationFailed.Code
		case r.GroupID == "":
			code = kerr.InvalidGroupID.Code
		}
		lookup := h.lookup(ctx)
		starts := map[sharecoord.TP]int64{}
		type slot struct{ t, p int }
		slots := map[sharecoord.TP]slot{}
		for _, rt := range r.Topics {
			ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
			ot.Topic = rt.Topic
			t, err := lookup.name(rt.Topic)
			denied := !h.allowed(req, acl.Read, acl.Topic, rt.Topic)
			if err == nil && !denied {
				ot.TopicID = t.ID
			}
			for _, rp := range rt.Partitions {
				op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
				op.Partition = rp.Partition
				switch {
				case code != 0:
					op.ErrorCode = code
				case denied:
					op.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case err != nil || rp.Partition < 0 || rp.Partition >= t.Partitions:
					op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				default:
					offs, oerr := h.reader.Offsets(ctx, t.ID, rp.Partition)
					switch {
					case oerr != nil:
						op.ErrorCode = errorCode(oerr)
					case rp.StartOffset < offs.LogStartOffset || rp.StartOffset > offs.HighWatermark:
						op.ErrorCode = kerr.OffsetOutOfRange.Code
					default:
						tp := sharecoord.TP{Topic: t.ID, Partition: rp.Partition}
						starts[tp] = rp.StartOffset
						slots[tp] = slot{len(resp.Topics), len(ot.Partitions)}
					}
				}
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		if code != 0 {
			resp.ErrorCode = code
			return resp
		}
		if len(starts) == 0 {
			return resp
		}
		gcode, codes := co.AlterStarts(ctx, r.GroupID, starts)
		if gcode != 0 {
			resp.ErrorCode = gcode
			for _, s := range slots {
				resp.Topics[s.t].Partitions[s.p].ErrorCode = gcode
			}
			return resp
		}
		for tp, s := range slots {
			resp.Topics[s.t].Partitions[s.p].ErrorCode = codes[tp]
		}
		return resp
	}, nil
}
