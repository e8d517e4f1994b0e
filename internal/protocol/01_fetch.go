package protocol

// Fetch v4-v12.
//
// v4 is the first version that returns record batch format v2 and the last
// stable offset. Below v10, a partition of a topic whose compression.type
// is zstd is UNSUPPORTED_COMPRESSION_TYPE (KIP-110; zstdForOldFetch). v11 adds rack-aware replica selection (KIP-392):
// PreferredReadReplica is always -1. v13+ address topics by ID and are not
// advertised yet.
//
// Fetch sessions (v7+, KIP-227), kept by package fetchsession with Kafka's
// rules: epoch 0 is a full fetch that asks for a session, and the answer
// carries its id (or 0 when the agent's cache has no room: the client
// goes on with full fetches); epoch -1 is a full fetch without a session,
// closing the one named; an incremental fetch (the session's next epoch)
// names only the partitions whose parameters changed, plus
// ForgottenTopics to drop, and is answered only with the partitions that
// have records, an error, or a new high watermark, last stable offset or
// log start offset since the session's last answer carrying them. An
// unknown session is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch
// INVALID_FETCH_SESSION_EPOCH, both with no partitions. Sessions belong to
// the agent and the connection that made them: a client that reconnects
// or moves to another agent starts over, as after an eviction. Versions
// before 7 have no sessions. Partitions are read in the session's order,
// and those that returned records move to its end, so a response cut by
// MaxBytes leaves different partitions out each time.
//
// A fetch that finds fewer than MinBytes waits until a commit lands on one
// of its partitions or MaxWaitMs passes. It is woken by the commit itself,
// not by polling, and only by commits on the partitions it reads. An
// incremental fetch waits the same way: its session's partitions are read
// again when woken, and the answer is filtered once, when it is sent.
// MaxBytes is lowered to the agent's fetch.max.bytes (Limits), and each
// partition's PartitionMaxBytes to what is left of it.
//
// isolation_level (KIP-98): read_uncommitted (0) returns batches up to
// the high watermark and a null AbortedTransactions. read_committed (1;
// any other non-zero value is read the same way, the safer reading)
// returns only whole batches below the last stable offset, cut at a batch
// boundary inside an extent if need be, and lists the aborted
// transactions overlapping [fetch offset, end of the returned batches)
// (an empty list, not null, when there are none: Kafka's answer). Control
// batches are returned at both levels; clients skip them. Every partition
// reports its LastStableOffset. Out-of-range stays on the high watermark:
// a read_committed offset between the last stable offset and the high
// watermark reads nothing. Its long poll counts only bytes below the last
// stable offset, so it waits until the LSO moves; ending a transaction is
// a commit that announces its markers' partitions and wakes it. All of
// this is per partition, so it is the same for partitions of a session:
// an incremental answer carries a partition whose last stable offset
// moved even if nothing else did.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/fetchsession"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(1, 4, 12, (*Handler).fetch) }

// maxFetchWait bounds MaxWaitMs so a hostile client cannot park a request
// forever.
const maxFetchWait = 5 * time.Minute

// The session work runs in the reply, which runs after the connection's
// earlier replies: a client's fetches reach its session in the order it
// sent them.
func (h *Handler) fetch(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.FetchRequest)
	return func(ctx context.Context) kmsg.Response {
		f, err := h.cfg.FetchSessions.Begin(sessionRequest(req.Conn, r))
		if err != nil {
			resp := r.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = sessionErrorCode(err)
			return resp
		}
		denied := map[string]bool{}
		for _, p := range f.Partitions {
			if _, ok := denied[p.Topic]; !ok {
				denied[p.Topic] = !h.allowed(req, acl.Read, acl.Topic, p.Topic)
			}
		}
		wait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxFetchWait)
		deadline := time.Now().Add(wait)
		// Woken only by commits on the partitions read (see
		// fetch.Notifier): each is watched before it is read.
		w := h.notify.NewWaiter()
		defer w.Close()
		for {
			w.Arm()
			read := h.fetchOnce(ctx, r, f.Partitions, denied, w)
			if read.bytes >= int(r.MinBytes) || read.failed || !time.Now().Before(deadline) {
				return h.fetchResponse(r, f, read)
			}
			timer := time.NewTimer(time.Until(deadline))
			select {
			case <-w.C():
				timer.Stop()
			case <-timer.C:
				return h.fetchResponse(r, f, h.fetchOnce(ctx, r, f.Partitions, denied, nil))
			case <-ctx.Done():
				timer.Stop()
				return h.fetchResponse(r, f, read)
			}
		}
	}, nil
}

