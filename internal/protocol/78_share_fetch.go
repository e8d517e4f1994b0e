package protocol

// ShareFetch v1-v2 (KIP-932; v2: renewed acknowledgements, KIP-1222, and
// acquire modes, KIP-1206).
//
// A member of a share group fetches from the share partitions this agent
// leads (the partition's nominal leader, as Metadata reports;
// NOT_LEADER_OR_FOLLOWER elsewhere), in a share session: epoch 0 opens
// one with the partitions named (acknowledgements are INVALID_REQUEST
// then), -1 closes it after applying the request's acknowledgements, and
// every other request carries the next epoch (INVALID_SHARE_SESSION_EPOCH,
// SHARE_SESSION_NOT_FOUND, SHARE_SESSION_LIMIT_REACHED). Acknowledgements
// are applied before anything is fetched, stored while records are read
// (one write for the group's concurrent requests), and answered per
// partition in AcknowledgeErrorCode once stored. Each partition then reads whole
// batches from the first record it could hand out and acquires up to
// MaxRecords of them for the member for share.record.lock.duration.ms
// (AcquisitionLockTimeoutMillis), answered in AcquiredRecords; the client
// delivers only those. With nothing to acquire the request waits up to
// MaxWaitMillis for new records or expired locks. Records are read as the
// group's share.isolation.level says. See internal/sharecoord and
// docs/share-groups.md.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(78, 1, 2, (*Handler).shareFetch) }

// defaultShareMaxRecords is the most records one ShareFetch acquires when
// the request names no limit (the share consumer's max.poll.records).
const defaultShareMaxRecords = 500

// shareWaitStep bounds one wait of a ShareFetch, so that records whose
// locks expired are found without a commit to wake the request.
const shareWaitStep = 250 * time.Millisecond

// shareTP is a partition of a share request with its topic.
type shareTP struct {
	tp    sharecoord.TP
	topic metastore.Topic
	err   int16
}

func (h *Handler) shareFetch(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ShareFetchRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ShareFetchResponse)
		co, group, member, code, msg := h.shareMember(req, r.GroupID, r.MemberID)
		if code != 0 {
			resp.ErrorCode, resp.ErrorMessage = code, msg
			return resp
		}
		n := len(r.ForgottenTopicsData)
		hasAcks, hasRenew := false, false
		for _, t := range r.Topics {
			n += len(t.Partitions)
			for _, p := range t.Partitions {
				hasAcks = hasAcks || len(p.AcknowledgementBatches) > 0
				for _, b := range p.AcknowledgementBatches {
					hasRenew = hasRenew || slices.Contains(b.AcknowledgeTypes, int8(sharepart.Renew))
				}
			}
		}
		renew := r.Version >= 2 && r.IsRenewAck
		switch {
		case hasRenew && !renew:
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strPtr("Renew acknowledgements need IsRenewAck (v2).")
			return resp
		case r.Version >= 2 && r.ShareAcquireMode != 0 && r.ShareAcquireMode != 1:
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strPtr("Unknown ShareAcquireMode.")
			return resp
		}
		for _, f := range r.ForgottenTopicsData {
			n += len(f.Partitions)
		}
		if n > sharecoord.MaxSessionPartitions {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		var add, forget []sharecoord.TP
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				add = append(add, sharecoord.TP{Topic: t.TopicID, Partition: p.Partition})
			}
		}
		for _, f := range r.ForgottenTopicsData {
			for _, p := range f.Partitions {
				forget = append(forget, sharecoord.TP{Topic: f.TopicID, Partition: p})
			}
		}
		cfg := co.Config(ctx, group)
		resp.AcquisitionLockTimeoutMillis = int32(cfg.Partition.LockDuration.Milliseconds())
		sr := co.FetchSession(group, member, r.ShareSessionEpoch, add, forget, hasAcks)
		if sr.Err != 0 {
			resp.ErrorCode = sr.Err
			return resp
		}
		co.BindSession(group, member, req.Conn)
		sh := h.shareRequest(ctx, req, group)
		parts := map[sharecoord.TP]*kmsg.ShareFetchResponseTopicPartition{}
		entry := func(tp sharecoord.TP) *kmsg.ShareFetchResponseTopicPartition {
			if p := parts[tp]; p != nil {
				return p
			}
			p := kmsg.NewShareFetchResponseTopicPartition()
			p.Partition = tp.Partition
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = sh.leader(tp), fetch.LeaderEpoch
			parts[tp] = &p
			return &p
		}
		// Acknowledgements first, so that a record released here may be
		// fetched by this very request.
		acks := map[sharecoord.TP][]sharepart.AckBatch{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if len(p.AcknowledgementBatches) == 0 {
					continue
				}
				tp := sharecoord.TP{Topic: t.TopicID, Partition: p.Partition}
				for _, b := range p.AcknowledgementBatches {
					acks[tp] = append(acks[tp], ackBatch(b.FirstOffset, b.LastOffset, b.AcknowledgeTypes))
				}
			}
		}
		// The acknowledgements are applied now and stored while records
		// are read; their codes are answered once stored.
		ackCodes, stored := sh.acknowledgeAsync(co, member, acks)
		if err := co.Release(ctx, group, member, sr.Released); err != nil {
			h.log.Warn("share records not released", "group", group, "member", member, "err", err)
		}
		for _, tp := range add {
			entry(tp)
		}
		// A request that renews locks fetches nothing (KIP-1222): the
		// member is still processing what it holds.
		if r.ShareSessionEpoch != -1 && !renew {
			h.shareFetchRecords(ctx, co, r, sh, member, cfg.ReadCommitted, sr.Fetch, entry)
		}
		stored()
		for tp, code := range ackCodes {
			entry(tp).AcknowledgeErrorCode = code
		}
		if r.ShareSessionEpoch == -1 {
			co.ForgetIdle(group)
		}
		topics := map[[16]byte]int{}
		for _, tp := range sortedTPs(parts) {
			i, ok := topics[tp.Topic]
			if !ok {
				i = len(resp.Topics)
				topics[tp.Topic] = i
				rt := kmsg.NewShareFetchResponseTopic()
				rt.TopicID = tp.Topic
				resp.Topics = append(resp.Topics, rt)
			}
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, *parts[tp])
		}
		return resp
	}, nil
}

