package protocol

// ShareAcknowledge v1-v2 (KIP-932; v2: renewed acknowledgements, KIP-1222,
// type 4 when IsRenewAck is set, which start the records' locks again,
// and AcquisitionLockTimeoutMillis in the answer): acknowledgements of
// records a member
// acquired through ShareFetch, outside a fetch, in the member's share
// session on this agent (epoch 0 is INVALID_SHARE_SESSION_EPOCH; -1
// closes the session after applying them and releases the member's other
// records). Each partition's acknowledgements are all or nothing:
// INVALID_RECORD_STATE when the member does not hold every record named
// (its lock expired, or another member has it), INVALID_REQUEST for
// malformed batches, NOT_LEADER_OR_FOLLOWER on an agent that does not
// lead the partition or lost it to another. They are stored before the
// answer. See 78_share_fetch.go.

import (
	"bytes"
	"cmp"
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(79, 1, 2, (*Handler).shareAcknowledge) }

func (h *Handler) shareAcknowledge(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ShareAcknowledgeRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
		co, group, member, code, msg := h.shareMember(req, r.GroupID, r.MemberID)
		if code != 0 {
			resp.ErrorCode, resp.ErrorMessage = code, msg
			return resp
		}
		n := 0
		for _, t := range r.Topics {
			n += len(t.Partitions)
		}
		if n > sharecoord.MaxSessionPartitions {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		renewAllowed := r.Version >= 2 && r.IsRenewAck
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				for _, b := range p.AcknowledgementBatches {
					if !renewAllowed && slices.Contains(b.AcknowledgeTypes, int8(sharepart.Renew)) {
						resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strPtr("Renew acknowledgements need IsRenewAck (v2).")
						return resp
					}
				}
			}
		}
		if r.Version >= 2 {
			resp.AcquisitionLockTimeoutMillis = int32(co.Config(ctx, group).Partition.LockDuration.Milliseconds())
		}
		sr := co.AckSession(group, member, r.ShareSessionEpoch)
		if sr.Err != 0 {
			resp.ErrorCode = sr.Err
			return resp
		}
		co.BindSession(group, member, req.Conn)
		sh := h.shareRequest(ctx, req, group)
		acks := map[sharecoord.TP][]sharepart.AckBatch{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				tp := sharecoord.TP{Topic: t.TopicID, Partition: p.Partition}
				for _, b := range p.AcknowledgementBatches {
					acks[tp] = append(acks[tp], ackBatch(b.FirstOffset, b.LastOffset, b.AcknowledgeTypes))
				}
			}
		}
		codes := sh.acknowledge(co, member, acks)
		h.notifyAcked(acks, codes)
		if err := co.Release(ctx, group, member, sr.Released); err != nil {
			h.log.Warn("share records not released", "group", group, "member", member, "err", err)
		}
		if r.ShareSessionEpoch == -1 {
			co.ForgetIdle(group)
		}
		topics := map[[16]byte]int{}
		for _, tp := range sortedTPs(codes) {
			i, ok := topics[tp.Topic]
			if !ok {
				i = len(resp.Topics)
				topics[tp.Topic] = i
				rt := kmsg.NewShareAcknowledgeResponseTopic()
				rt.TopicID = tp.Topic
				resp.Topics = append(resp.Topics, rt)
			}
			p := kmsg.NewShareAcknowledgeResponseTopicPartition()
			p.Partition, p.ErrorCode = tp.Partition, codes[tp]
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = sh.leader(tp), 0
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
		}
		return resp
	}, nil
}

func compareTPs(a, b sharecoord.TP) int {
	return cmp.Or(bytes.Compare(a.Topic[:], b.Topic[:]), cmp.Compare(a.Partition, b.Partition))
}

// sortedTPs lists a map's partitions in topic id, partition order.
func sortedTPs[V any](m map[sharecoord.TP]V) []sharecoord.TP {
	out := make([]sharecoord.TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTPs)
	return out
}