// sessionRequest is what r says about sessions. Versions before 7 have
// none: they are full fetches without a session.
func sessionRequest(conn uint64, r *kmsg.FetchRequest) fetchsession.Request {
	sr := fetchsession.Request{Conn: conn, SessionID: r.SessionID, Epoch: r.SessionEpoch}
	if r.Version < 7 {
		sr.SessionID, sr.Epoch = 0, fetchsession.NoSession
	}
	n := 0
	for _, rt := range r.Topics {
		n += len(rt.Partitions)
	}
	sr.Partitions = make([]fetchsession.Partition, 0, n)
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			sr.Partitions = append(sr.Partitions, fetchsession.Partition{
				Key:    fetchsession.Key{Topic: rt.Topic, Partition: rp.Partition},
				Params: fetchsession.Params{FetchOffset: rp.FetchOffset, MaxBytes: rp.PartitionMaxBytes, CurrentLeaderEpoch: rp.CurrentLeaderEpoch},
			})
		}
	}
	for _, ft := range r.ForgottenTopics {
		for _, p := range ft.Partitions {
			sr.Forgotten = append(sr.Forgotten, fetchsession.Key{Topic: ft.Topic, Partition: p})
		}
	}
	return sr
}

func sessionErrorCode(err error) int16 {
	if errors.Is(err, fetchsession.ErrInvalidEpoch) {
		return kerr.InvalidFetchSessionEpoch.Code
	}
	return kerr.FetchSessionIDNotFound.Code
}

// fetched is one read of a fetch's partitions.
type fetched struct {
	// parts[i] answers the fetch's i-th partition.
	parts []kmsg.FetchResponseTopicPartition
	ids   map[string]metastore.TopicID
	// bytes counts the record bytes read; failed is set when an error
	// must be answered at once instead of waiting for data.
	bytes  int
	failed bool
}