// shareFetchRecords acquires records on the session's partitions,
// waiting up to the request's MaxWaitMillis while there are none.
func (h *Handler) shareFetchRecords(ctx context.Context, co *sharecoord.Coordinator, r *kmsg.ShareFetchRequest, sh *shareRequest, member string, readCommitted bool, tps []sharecoord.TP, entry func(sharecoord.TP) *kmsg.ShareFetchResponseTopicPartition) {
	maxRecords := int(r.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	maxBytes := int(r.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	deadline := time.Now().Add(min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxFetchWait))
	// Woken by commits on the session's partitions, each watched before
	// it is read (fetch.Notifier).
	w := h.notify.NewWaiter()
	defer w.Close()
	for {
		w.Arm()
		got, bytes := 0, 0
		for _, tp := range tps {
			st := sh.resolve(tp)
			if st.err != 0 {
				entry(tp).ErrorCode = st.err
				continue
			}
			if got >= maxRecords || bytes >= maxBytes {
				break
			}
			w.Watch(tp.Topic, tp.Partition)
			offs, err := h.reader.Offsets(ctx, tp.Topic, tp.Partition)
			if err != nil {
				entry(tp).ErrorCode = errorCode(err)
				continue
			}
			budget := maxBytes - bytes
			iso, end := fetch.ReadUncommitted, offs.HighWatermark
			if readCommitted {
				iso, end = fetch.ReadCommitted, offs.LastStableOffset
			}
			read := func(ctx context.Context, from int64) (sharecoord.Read, error) {
				res, err := h.reader.Read(ctx, tp.Topic, tp.Partition, from, budget, true, iso)
				if err != nil {
					return sharecoord.Read{End: from}, err
				}
				rd := sharecoord.Read{Records: res.Records, End: batchesEnd(res.Records, from), Batches: batchBounds(res.Records)}
				if iso == fetch.ReadCommitted {
					rd.Skip = uncommitted(res.Records, res.Aborted)
				}
				return rd, nil
			}
			forTime := func(ms int64) int64 {
				off, _, found, err := h.reader.OffsetForTimestamp(ctx, tp.Topic, tp.Partition, ms)
				if err != nil || !found {
					return offs.HighWatermark
				}
				return off
			}
			acquire := co.Acquire
			if r.Version >= 2 && r.ShareAcquireMode == 1 {
				acquire = co.AcquireStrict // record-limit mode (KIP-1206)
			}
			f, code := acquire(ctx, sh.group, member, tp, maxRecords-got,
				sharecoord.Offsets{LogStart: offs.LogStartOffset, End: end, ForTime: forTime}, read)
			e := entry(tp)
			e.ErrorCode = code
			if len(f.Acquired) == 0 {
				continue
			}
			e.Records = f.Records
			for _, a := range f.Acquired {
				ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
				ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = a.First, a.Last, a.DeliveryCount
				e.AcquiredRecords = append(e.AcquiredRecords, ar)
				got += int(a.Last - a.First + 1)
			}
			bytes += len(f.Records)
		}
		if got > 0 || !time.Now().Before(deadline) || len(tps) == 0 {
			return
		}
		timer := time.NewTimer(min(time.Until(deadline), shareWaitStep))
		select {
		case <-w.C():
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// shareRequest resolves the partitions of one share request: their
// topics, authorization and leadership.
type shareRequest struct {
	h      *Handler
	ctx    context.Context
	req    *wire.Request
	group  string
	view   Cluster
	lookup *topicLookup
	seen   map[sharecoord.TP]shareTP
	denied map[string]bool
}

func (h *Handler) shareRequest(ctx context.Context, req *wire.Request, group string) *shareRequest {
	return &shareRequest{h: h, ctx: ctx, req: req, group: group, view: h.cfg.Cluster.For(req.ClientID),
		lookup: h.lookup(ctx), seen: map[sharecoord.TP]shareTP{}, denied: map[string]bool{}}
}

func (s *shareRequest) leader(tp sharecoord.TP) int32 {
	return leadersIn(s.view, tp.Topic).leader(tp.Partition)
}

// resolve checks a partition: it exists (UNKNOWN_TOPIC_ID,
// UNKNOWN_TOPIC_OR_PARTITION), the client may read it
// (TOPIC_AUTHORIZATION_FAILED) and this agent leads it
// (NOT_LEADER_OR_FOLLOWER).
func (s *shareRequest) resolve(tp sharecoord.TP) shareTP {
	if st, ok := s.seen[tp]; ok {
		return st
	}
	st := shareTP{tp: tp}
	t, err := s.lookup.id(tp.Topic)
	switch {
	case err != nil:
		st.err = kerr.UnknownTopicID.Code
	case tp.Partition < 0 || tp.Partition >= t.Partitions:
		st.err = kerr.UnknownTopicOrPartition.Code
	default:
		st.topic = t
		denied, ok := s.denied[t.Name]
		if !ok {
			denied = !s.h.allowed(s.req, acl.Read, acl.Topic, t.Name)
			s.denied[t.Name] = denied
		}
		switch {
		case denied:
			st.err = kerr.TopicAuthorizationFailed.Code
		case s.leader(tp) != s.view.Self().NodeID:
			st.err = kerr.NotLeaderForPartition.Code
		}
	}
	s.seen[tp] = st
	return st
}

// acknowledge applies acknowledgements on the partitions that resolve,
// answering the others' errors.
func (s *shareRequest) acknowledge(co *sharecoord.Coordinator, member string, acks map[sharecoord.TP][]sharepart.AckBatch) map[sharecoord.TP]int16 {
	codes, stored := s.acknowledgeAsync(co, member, acks)
	stored()
	return codes
}

// acknowledgeAsync is acknowledge that returns before the
// acknowledgements are stored: the codes may be read only after stored
// returns.
func (s *shareRequest) acknowledgeAsync(co *sharecoord.Coordinator, member string, acks map[sharecoord.TP][]sharepart.AckBatch) (map[sharecoord.TP]int16, func()) {
	codes := map[sharecoord.TP]int16{}
	ok := map[sharecoord.TP][]sharepart.AckBatch{}
	for tp, b := range acks {
		if st := s.resolve(tp); st.err != 0 {
			codes[tp] = st.err
			continue
		}
		ok[tp] = b
	}
	if len(ok) == 0 {
		return codes, func() {}
	}
	applied, stored := co.AcknowledgeAsync(s.ctx, s.group, member, ok)
	return codes, func() {
		stored()
		for tp, code := range applied {
			codes[tp] = code
		}
	}
}

func ackBatch(first, last int64, types []int8) sharepart.AckBatch {
	b := sharepart.AckBatch{First: first, Last: last, Types: make([]sharepart.AckType, len(types))}
	for i, t := range types {
		b.Types[i] = sharepart.AckType(t)
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
