package protocol

// Limits on what a request may create or ask for, and the controller
// mutation quota of KIP-599.
//
// Partitions cost Floe no disk and no replicas, but every partition is an
// entry in every Metadata answer for its topic and in the offsets the
// metadata store keeps, so their number is bounded like any other
// allocation a client can drive.

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

// Limits bound what clients may create. Zero values take the defaults
// below; a negative value means unlimited.
type Limits struct {
	// MaxPartitionsPerTopic bounds NumPartitions of CreateTopics and the
	// count of CreatePartitions (INVALID_PARTITIONS beyond it).
	MaxPartitionsPerTopic int32
	// MaxPartitions bounds the partitions of all topics together
	// (POLICY_VIOLATION beyond it; KIP-578's max.partitions).
	MaxPartitions int64
	// MaxTopics bounds the number of topics (POLICY_VIOLATION beyond it).
	MaxTopics int
	// FetchMaxBytes is fetch.max.bytes: a Fetch's MaxBytes is lowered to
	// it (the first batch is still returned whole, as Kafka does).
	FetchMaxBytes int32
	// ControllerMutationRate is KIP-599's controller_mutation_rate:
	// partitions created or deleted per second by one client (principal
	// and client id), with a burst of 11 seconds' worth as Kafka's
	// default quota window allows.
	ControllerMutationRate float64
	// ProducerIDRate bounds InitProducerId requests per second of one
	// client (KIP-936's producer_ids_rate); requests beyond it are
	// answered late, not refused.
	ProducerIDRate float64
}

// Defaults.
const (
	DefaultMaxPartitionsPerTopic        = 10_000
	DefaultMaxPartitions                = 200_000
	DefaultMaxTopics                    = 20_000
	DefaultFetchMaxBytes                = 57_671_680 // Kafka's fetch.max.bytes
	DefaultControllerMutationRate       = 1000.0
	DefaultProducerIDRate               = 100.0
	quotaBurstSeconds                   = 11 // quota.window.num × quota.window.size.seconds
	maxQuotaClients                     = 4096
	maxThrottle                         = 30 * time.Second
	throttlingQuotaExceeded       int16 = 89 // THROTTLING_QUOTA_EXCEEDED
)

// WithDefaults fills zero values with the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxPartitionsPerTopic == 0 {
		l.MaxPartitionsPerTopic = DefaultMaxPartitionsPerTopic
	}
	if l.MaxPartitions == 0 {
		l.MaxPartitions = DefaultMaxPartitions
	}
	if l.MaxTopics == 0 {
		l.MaxTopics = DefaultMaxTopics
	}
	if l.FetchMaxBytes == 0 {
		l.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if l.ControllerMutationRate == 0 {
		l.ControllerMutationRate = DefaultControllerMutationRate
	}
	if l.ProducerIDRate == 0 {
		l.ProducerIDRate = DefaultProducerIDRate
	}
	return l
}

