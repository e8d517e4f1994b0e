// Package quota enforces Kafka client quotas on one agent: produce and
// fetch byte rates (KIP-13, KIP-55) and request time (KIP-124) per user
// and client id, resolved with
// Kafka's precedence from the quotas in the metadata store, measured over
// a sliding window, and answered with Kafka's throttle time (KIP-219): a
// client over its quota gets its response at once with throttle_time_ms
// set, and its connection is not read again until that time has passed.
// A client over quota is slowed, never refused.
//
// Floe's agents are interchangeable, so a byte-rate quota is for the
// whole cluster: each agent enforces its share, the quota divided by the
// number of live agents that serve the kind of traffic it limits. A
// request percentage is a share of each agent's time, and applies on
// each.
//
// The package decides; the connection does the waiting.
package quota

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

// Kind is the traffic a byte-rate quota limits.
type Kind int

const (
	Produce     Kind = iota // producer_byte_rate, request bytes
	Fetch                   // consumer_byte_rate, response bytes
	RequestTime             // request_percentage, the agent's time handling requests
)

func (k Kind) key() string {
	switch k {
	case Produce:
		return metastore.QuotaProducerByteRate
	case Fetch:
		return metastore.QuotaConsumerByteRate
	}
	return metastore.QuotaRequestPercentage
}

func (k Kind) String() string {
	switch k {
	case Produce:
		return "produce"
	case Fetch:
		return "fetch"
	}
	return "request"
}

// shared reports whether a quota of kind k is for the whole cluster,
// divided among the agents: byte rates are; a request percentage is a
// share of one agent's time, as in Kafka, and applies on each agent.
func (k Kind) shared() bool { return k != RequestTime }

// RequestPercent is what Record takes for RequestTime: d of an agent's
// time as percentage-seconds, so that the rate per second is the
// percentage of one thread's time (Kafka's request_percentage).
func RequestPercent(d time.Duration) float64 { return d.Seconds() * 100 }

// Defaults of Options, Kafka's quota.window.num and
// quota.window.size.seconds.
const (
	DefaultSamples      = 11
	DefaultSampleWindow = time.Second
	DefaultRefresh      = 2 * time.Second
)

// Options configure a Manager.
type Options struct {
	// Samples and SampleWindow make the measuring window.
	Samples      int
	SampleWindow time.Duration
	// Agents returns how many live agents share quotas of a kind (at
	// least 1 is assumed).
	Agents func(Kind) int
	// Refresh is how often quotas are re-read from the store.
	Refresh    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (tests).
	Now func() time.Time
}

// Manager holds the quotas and the rates of the clients that have one.
// It is safe for concurrent use.
type Manager struct {
	store metastore.QuotaStore
	opts  Options
	log   *slog.Logger

	throttled *prometheus.CounterVec
	throttle  *prometheus.CounterVec

	// any reports whether quotas holds anything, so that Record skips
	// counting the live agents when no quota is set.
	any atomic.Bool

	mu      sync.Mutex
	quotas  map[string]float64 // by entity key + "/" + quota key
	sensors map[sensorKey]*rate
}

// sensorKey names what one rate measures: the entity whose quota
// applies, with default parts replaced by the client's own names (a
// default quota is each user's or client's own, not shared).
type sensorKey struct {
	kind           Kind
	user, clientID string
	hasUser        bool
	hasClientID    bool
}

// New returns a manager reading quotas from store; call Refresh (or Run)
// to load them.
func New(store metastore.QuotaStore, opts Options) *Manager {
	if opts.Samples <= 1 {
		opts.Samples = DefaultSamples
	}
	if opts.SampleWindow <= 0 {
		opts.SampleWindow = DefaultSampleWindow
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.Agents == nil {
		opts.Agents = func(Kind) int { return 1 }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		store: store, opts: opts, log: opts.Logger,
		quotas: map[string]float64{}, sensors: map[sensorKey]*rate{},
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_quota_throttled_total",
			Help: "Responses sent with a throttle time because the client was over a quota, by kind (produce, fetch, request).",
		}, []string{"kind"}),
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_quota_throttle_seconds_total",
			Help: "Throttle time given to clients over a quota, by kind (produce, fetch, request).",
		}, []string{"kind"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.throttled, m.throttle)
	}
	return m
}

