package protocol

// ListOffsets v0-v8.
//
// v0 answers a list of offsets (old_style_offsets) instead of one: Kafka
// lists segment base offsets, which Floe does not have, so it lists the
// one offset v1+ would answer, and for "latest" with MaxNumOffsets > 1
// also the log start offset (the oldest "segment" boundary), newest first.
// A timestamp after every record gives an empty list.
//
// Timestamps: -1 latest (the high watermark), -2 earliest (the log start
// offset), -3 the record with the largest timestamp (v7+, KIP-734), -4
// earliest local (v8+, KIP-405; Floe has no local tier, so it is the
// earliest), and otherwise the first offset whose record timestamp is at or
// after the given one (-1/-1 when there is none).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(2, 0, 8, (*Handler).listOffsets) }

func (h *Handler) listOffsets(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	lookup := h.lookup(ctx)
	for _, rt := range r.Topics {
		t, terr := lookup.name(rt.Topic)
		describable := h.allowed(req, acl.Describe, acl.Topic, rt.Topic)
		respTopic := kmsg.NewListOffsetsResponseTopic()
		respTopic.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			pr := kmsg.NewListOffsetsResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.Timestamp, pr.Offset = -1, -1
			if !describable {
				pr.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if code := partitionErr(t, terr, rp.Partition); code != 0 {
				pr.ErrorCode = code
			} else if code := checkLeaderEpoch(rp.CurrentLeaderEpoch); code != 0 {
				pr.ErrorCode = code
			} else {
				var err error
				pr.Offset, pr.Timestamp, err = h.listOffset(ctx, t.ID, rp.Partition, rp.Timestamp)
				pr.ErrorCode = errorCode(err)
				if err == nil {
					pr.LeaderEpoch = fetch.LeaderEpoch
				}
				if r.Version == 0 && err == nil {
					pr.OldStyleOffsets, err = h.oldStyleOffsets(ctx, t.ID, rp.Partition, rp.Timestamp, pr.Offset, rp.MaxNumOffsets)
					pr.ErrorCode = errorCode(err)
				}
			}
			respTopic.Partitions = append(respTopic.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	return now(resp), nil
}

func (h *Handler) listOffset(ctx context.Context, id [16]byte, partition int32, ts int64) (offset, timestamp int64, err error) {
	switch ts {
	case -1, -2, -4:
		offs, err := h.store.Offsets(ctx, id, partition)
		if err != nil {
			return -1, -1, err
		}
		if ts == -1 {
			return offs.HighWatermark, -1, nil
		}
		return offs.LogStartOffset, -1, nil
	case -3:
		off, rts, _, err := h.reader.OffsetOfMaxTimestamp(ctx, id, partition)
		return off, rts, err
	default:
		off, rts, _, err := h.reader.OffsetForTimestamp(ctx, id, partition, ts)
		return off, rts, err
	}
}

// oldStyleOffsets is ListOffsets v0's answer for one partition, given the
// offset v1+ would answer.
func (h *Handler) oldStyleOffsets(ctx context.Context, id [16]byte, partition int32, ts, offset int64, maxNum int32) ([]int64, error) {
	if offset < 0 || maxNum <= 0 {
		return []int64{}, nil
	}
	out := []int64{offset}
	if ts == -1 && maxNum > 1 {
		offs, err := h.store.Offsets(ctx, id, partition)
		if err != nil {
			return nil, err
		}
		if offs.LogStartOffset < offset {
			out = append(out, offs.LogStartOffset)
		}
	}
	return out, nil
}