// creationTurn waits for the agent's turn to create topics or partitions
// (a one-slot channel, not a mutex, so waiting ends with ctx) and returns
// its release. Checking the cluster limits and creating happen within one
// turn, so requests on one agent cannot all pass the check before any has
// created; agents racing each other can pass a cluster limit by one
// request each.
func (h *Handler) creationTurn(ctx context.Context) (release func(), err error) {
	select {
	case h.creating <- struct{}{}:
		return func() { <-h.creating }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// checkCreate checks that a topic of partitions partitions may be
// created (adding fewer if it is a CreatePartitions of an existing
// topic, which has current partitions). It reads every topic from the
// store; the caller holds the creation turn.
func (h *Handler) checkCreate(ctx context.Context, name string, current, partitions int32) (int16, error) {
	l := h.cfg.Limits
	if l.MaxPartitionsPerTopic > 0 && partitions > l.MaxPartitionsPerTopic {
		return kerr.InvalidPartitions.Code, fmt.Errorf("%d partitions is more than the %d a topic may have (--max-partitions-per-topic)", partitions, l.MaxPartitionsPerTopic)
	}
	if l.MaxPartitions < 0 && l.MaxTopics < 0 {
		return 0, nil
	}
	all, err := h.store.Topics(ctx)
	if err != nil {
		return errorCode(err), err
	}
	var total int64
	for _, t := range all {
		total += int64(t.Partitions)
	}
	if current == 0 && l.MaxTopics > 0 && len(all) >= l.MaxTopics {
		return kerr.PolicyViolation.Code, fmt.Errorf("the cluster has %d topics, the most it may have (--max-topics)", len(all))
	}
	if add := int64(partitions - current); l.MaxPartitions > 0 && total+add > l.MaxPartitions {
		return kerr.PolicyViolation.Code, fmt.Errorf("%d more partitions would make %d in the cluster, more than the %d it may have (--max-partitions)", add, total+add, l.MaxPartitions)
	}
	return 0, nil
}

// ErrNamesTooMany reports a request that names more partitions, or
// topics, than the cluster may have: its answer would be sized by the
// client rather than by the cluster. No Kafka client sends one; the
// connection is closed, as for a malformed frame.
var ErrNamesTooMany = fmt.Errorf("%w: the request names more than the cluster may have", wire.ErrMalformed)

// checkNamed bounds the partitions a request names by MaxPartitions (and
// a Metadata request's topics by MaxTopics), so that every answer built
// per named partition is bounded by the limits, not only by the frame.
func (h *Handler) checkNamed(req kmsg.Request) error {
	var n int64
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		if max := h.cfg.Limits.MaxTopics; max > 0 && len(r.Topics) > max {
			return fmt.Errorf("%w: %d topics, at most %d (--max-topics)", ErrNamesTooMany, len(r.Topics), max)
		}
		return nil
	case *kmsg.ProduceRequest:
		n = count(r.Topics, func(t kmsg.ProduceRequestTopic) int { return len(t.Partitions) })
	case *kmsg.FetchRequest:
		n = count(r.Topics, func(t kmsg.FetchRequestTopic) int { return len(t.Partitions) })
	case *kmsg.ListOffsetsRequest:
		n = count(r.Topics, func(t kmsg.ListOffsetsRequestTopic) int { return len(t.Partitions) })
	case *kmsg.OffsetForLeaderEpochRequest:
		n = count(r.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) int { return len(t.Partitions) })
	case *kmsg.DeleteRecordsRequest:
		n = count(r.Topics, func(t kmsg.DeleteRecordsRequestTopic) int { return len(t.Partitions) })
	case *kmsg.OffsetCommitRequest:
		n = count(r.Topics, func(t kmsg.OffsetCommitRequestTopic) int { return len(t.Partitions) })
	case *kmsg.OffsetFetchRequest:
		n = count(r.Topics, func(t kmsg.OffsetFetchRequestTopic) int { return len(t.Partitions) })
		for _, g := range r.Groups {
			n += count(g.Topics, func(t kmsg.OffsetFetchRequestGroupTopic) int { return len(t.Partitions) })
		}
	case *kmsg.AddPartitionsToTxnRequest:
		n = count(r.Topics, func(t kmsg.AddPartitionsToTxnRequestTopic) int { return len(t.Partitions) })
		// v4+ batches transactions: each counts, so that a request of
		// many empty ones is bounded too.
		n += int64(len(r.Transactions))
		for _, tx := range r.Transactions {
			n += count(tx.Topics, func(t kmsg.AddPartitionsToTxnRequestTransactionTopic) int { return len(t.Partitions) })
		}
	case *kmsg.TxnOffsetCommitRequest:
		n = count(r.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) int { return len(t.Partitions) })
	case *kmsg.DescribeProducersRequest:
		n = count(r.Topics, func(t kmsg.DescribeProducersRequestTopic) int { return len(t.Partitions) })
	case *kmsg.DescribeTransactionsRequest:
		n = int64(len(r.TransactionalIDs))
	default:
		return nil
	}
	if max := h.cfg.Limits.MaxPartitions; max > 0 && n > max {
		return fmt.Errorf("%w: %d partitions, at most %d (--max-partitions)", ErrNamesTooMany, n, max)
	}
	return nil
}

