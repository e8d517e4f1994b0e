package protocol

// Fetch v4-v12.
//
// v4 is the first version that returns record batch format v2 and the last
// stable offset. Fetch sessions (v7+, KIP-227) are not kept: every answer
// has session id 0, which tells clients to send full requests; a request
// with epoch 0 or -1 is a full fetch whatever its session id, and an
// incremental one (epoch > 0) gets FETCH_SESSION_ID_NOT_FOUND. v11 adds
// rack-aware replica selection (KIP-392): PreferredReadReplica is always
// -1. v13+ address topics by ID and are not advertised yet.
//
// A fetch that finds fewer than MinBytes waits until a commit lands or
// MaxWaitMs passes. It is woken by the commit itself, not by polling.
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
// a commit that announces its markers' partitions and wakes it.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(1, 4, 12, (*Handler).fetch) }

// maxFetchWait bounds MaxWaitMs so a hostile client cannot park a request
// forever.
const maxFetchWait = 5 * time.Minute

func (h *Handler) fetch(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.FetchRequest)
	denied := map[string]bool{}
	for _, rt := range r.Topics {
		denied[rt.Topic] = !h.allowed(req, acl.Read, acl.Topic, rt.Topic)
	}
	return func(ctx context.Context) kmsg.Response {
		wait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxFetchWait)
		deadline := time.Now().Add(wait)
		for {
			changed := h.notify.Changed()
			resp, n, failed := h.fetchOnce(ctx, r, denied)
			if n >= int(r.MinBytes) || failed || !time.Now().Before(deadline) {
				return resp
			}
			timer := time.NewTimer(time.Until(deadline))
			select {
			case <-changed:
				timer.Stop()
			case <-timer.C:
				resp, _, _ = h.fetchOnce(ctx, r, denied)
				return resp
			case <-ctx.Done():
				timer.Stop()
				return resp
			}
		}
	}, nil
}

// fetchOnce reads every requested partition once and returns the
// response, the number of record bytes in it, and whether any error must
// be reported at once instead of waiting for data. Partitions of denied
// topics fail with TOPIC_AUTHORIZATION_FAILED.
func (h *Handler) fetchOnce(ctx context.Context, r *kmsg.FetchRequest, denied map[string]bool) (resp *kmsg.FetchResponse, total int, failed bool) {
	resp = r.ResponseKind().(*kmsg.FetchResponse)
	// Epoch 0 (open a session) and -1 (close it, or none) ask for a full
	// fetch whatever the session id; only an incremental fetch (epoch > 0)
	// needs a session, which Floe never handed out.
	if r.Version >= 7 && r.SessionID != 0 && r.SessionEpoch > 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, 0, true
	}
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
	for _, rt := range r.Topics {
		t, terr := lookup.name(rt.Topic)
		respTopic := kmsg.NewFetchResponseTopic()
		respTopic.Topic = rt.Topic
		respTopic.TopicID = t.ID
		for _, rp := range rt.Partitions {
			pr := kmsg.NewFetchResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
			pr.PreferredReadReplica = -1
			if denied[rt.Topic] {
				pr.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if code := partitionErr(t, terr, rp.Partition); code != 0 {
				pr.ErrorCode = code
			} else if !reader {
				pr.ErrorCode = kerr.NotLeaderForPartition.Code
			} else if code := checkLeaderEpoch(rp.CurrentLeaderEpoch); code != 0 {
				pr.ErrorCode = code
			} else {
				h.fetchPartition(ctx, t, rp, &pr, maxBytes-total, total == 0, iso)
				total += len(pr.RecordBatches)
			}
			if pr.RecordBatches == nil {
				// Kafka never sends null records; librdkafka rejects a
				// null (-1) MessageSetSize as a parse failure.
				pr.RecordBatches = []byte{}
			}
			failed = failed || pr.ErrorCode != 0
			respTopic.Partitions = append(respTopic.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	return resp, total, failed
}

func (h *Handler) fetchPartition(ctx context.Context, t metastore.Topic, rp kmsg.FetchRequestTopicPartition, pr *kmsg.FetchResponseTopicPartition, budget int, first bool, iso fetch.Isolation) {
	limit := min(int(rp.PartitionMaxBytes), budget)
	if limit <= 0 && !first {
		// The response is full; report offsets without data.
		offs, err := h.reader.Offsets(ctx, t.ID, rp.Partition)
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
	res, err := h.reader.Read(ctx, t.ID, rp.Partition, rp.FetchOffset, limit, first, iso)
	setOffsets(pr, res.PartitionOffsets)
	if err != nil {
		pr.ErrorCode = errorCode(err)
		if pr.ErrorCode == kerr.KafkaStorageError.Code {
			h.log.Warn("fetch failed", "topic", t.Name, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
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
