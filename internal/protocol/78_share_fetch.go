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
// are applied before anything is fetched. Each partition then reads whole
// batches from the first record it could hand out and acquires up to
// MaxRecords of them for the member for share.record.lock.duration.ms
// (AcquisitionLockTimeoutMillis), answered in AcquiredRecords; the client
// delivers only those. The acknowledgements and acquisitions are stored
// in one write (shared with the group's concurrent requests) before the
// answer: AcknowledgeErrorCode once stored, and records only if their
// acquisition was, which fails (NOT_LEADER_OR_FOLLOWER, no records) on an
// agent that another agent has replaced as the partition's leader. With
// nothing to acquire the request waits up to MaxWaitMillis for new
// records or expired locks, or 10 ms when the member's own records fill
// the in-flight window of a partition with more records to hand out
// (its acknowledgements, which would make room, come after the answer). Records are read as the
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

// shareReadBytes bounds one read of a share partition's records (at
// least one batch is read, whatever its size).
const shareReadBytes = 1 << 20

// shareWaitStep bounds one wait of a ShareFetch, so that records whose
// locks expired are found without a commit to wake the request.
const shareWaitStep = 250 * time.Millisecond

// shareHeldWait is the longest a ShareFetch waits when its member's own
// records fill the in-flight windows of partitions with more records to
// hand out (sharecoord.Coordinator.HeldBy): the acknowledgements that
// would make room are in the client, behind this request (a client
// keeps one ShareFetch in flight per agent and piggybacks its
// acknowledgements on it), so waiting MaxWaitMillis for them stalls the
// member. The short wait bounds how often a member that is still
// processing its records asks again.
const shareHeldWait = 10 * time.Millisecond

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
		// The acknowledgements are applied in memory now, and stored
		// with the acquisitions of this request in one write (before the
		// request waits for records, if it does); their codes are
		// answered once stored.
		ch := co.Changes(group)
		ackCodes := sh.acknowledgeInto(co, member, acks, ch)
		if err := co.Release(ctx, group, member, sr.Released); err != nil {
			h.log.Warn("share records not released", "group", group, "member", member, "err", err)
		}
		for _, tp := range add {
			entry(tp)
		}
		acksStored := false
		storeAcks := func() {
			if !acksStored {
				acksStored = true
				setAckFailures(ackCodes, ch.Store(ctx))
			}
		}
		// A request that renews locks fetches nothing (KIP-1222): the
		// member is still processing what it holds.
		if r.ShareSessionEpoch != -1 && !renew {
			h.shareFetchRecords(ctx, co, r, sh, member, cfg.ReadCommitted, sr.Fetch, entry, ch, storeAcks)
		}
		// The fence: records are sent only once their acquisition is
		// stored, which fails on an agent that no longer leads the
		// partition (another wrote it since).
		failed := ch.Store(ctx)
		if !acksStored {
			setAckFailures(ackCodes, failed)
		}
		h.notifyAcked(acks, ackCodes)
		for tp, code := range failed {
			if p := parts[tp]; p != nil && len(p.AcquiredRecords) > 0 {
				p.Records, p.AcquiredRecords, p.ErrorCode = nil, nil, code
			}
		}
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
// Acquisitions go into ch, for the caller to store before answering;
// beforeWait is called before the request first waits.
func (h *Handler) shareFetchRecords(ctx context.Context, co *sharecoord.Coordinator, r *kmsg.ShareFetchRequest, sh *shareRequest, member string, readCommitted bool, tps []sharecoord.TP, entry func(sharecoord.TP) *kmsg.ShareFetchResponseTopicPartition, ch *sharecoord.Changes, beforeWait func()) {
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
		held := false
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
			// One read takes at most shareReadBytes: a fetch acquires
			// about MaxRecords, usually a small part of the byte budget
			// (50 MiB from franz-go), and reading the rest only to drop
			// it cost more than anything else the agent did per fetch.
			budget := min(maxBytes-bytes, shareReadBytes)
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
			strict := r.Version >= 2 && r.ShareAcquireMode == 1 // record-limit mode (KIP-1206)
			f, code := co.AcquireInto(ctx, ch, member, tp, maxRecords-got, strict,
				sharecoord.Offsets{LogStart: offs.LogStartOffset, End: end, ForTime: forTime}, read)
			e := entry(tp)
			e.ErrorCode = code
			if len(f.Acquired) == 0 {
				held = held || code == 0 && co.HeldBy(ctx, sh.group, member, tp, end)
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
		if d := time.Now().Add(shareHeldWait); held && d.Before(deadline) {
			deadline = d
		}
		// Acknowledgements are not held back while the request waits.
		beforeWait()
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
// answering the others' errors, and stores them.
func (s *shareRequest) acknowledge(co *sharecoord.Coordinator, member string, acks map[sharecoord.TP][]sharepart.AckBatch) map[sharecoord.TP]int16 {
	ch := co.Changes(s.group)
	codes := s.acknowledgeInto(co, member, acks, ch)
	setAckFailures(codes, ch.Store(s.ctx))
	return codes
}

// acknowledgeInto is acknowledge that leaves the write to ch: the codes
// may be answered only after ch.Store, whose failures replace them
// (setAckFailures).
func (s *shareRequest) acknowledgeInto(co *sharecoord.Coordinator, member string, acks map[sharecoord.TP][]sharepart.AckBatch, ch *sharecoord.Changes) map[sharecoord.TP]int16 {
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
		return codes
	}
	for tp, code := range co.AcknowledgeInto(s.ctx, ch, member, ok) {
		codes[tp] = code
	}
	return codes
}

// notifyAcked wakes the share fetches waiting on partitions whose
// acknowledgements were stored: released records are available again and
// a moved start offset makes room in the in-flight window, so a member
// waiting for records gets them now rather than at its next wait step.
func (h *Handler) notifyAcked(acks map[sharecoord.TP][]sharepart.AckBatch, codes map[sharecoord.TP]int16) {
	var parts []metastore.TopicPartition
	for tp := range acks {
		if codes[tp] == 0 {
			parts = append(parts, metastore.TopicPartition{TopicID: tp.Topic, Partition: tp.Partition})
		}
	}
	if len(parts) > 0 {
		h.notify.Notify(parts)
	}
}

// setAckFailures answers the write's error for acknowledgements that
// were applied but not stored.
func setAckFailures(codes, failed map[sharecoord.TP]int16) {
	for tp, code := range failed {
		if c, ok := codes[tp]; ok && c == 0 {
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
