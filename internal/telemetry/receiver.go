// Package telemetry receives the metrics Kafka clients push about
// themselves (KIP-714: GetTelemetrySubscriptions, PushTelemetry) and
// exposes them as Prometheus metrics per client id.
//
// Every push is hostile input: its size is checked before it is
// decompressed, decompression stops at a bound, the decoder reads a
// bounded number of points, and what is exposed is bounded in client ids
// and in series per client id, the rest dropped and counted. Nothing
// keeps a push's bytes. Nothing here does I/O.
package telemetry

import (
	"container/list"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/recordbatch"
)

// DefaultMetrics are the metric name prefixes clients are asked for: the
// KIP-714 standard metrics of producers and consumers that say how a
// client fares against Floe (request latency per agent, time records
// wait in the client, throttling, errors and retries, connections,
// group membership, fetch latency and lag, poll idleness), as the Java
// client and librdkafka name them. Clients send only metrics whose names
// start with one of them.
var DefaultMetrics = []string{
	"org.apache.kafka.producer.connection.creation.",
	"org.apache.kafka.producer.node.request.latency.",
	"org.apache.kafka.producer.produce.throttle.time.",
	"org.apache.kafka.producer.record.queue.time.",
	"org.apache.kafka.producer.record.error.",
	"org.apache.kafka.producer.record.retry.",
	"org.apache.kafka.consumer.connection.creation.",
	"org.apache.kafka.consumer.node.request.latency.",
	"org.apache.kafka.consumer.coordinator.",
	"org.apache.kafka.consumer.fetch.manager.fetch.latency.",
	"org.apache.kafka.consumer.fetch.manager.records.lag.max",
	"org.apache.kafka.consumer.poll.idle.ratio.",
}

// AllMetrics, alone in Options.Metrics, asks clients for every metric
// (as Kafka's client-metrics subscription "*").
const AllMetrics = "*"

// Defaults and bounds.
const (
	DefaultPushInterval       = time.Minute
	MinPushInterval           = 100 * time.Millisecond // Kafka's bounds on interval.ms
	MaxPushInterval           = time.Hour
	DefaultMaxBytes           = 1 << 20 // Kafka's telemetry.max.bytes
	DefaultMaxInstances       = 16384   // Kafka's client instance cache
	DefaultMaxClients         = 100
	DefaultMaxSeriesPerClient = 200
	// maxPointsPerPush bounds the data points one push may update; the
	// rest are dropped.
	maxPointsPerPush = 10_000
	// inflation bounds a push's decompressed size, as a multiple of
	// MaxBytes.
	inflation = 4
	// minInstanceTTL is how long an instance that stopped asking is
	// remembered at least (Kafka: 60 s, or three push intervals).
	minInstanceTTL = time.Minute
	// maxLabelBytes bounds the client id label.
	maxLabelBytes = 256
)

// acceptedCompression are the codecs pushes may use, in the order of
// preference clients follow: lz4, gzip and snappy, whose decompression
// stops at a bound as it goes. zstd, which Kafka also accepts, is left
// out: its decoder allocates the size a frame declares up front.
var acceptedCompression = []int8{int8(recordbatch.LZ4), int8(recordbatch.Gzip), int8(recordbatch.Snappy)}