// fetchOnce reads every partition once, in order, each watched by w
// (nil: none) before it is read. Partitions of denied topics fail with
// TOPIC_AUTHORIZATION_FAILED.
func (h *Handler) fetchOnce(ctx context.Context, r *kmsg.FetchRequest, parts []fetchsession.Partition, denied map[string]bool, w *fetch.Waiter) fetched {
	maxBytes := int(r.MaxBytes)
	if r.Version < 3 || maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	if limit := int(h.cfg.Limits.FetchMaxBytes); limit > 0 {
		maxBytes = min(maxBytes, limit) // fetch.max.bytes
	}
	iso := fetch.ReadUncommitted
	if r.IsolationLevel != 0 {
		iso = fetch.ReadCommitted
	}
	lookup := h.lookup(ctx)
	reader := h.cfg.Cluster.Serves(RoleFetch)
	out := fetched{parts: make([]kmsg.FetchResponseTopicPartition, len(parts)), ids: map[string]metastore.TopicID{}}
	for i, p := range parts {
		t, terr := lookup.name(p.Topic)
		out.ids[p.Topic] = t.ID
		pr := &out.parts[i]
		pr.Default()
		pr.Partition = p.Partition
		pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
		pr.PreferredReadReplica = -1
		if denied[p.Topic] {
			pr.ErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if code := partitionErr(t, terr, p.Partition); code != 0 {
			pr.ErrorCode = code
		} else if !reader {
			pr.ErrorCode = kerr.NotLeaderForPartition.Code
		} else if code := checkLeaderEpoch(p.CurrentLeaderEpoch); code != 0 {
			pr.ErrorCode = code
		} else {
			w.Watch(t.ID, p.Partition)
			h.fetchPartition(ctx, t, p, pr, maxBytes-out.bytes, out.bytes == 0, iso)
			if r.Version < 10 {
				zstdForOldFetch(t, pr)
			}
			out.bytes += len(pr.RecordBatches)
		}
		if pr.RecordBatches == nil {
			// Kafka never sends null records; librdkafka rejects a
			// null (-1) MessageSetSize as a parse failure.
			pr.RecordBatches = []byte{}
		}
		out.failed = out.failed || pr.ErrorCode != 0
	}
	return out
}

// fetchResponse finishes the fetch with its session and answers the
// partitions the session says to, grouped by topic in the order of their
// first partition.
func (h *Handler) fetchResponse(r *kmsg.FetchRequest, f *fetchsession.Fetch, read fetched) *kmsg.FetchResponse {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	results := make([]fetchsession.Result, len(read.parts))
	for i, p := range read.parts {
		results[i] = fetchsession.Result{
			HighWatermark: p.HighWatermark, LastStableOffset: p.LastStableOffset, LogStartOffset: p.LogStartOffset,
			Records: len(p.RecordBatches) > 0, Failed: p.ErrorCode != 0,
		}
	}
	id, include, err := h.cfg.FetchSessions.Finish(f, results)
	resp.SessionID = id
	if err != nil {
		resp.ErrorCode = sessionErrorCode(err)
		return resp
	}
	topic := map[string]int{}
	for i, p := range f.Partitions {
		if include != nil && !include[i] {
			continue
		}
		ti, ok := topic[p.Topic]
		if !ok {
			ti = len(resp.Topics)
			topic[p.Topic] = ti
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = p.Topic, read.ids[p.Topic]
			resp.Topics = append(resp.Topics, rt)
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, read.parts[i])
	}
	return resp
}

func (h *Handler) fetchPartition(ctx context.Context, t metastore.Topic, p fetchsession.Partition, pr *kmsg.FetchResponseTopicPartition, budget int, first bool, iso fetch.Isolation) {
	limit := min(int(p.MaxBytes), budget)
	if limit <= 0 && !first {
		// The response is full; report offsets without data, from the
		// reader's cache as a read would.
		offs, err := h.reader.CachedOffsets(ctx, t.ID, p.Partition)
		if err != nil {
			pr.ErrorCode = errorCode(err)
			return
		}
		setOffsets(pr, offs)
		if iso == fetch.ReadCommitted {
			pr.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		return
	}
	res, err := h.reader.Read(ctx, t.ID, p.Partition, p.FetchOffset, limit, first, iso)
	setOffsets(pr, res.PartitionOffsets)
	if err != nil {
		pr.ErrorCode = errorCode(err)
		if pr.ErrorCode == kerr.KafkaStorageError.Code {
			h.log.Warn("fetch failed", "topic", t.Name, "partition", p.Partition, "offset", p.FetchOffset, "err", err)
		}
		return
	}
	pr.RecordBatches = res.Records
	if res.Aborted != nil {
		pr.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(res.Aborted))
		for _, a := range res.Aborted {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			pr.AbortedTransactions = append(pr.AbortedTransactions, at)
		}
	}
}

func setOffsets(pr *kmsg.FetchResponseTopicPartition, offs metastore.PartitionOffsets) {
	pr.HighWatermark = offs.HighWatermark
	pr.LastStableOffset = offs.LastStableOffset
	pr.LogStartOffset = offs.LogStartOffset
}

// checkLeaderEpoch validates a client's current leader epoch (-1: none).
func checkLeaderEpoch(epoch int32) int16 {
	switch {
	case epoch < 0 || epoch == fetch.LeaderEpoch:
		return 0
	case epoch > fetch.LeaderEpoch:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}