// Refresh re-reads the quotas from the store. Rates of clients whose
// quota entity changed start over.
func (m *Manager) Refresh(ctx context.Context) error {
	qs, err := m.store.ClientQuotas(ctx)
	if err != nil {
		return err
	}
	quotas := map[string]float64{}
	for _, q := range qs {
		for k, v := range q.Values {
			quotas[q.Entity.Key()+"/"+k] = v
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !sameQuotas(m.quotas, quotas) {
		m.quotas = quotas
		clear(m.sensors)
	}
	m.any.Store(len(quotas) > 0)
	return nil
}

func sameQuotas(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Run refreshes the quotas every Options.Refresh until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Refresh)
	defer t.Stop()
	for {
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("reading client quotas failed; keeping the last ones", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// User is the quota user of a principal: its name ("User:alice" →
// "alice"). Unauthenticated clients are the user ANONYMOUS, as in Kafka.
func User(principal string) string {
	if _, name, ok := strings.Cut(principal, ":"); ok {
		return name
	}
	return principal
}

// resolve finds the quota of kind for user and clientID with Kafka's
// precedence, most specific first. m.mu must be held.
func (m *Manager) resolve(kind Kind, user, clientID string) (sensorKey, float64, bool) {
	if len(m.quotas) == 0 {
		return sensorKey{}, 0, false
	}
	u := metastore.QuotaEntityPart{Type: metastore.QuotaEntityUser, Name: &user}
	c := metastore.QuotaEntityPart{Type: metastore.QuotaEntityClientID, Name: &clientID}
	du := metastore.QuotaEntityPart{Type: metastore.QuotaEntityUser}
	dc := metastore.QuotaEntityPart{Type: metastore.QuotaEntityClientID}
	for _, e := range [...]metastore.QuotaEntity{
		{u, c}, {u, dc}, {u},
		{du, c}, {du, dc}, {du},
		{c}, {dc},
	} {
		if v, ok := m.quotas[e.Key()+"/"+kind.key()]; ok {
			k := sensorKey{kind: kind}
			if _, k.hasUser = e.Part(metastore.QuotaEntityUser); k.hasUser {
				k.user = user
			}
			if _, k.hasClientID = e.Part(metastore.QuotaEntityClientID); k.hasClientID {
				k.clientID = clientID
			}
			return k, v, true
		}
	}
	return sensorKey{}, 0, false
}

// Limit returns the bytes per second this agent allows user and clientID
// for kind: their cluster-wide quota divided among the live agents that
// serve it; ok is false without a quota.
func (m *Manager) Limit(kind Kind, user, clientID string) (perSecond float64, ok bool) {
	m.mu.Lock()
	_, q, ok := m.resolve(kind, user, clientID)
	m.mu.Unlock()
	if !ok {
		return 0, false
	}
	return q / m.agents(kind), true
}

func (m *Manager) agents(kind Kind) float64 {
	if !kind.shared() {
		return 1
	}
	return float64(max(m.opts.Agents(kind), 1))
}

// MaxFetchBytes bounds one fetch of a client with a consumer quota to what
// the quota allows over the whole window, so that a large response cannot
// throttle the client for longer than the window forever (KAFKA-9677);
// ok is false without a quota.
func (m *Manager) MaxFetchBytes(user, clientID string) (int32, bool) {
	limit, ok := m.Limit(Fetch, user, clientID)
	if !ok {
		return 0, false
	}
	window := float64(m.opts.Samples) * m.opts.SampleWindow.Seconds()
	return int32(min(max(limit*window, 1), 1<<31-1)), true
}

// Record adds amount of kind (bytes, or RequestPercent) to the client's
// rate and returns how long it must be throttled (0 when within its quota
// or without one).
func (m *Manager) Record(kind Kind, user, clientID string, amount float64) time.Duration {
	if !m.any.Load() {
		return 0 // no quota at all: the usual case, on every request
	}
	agents := m.agents(kind)
	now := m.opts.Now()
	m.mu.Lock()
	key, q, ok := m.resolve(kind, user, clientID)
	if !ok {
		m.mu.Unlock()
		return 0
	}
	r := m.sensors[key]
	if r == nil {
		r = &rate{}
		m.sensors[key] = r
	}
	r.record(now, amount, m.opts.Samples, m.opts.SampleWindow)
	d := r.throttle(now, q/agents, m.opts.Samples, m.opts.SampleWindow)
	m.mu.Unlock()
	if d > 0 {
		m.throttled.WithLabelValues(kind.String()).Inc()
		m.throttle.WithLabelValues(kind.String()).Add(d.Seconds())
	}
	return d
}