// Options configure a Receiver. Zero values take the defaults.
type Options struct {
	// PushInterval is how often clients push (a client-metrics
	// subscription's interval.ms), within [MinPushInterval,
	// MaxPushInterval].
	PushInterval time.Duration
	// Metrics are the metric name prefixes clients are asked for; nil
	// takes DefaultMetrics, an empty non-nil list asks for none (clients
	// then push nothing), and AllMetrics alone asks for every metric.
	Metrics []string
	// MaxBytes is the largest push accepted, as sent (compressed).
	MaxBytes int32
	// MaxInstances bounds the client instances remembered; past it the
	// least recently seen is forgotten.
	MaxInstances int
	// MaxClients bounds the client ids whose metrics are exposed, and
	// MaxSeriesPerClient the series each exposes; data points beyond
	// are dropped (and counted).
	MaxClients         int
	MaxSeriesPerClient int
	// Registerer, if set, registers the exposed client metrics and the
	// receiver's own.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.PushInterval <= 0 {
		o.PushInterval = DefaultPushInterval
	}
	o.PushInterval = min(max(o.PushInterval, MinPushInterval), MaxPushInterval)
	if o.Metrics == nil {
		o.Metrics = DefaultMetrics
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = DefaultMaxInstances
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.MaxSeriesPerClient <= 0 {
		o.MaxSeriesPerClient = DefaultMaxSeriesPerClient
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Receiver hands out subscriptions and takes pushes. It is safe for
// concurrent use.
type Receiver struct {
	opts           Options
	all            bool  // every metric asked for
	subscriptionID int32 // before it is mixed with an instance id
	metrics        *metrics

	mu        sync.Mutex
	instances map[[16]byte]*list.Element // of *instance
	lru       *list.List                 // most recently seen first
	exposed   *exposure
}

// instance is what is remembered of one client instance.
type instance struct {
	id                [16]byte
	lastGet, lastPush time.Time // zero: never
	seen              time.Time
	terminating       bool
	// resubscribe: its last push was refused in a way that tells it to
	// ask for its subscription again at once.
	resubscribe bool
}

// New returns a Receiver.
func New(o Options) *Receiver {
	o = o.withDefaults()
	r := &Receiver{
		opts:      o,
		all:       len(o.Metrics) == 1 && (o.Metrics[0] == AllMetrics || o.Metrics[0] == ""),
		instances: map[[16]byte]*list.Element{},
		lru:       list.New(),
		exposed:   newExposure(o.MaxClients, o.MaxSeriesPerClient, 3*o.PushInterval),
	}
	// The subscription id depends only on the subscription and the
	// instance, so that every agent gives an instance the same one and
	// a client may push to any agent.
	r.subscriptionID = int32(crc32.Checksum([]byte(strings.Join(o.Metrics, ",")+strconv.FormatInt(o.PushInterval.Milliseconds(), 10)), crc32.MakeTable(crc32.Castagnoli)))
	r.metrics = newMetrics(r, o.Registerer)
	return r
}

// Subscription is what a client is told to push.
type Subscription struct {
	InstanceID   [16]byte
	ID           int32
	Compression  []int8
	PushInterval time.Duration
	MaxBytes     int32
	Delta        bool
	Metrics      []string
}

// Subscribe answers a GetTelemetrySubscriptions of instance (zero for a
// client that has none yet: it is given one). As Kafka, a client that
// asks again sooner than a push interval after its last request is
// refused with THROTTLING_QUOTA_EXCEEDED, unless its last push was
// refused for an unknown subscription or compression, which tell it to
// ask again.
func (r *Receiver) Subscribe(id [16]byte) (Subscription, error) {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == ([16]byte{}) {
		id = r.newInstanceID()
	}
	in := r.instance(id, now)
	if last := later(in.lastGet, in.lastPush); !last.IsZero() && now.Sub(last) < r.opts.PushInterval && !in.resubscribe {
		r.metrics.subscriptions.WithLabelValues("throttled").Inc()
		return Subscription{}, fmt.Errorf("%w: subscription asked for again within the push interval", kerr.ThrottlingQuotaExceeded)
	}
	in.lastGet, in.resubscribe = now, false
	r.metrics.subscriptions.WithLabelValues("accepted").Inc()
	metrics := r.opts.Metrics
	if r.all {
		metrics = []string{AllMetrics}
	}
	return Subscription{
		InstanceID:   id,
		ID:           r.subscriptionOf(id),
		Compression:  acceptedCompression,
		PushInterval: r.opts.PushInterval,
		MaxBytes:     r.opts.MaxBytes,
		Delta:        true,
		Metrics:      metrics,
	}, nil
}

// Push is one PushTelemetry request.
type Push struct {
	InstanceID     [16]byte
	SubscriptionID int32
	Terminating    bool
	Compression    int8
	Metrics        []byte
	// ClientID is the request header's client id, the label its
	// metrics are exposed under.
	ClientID string
}

// Push takes a push, checking it in Kafka's order: a valid instance id
// (INVALID_REQUEST), an instance that has not said it was terminating
// (INVALID_REQUEST), no sooner than a push interval after its previous
// push unless the first since a subscription or a terminating one
// (THROTTLING_QUOTA_EXCEEDED), its subscription (UNKNOWN_SUBSCRIPTION_ID),
// its compression (UNSUPPORTED_COMPRESSION_TYPE), its size
// (TELEMETRY_TOO_LARGE); metrics that cannot be decompressed or decoded
// are INVALID_RECORD, as Kafka answers when its exporter fails. An
// instance this agent never saw is taken as it comes: it subscribed
// through another agent, which gave it the same subscription id.
func (r *Receiver) Push(p Push) error {
	err := r.push(p)
	r.metrics.pushes.WithLabelValues(pushResult(err)).Inc()
	if err == nil {
		r.metrics.pushBytes.Add(float64(len(p.Metrics)))
	}
	return err
}

func (r *Receiver) push(p Push) error {
	if p.InstanceID == ([16]byte{}) || p.InstanceID == metadataTopicID {
		return fmt.Errorf("%w: invalid client instance id", kerr.InvalidRequest)
	}
	now := r.opts.Now()
	r.mu.Lock()
	in := r.instance(p.InstanceID, now)
	err := r.admit(in, p, now)
	in.terminating = in.terminating || p.Terminating
	in.resubscribe = isResubscribe(err)
	r.mu.Unlock()
	if err != nil || len(p.Metrics) == 0 {
		return err
	}
	raw, err := recordbatch.Decompress(recordbatch.Codec(p.Compression), p.Metrics, inflation*int(r.opts.MaxBytes))
	if err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidRecord, err)
	}
	if err := r.expose(clip(p.ClientID, maxLabelBytes), raw, now); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidRecord, err)
	}
	return nil
}