func count[T any](ts []T, f func(T) int) int64 {
	var n int64
	for _, t := range ts {
		n += int64(f(t))
	}
	return n
}

// quotas are token buckets by client, as KIP-599 enforces the controller
// mutation quota: a request is admitted while the client's credits are
// not negative and may take them below zero; the client then waits until
// they are back to zero.
type quotas struct {
	rate, burst float64
	now         func() time.Time

	mu      sync.Mutex
	clients map[string]*bucket
}

type bucket struct {
	credits float64
	at      time.Time
}

func newQuotas(rate float64, now func() time.Time) *quotas {
	if rate <= 0 {
		return nil
	}
	return &quotas{rate: rate, burst: rate * quotaBurstSeconds, now: now, clients: map[string]*bucket{}}
}

// quotaKey names a client as Kafka's quotas do: principal and client id.
func quotaKey(principal, clientID string) string { return principal + "\x00" + clientID }

// admit reports whether a client may go ahead, and if not how long it
// should wait. A nil quotas admits everything.
func (q *quotas) admit(client string) (bool, time.Duration) {
	if q == nil {
		return true, 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.refill(client)
	if b.credits >= 0 {
		return true, 0
	}
	return false, q.wait(b)
}

// record takes n from a client's credits and returns how long the client
// must now wait before its next mutation (0 while credits remain).
func (q *quotas) record(client string, n float64) time.Duration {
	if q == nil || n <= 0 {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.refill(client)
	b.credits -= n
	return q.wait(b)
}

func (q *quotas) wait(b *bucket) time.Duration {
	if b.credits >= 0 {
		return 0
	}
	return min(time.Duration(-b.credits/q.rate*float64(time.Second)), maxThrottle)
}

// refill returns the client's bucket with the credits earned since it was
// last seen. The map is bounded: past maxQuotaClients, buckets that are
// full again are dropped, and if none is, new clients share one bucket,
// so that changing client ids does not escape the quota.
func (q *quotas) refill(client string) *bucket {
	now := q.now()
	b, ok := q.clients[client]
	if !ok {
		if len(q.clients) >= maxQuotaClients {
			for k, o := range q.clients {
				if o.credits+now.Sub(o.at).Seconds()*q.rate >= q.burst {
					delete(q.clients, k)
				}
			}
		}
		if len(q.clients) >= maxQuotaClients {
			client = "\x00overflow"
			if b, ok = q.clients[client]; !ok {
				b = &bucket{credits: q.burst, at: now}
			}
		} else {
			b = &bucket{credits: q.burst, at: now}
		}
		q.clients[client] = b
	}
	b.credits = math.Min(q.burst, b.credits+now.Sub(b.at).Seconds()*q.rate)
	b.at = now
	return b
}

// throttleMillis is a throttle time for a response field.
func throttleMillis(d time.Duration) int32 {
	return int32(min(d.Milliseconds(), math.MaxInt32))
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// throttled returns resp's reply for a request that made the client owe
// d: the response says so in its throttle time, and to clients that
// predate KIP-599 (old, below which they cannot be refused) it is sent
// only after d, as Kafka mutes their channel.
func throttled(resp kmsg.Response, d time.Duration, old bool) Reply {
	if t, ok := resp.(interface{ SetThrottle(int32) }); ok && d > 0 {
		t.SetThrottle(throttleMillis(d))
	}
	if !old || d <= 0 {
		return now(resp)
	}
	return func(ctx context.Context) kmsg.Response {
		sleepCtx(ctx, d)
		return resp
	}
}

// quotaMessage explains a THROTTLING_QUOTA_EXCEEDED.
func quotaMessage(d time.Duration) *string {
	return strPtr(fmt.Sprintf("the controller mutation rate quota was exceeded: retry after %d ms", d.Milliseconds()))
}
