package protocol

// ListOffsets v0-v10.
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
// earliest), -5 the latest tiered offset (v9+, KIP-1005: as on a Kafka
// topic without remote storage, offset -1, timestamp -1, leader epoch -1),
// and otherwise the first offset whose record timestamp is at or after
// the given one (-1/-1 when there is none). As Kafka does, a negative
// timestamp it does not define, or one sent at a version before the one
// that defines it, is UNSUPPORTED_VERSION for its partition, and a
// partition named twice is INVALID_REQUEST (each time). v10 adds
// TimeoutMillis for lookups in remote storage (KIP-1075): Floe answers at
// once.
//
// isolation_level (v2+, KIP-98), as Kafka: with read_committed (1; any
// other non-zero value is read the same way, as Fetch does), latest is
// the last stable offset, and the answer of a timestamp lookup (-3 and
// real timestamps) that is at or past the last stable offset is dropped
// (-1/-1): a real timestamp's first match past it means no stable record
// matches, and -3 answers the largest timestamp only if that record is
// stable (Kafka does not look for the largest stable one). Earliest (-2,
// -4) is the log start offset at both levels; it never passes the last
// stable offset, which is at least the log start offset.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(2, 0, 10, (*Handler).listOffsets) }

func (h *Handler) listOffsets(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	lookup := h.lookup(ctx)
	type key struct {
		topic     string
		partition int32
	}
	seen := map[key]int{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			seen[key{rt.Topic, rp.Partition}]++
		}
	}
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
			} else if seen[key{rt.Topic, rp.Partition}] > 1 {
				pr.ErrorCode = kerr.InvalidRequest.Code
			} else if timestampUnsupported(rp.Timestamp, r.Version) {
				pr.ErrorCode = kerr.UnsupportedVersion.Code
			} else if code := partitionErr(t, terr, rp.Partition); code != 0 {
				pr.ErrorCode = code
			} else if code := checkLeaderEpoch(rp.CurrentLeaderEpoch); code != 0 {
				pr.ErrorCode = code
			} else {
				var err error
				pr.Offset, pr.Timestamp, err = h.listOffset(ctx, t.ID, rp.Partition, rp.Timestamp, r.IsolationLevel != 0)
				pr.ErrorCode = errorCode(err)
				if err == nil && rp.Timestamp != -5 {
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

// timestampMinVersion is the first version that defines each special
// timestamp.
var timestampMinVersion = map[int64]int16{-1: 0, -2: 0, -3: 7, -4: 8, -5: 9}

// timestampUnsupported reports a negative timestamp the version does not
// define (Kafka: ReplicaManager.isListOffsetsTimestampUnsupported; it
// lists -1 and -2 from v1, but v0 has them too).
func timestampUnsupported(ts int64, version int16) bool {
	if ts >= 0 {
		return false
	}
	min, ok := timestampMinVersion[ts]
	return !ok || version < min
}

// listOffset answers one partition; committed bounds the answer by the
// last stable offset (read_committed).
func (h *Handler) listOffset(ctx context.Context, id [16]byte, partition int32, ts int64, committed bool) (offset, timestamp int64, err error) {
	switch ts {
	case -1, -2, -4:
		offs, err := h.reader.Offsets(ctx, id, partition)
		if err != nil {
			return -1, -1, err
		}
		switch {
		case ts != -1:
			return offs.LogStartOffset, -1, nil
		case committed:
			return offs.LastStableOffset, -1, nil
		default:
			return offs.HighWatermark, -1, nil
		}
	}
	if ts == -5 {
		return -1, -1, nil // no tiered storage: nothing is tiered
	}
	var found bool
	if ts == -3 {
		offset, timestamp, found, err = h.reader.OffsetOfMaxTimestamp(ctx, id, partition)
	} else {
		offset, timestamp, found, err = h.reader.OffsetForTimestamp(ctx, id, partition, ts)
	}
	if err != nil || !found || !committed {
		return offset, timestamp, err
	}
	// The offsets are read after the lookup: an answer below this last
	// stable offset is stable for good.
	offs, err := h.reader.Offsets(ctx, id, partition)
	if err != nil {
		return -1, -1, err
	}
	if offset >= offs.LastStableOffset {
		return -1, -1, nil
	}
	return offset, timestamp, nil
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