// admit checks a push against its instance's state and records it.
func (r *Receiver) admit(in *instance, p Push, now time.Time) error {
	if in.terminating {
		return fmt.Errorf("%w: the client said it was terminating", kerr.InvalidRequest)
	}
	firstSinceGet := in.lastGet.After(in.lastPush)
	if !firstSinceGet && !in.lastPush.IsZero() && now.Sub(in.lastPush) < r.opts.PushInterval && !p.Terminating {
		return fmt.Errorf("%w: pushed again within the push interval", kerr.ThrottlingQuotaExceeded)
	}
	in.lastPush = now
	if p.SubscriptionID != r.subscriptionOf(in.id) {
		return fmt.Errorf("%w: subscription %d", kerr.UnknownSubscriptionID, p.SubscriptionID)
	}
	if p.Compression != int8(recordbatch.None) && !slices.Contains(acceptedCompression, p.Compression) {
		return fmt.Errorf("%w: compression %d is not accepted", kerr.UnsupportedCompressionType, p.Compression)
	}
	if len(p.Metrics) > int(r.opts.MaxBytes) {
		return fmt.Errorf("%w: %d bytes, at most %d", kerr.TelemetryTooLarge, len(p.Metrics), r.opts.MaxBytes)
	}
	return nil
}

// expose decodes a push's metrics into the exposed series.
func (r *Receiver) expose(client string, raw []byte, now time.Time) error {
	points := 0
	want := func(name string) bool { return r.all || hasAnyPrefix(name, r.opts.Metrics) }
	r.mu.Lock()
	defer r.mu.Unlock()
	return decodeMetrics(raw, want, func(p point) bool {
		if points++; points > maxPointsPerPush {
			r.metrics.dropped.WithLabelValues("push_limit").Inc()
			return false
		}
		if reason := r.exposed.update(client, p, now); reason != "" {
			r.metrics.dropped.WithLabelValues(reason).Inc()
		}
		return true
	}, func(name string, n int) {
		reason := "unrequested"
		if name != "" {
			reason = "type" // histograms and summaries are not exposed
		}
		r.metrics.dropped.WithLabelValues(reason).Add(float64(n))
	})
}

// instance returns id's instance, remembered from now on, forgetting
// instances unseen for long and, past MaxInstances, the least recently
// seen. The caller holds mu.
func (r *Receiver) instance(id [16]byte, now time.Time) *instance {
	ttl := max(minInstanceTTL, 3*r.opts.PushInterval)
	for e := r.lru.Back(); e != nil && now.Sub(e.Value.(*instance).seen) > ttl; e = r.lru.Back() {
		r.forget(e)
	}
	if e, ok := r.instances[id]; ok {
		in := e.Value.(*instance)
		in.seen = now
		r.lru.MoveToFront(e)
		return in
	}
	if r.lru.Len() >= r.opts.MaxInstances {
		r.forget(r.lru.Back())
	}
	in := &instance{id: id, seen: now}
	r.instances[id] = r.lru.PushFront(in)
	return in
}

func (r *Receiver) forget(e *list.Element) {
	delete(r.instances, e.Value.(*instance).id)
	r.lru.Remove(e)
}

// newInstanceID returns a random (version 4) UUID no instance has. The
// caller holds mu.
func (r *Receiver) newInstanceID() [16]byte {
	for {
		var id [16]byte
		_, _ = rand.Read(id[:]) // never fails (crypto/rand)
		id[6] = id[6]&0x0f | 0x40
		id[8] = id[8]&0x3f | 0x80
		if _, taken := r.instances[id]; !taken {
			return id
		}
	}
}

// subscriptionOf is an instance's subscription id: the subscription's
// checksum mixed with the instance id, as Kafka's.
func (r *Receiver) subscriptionOf(id [16]byte) int32 {
	h := int32(0)
	for i := 0; i < 16; i += 4 {
		h ^= int32(uint32(id[i])<<24 | uint32(id[i+1])<<16 | uint32(id[i+2])<<8 | uint32(id[i+3]))
	}
	return r.subscriptionID ^ h
}

// metadataTopicID is Kafka's reserved UUID 1 (the metadata topic's id),
// which, with zero, no client instance may have.
var metadataTopicID = [16]byte{15: 1}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// isResubscribe reports whether a push's error tells the client to ask
// for its subscription again.
func isResubscribe(err error) bool {
	return errors.Is(err, kerr.UnknownSubscriptionID) || errors.Is(err, kerr.UnsupportedCompressionType)
}

// pushResult labels a push's outcome.
func pushResult(err error) string {
	for _, c := range []struct {
		err   *kerr.Error
		label string
	}{
		{kerr.ThrottlingQuotaExceeded, "throttled"},
		{kerr.UnknownSubscriptionID, "unknown_subscription"},
		{kerr.UnsupportedCompressionType, "unsupported_compression"},
		{kerr.TelemetryTooLarge, "too_large"},
		{kerr.InvalidRecord, "invalid_metrics"},
		{kerr.InvalidRequest, "invalid_request"},
	} {
		if errors.Is(err, c.err) {
			return c.label
		}
	}
	if err != nil {
		return "error"
	}
	return "accepted"
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
