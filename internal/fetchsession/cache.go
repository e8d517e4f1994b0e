// Package fetchsession keeps an agent's incremental fetch sessions
// (KIP-227): which partitions each session fetches, with what parameters,
// and what its last response said of each, so that a client may send only
// the partitions that changed and be answered only about the partitions
// that changed.
//
// It decides and remembers; it never reads partitions, never does I/O and
// knows nothing of the wire format. The fetch handler asks Begin what a
// request means, reads the partitions it is told to, and hands the results
// to Finish, which says which of them the response must carry.
//
// The rules are Kafka's (FetchManager, FetchSessionCache):
//
//   - Epoch -1 is a full fetch without a session; a session id given with
//     it is closed. Epoch 0 is a full fetch that closes the session given
//     (if any) and asks for a new one, created when the response is made
//     if the cache has room. Any other epoch is an incremental fetch of the
//     session named: it must exist (else ErrSessionNotFound) and expect
//     that epoch (else ErrInvalidEpoch). A new session expects epoch 1;
//     each incremental fetch moves it on by one, from MaxInt32 back to 1.
//   - An incremental fetch adds the request's partitions to the session
//     or updates their parameters, then removes the forgotten ones. A
//     session left empty is closed and the fetch answered without one.
//   - A partition is left out of an incremental response when it has no
//     records, no error, and the same high watermark, last stable offset
//     and log start offset as the last response that carried it. A
//     partition with an error is remembered with high watermark -1, so it
//     is sent again once the error is gone. Partitions that returned
//     records move to the end of the session's order, so the next fetch
//     reads the others first and a budget-limited response is fair.
//   - The cache holds at most Slots sessions. A new session takes a free
//     slot, or evicts the least recently used session if it was unused
//     for EvictionAge, or else the smallest session created more than
//     EvictionAge ago if the new one has more partitions. Otherwise it is
//     not created, and the full fetch is answered with session id 0.
//     (Kafka's sessions of followers are privileged; Floe has no
//     followers, so every session is equal.)
//
// Floe's own bounds, which Kafka lacks, so that a client cannot grow the
// cache's memory without limit (each cached partition costs about 140
// bytes):
//
//   - A session belongs to the connection that created it: only that
//     connection can use or close it (another gets ErrSessionNotFound,
//     and a full fetch naming it leaves it alone), and it is dropped when
//     the connection closes. Sessions live on one agent, as on one Kafka
//     broker; a client that moves to another agent or reconnects starts
//     over with a full fetch, as it would after an eviction.
//   - A connection holds at most PerConnection sessions: creating one
//     more evicts its own least recently used one.
//   - A session holds at most MaxSessionPartitions partitions, and all
//     sessions together at most MaxPartitions. A new session that would
//     pass them evicts by the rules above or is not created; an
//     incremental fetch that would pass them (after evicting stale
//     sessions) closes its session and is answered as a full fetch
//     without one.
package fetchsession

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	// DefaultSlots is Kafka's max.incremental.fetch.session.cache.slots.
	DefaultSlots = 1000
	// DefaultEvictionAge is Kafka's min.incremental.fetch.session.eviction.ms.
	DefaultEvictionAge = 2 * time.Minute
	// DefaultMaxPartitions bounds the partitions of all sessions: about
	// 140 MB.
	DefaultMaxPartitions = 1_000_000
	// DefaultMaxSessionPartitions bounds one session's partitions.
	DefaultMaxSessionPartitions = 100_000
	// DefaultPerConnection is room for a client that fetches for a few
	// consumers over one connection; clients hold one session per
	// connection.
	DefaultPerConnection = 4
)

// Errors of Begin and Finish; the fetch is answered with the matching
// Kafka error and no partitions.
var (
	// ErrSessionNotFound is FETCH_SESSION_ID_NOT_FOUND.
	ErrSessionNotFound = errors.New("fetch session not found")
	// ErrInvalidEpoch is INVALID_FETCH_SESSION_EPOCH.
	ErrInvalidEpoch = errors.New("invalid fetch session epoch")
	// ErrTopicIDUsage is FETCH_SESSION_TOPIC_ID_ERROR: an incremental
	// fetch that names topics by ID on a session made of names, or the
	// other way round (KIP-516); the session is left as it was.
	ErrTopicIDUsage = errors.New("fetch session topic id usage changed")
)

// Epochs with a meaning of their own.
const (
	// NewSession (0) asks for a full fetch and a new session.
	NewSession int32 = 0
	// NoSession (-1) asks for a full fetch and no session.
	NoSession int32 = -1
)

// Options configure a Cache; zero values take the defaults.
type Options struct {
	// Slots is the most sessions the cache holds; negative: none (every
	// fetch is answered without a session).
	Slots int
	// EvictionAge is how long a session must have been unused to be
	// evicted by any new one, and how old it must be to be evicted by a
	// larger one.
	EvictionAge time.Duration
	// MaxPartitions bounds the partitions of all sessions together.
	MaxPartitions int
	// MaxSessionPartitions bounds the partitions of one session.
	MaxSessionPartitions int
	// PerConnection bounds the sessions of one connection.
	PerConnection int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand draws session ids (default: a random source).
	Rand *rand.Rand
	// Registerer registers the cache's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Key names a partition.
type Key struct {
	Topic     string
	Partition int32
}

// Params are what a fetch request says of one partition, which an
// incremental fetch need not repeat. The fields only followers send
// (their log start offset, the last fetched epoch) are not kept: Floe has
// no followers.
type Params struct {
	FetchOffset        int64
	MaxBytes           int32
	CurrentLeaderEpoch int32
}

// Partition is a partition to fetch and its parameters.
type Partition struct {
	Key
	Params
}

// Result is what a response says of one partition, as far as the
// session cares.
type Result struct {
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	// Records is set when the response carries record bytes for it.
	Records bool
	// Failed is set when the partition is answered with an error.
	Failed bool
}

// Request is what a fetch request says about sessions.
type Request struct {
	// Conn identifies the connection the request came on.
	Conn       uint64
	SessionID  int32
	Epoch      int32
	Partitions []Partition
	Forgotten  []Key
	// TopicIDs is set when the request names topics by ID (Fetch v13+):
	// a session keeps the kind it was made with.
	TopicIDs bool
}

// Kind is what Begin decided a fetch is.
type Kind int

// Kinds of fetch.
const (
	// Sessionless: read Fetch.Partitions and answer all of them with
	// session id 0.
	Sessionless Kind = iota
	// Full: read Fetch.Partitions and answer all of them; Finish tries to
	// create a session of them.
	Full
	// Incremental: read Fetch.Partitions (the session's, in its order)
	// and answer those Finish includes, with the session's id.
	Incremental
)

func (k Kind) String() string {
	switch k {
	case Sessionless:
		return "sessionless"
	case Full:
		return "full"
	case Incremental:
		return "incremental"
	}
	return "unknown"
}

// Fetch is one fetch's plan: what to read, and how to answer.
type Fetch struct {
	Kind Kind
	// Partitions are the partitions to read, in this order.
	Partitions []Partition
	conn       uint64
	session    *session
	epoch      int32 // the session's epoch Finish must find
	topicIDs   bool  // a session Finish creates names topics by ID
}

// Cache holds an agent's fetch sessions. It is safe for concurrent use.
// A nil *Cache holds none: every full fetch is answered without a
// session, and every incremental one with ErrSessionNotFound.
type Cache struct {
	opts    Options
	metrics *metrics

	// mu guards everything below and every session's fields, except the
	// partitions, order and epoch of a session, which its own mu guards.
	// Order: Cache.mu, then session.mu; never the other way round.
	mu       sync.Mutex
	sessions map[int32]*session
	byConn   map[uint64]map[int32]*session
	total    int // cached partitions of all sessions
	rand     *rand.Rand
}

type session struct {
	id      int32
	conn    uint64
	created time.Time
	// Guarded by Cache.mu.
	lastUsed time.Time
	size     int // len(parts) as last counted under Cache.mu

	topicIDs bool // made by a request naming topics by ID; never changes

	mu    sync.Mutex
	epoch int32
	parts map[Key]*cached
	order []*cached // fetch order
}

// cached is one partition of a session: the request's parameters and
// what the last response that carried it said.
type cached struct {
	Partition
	highWatermark    int64
	lastStableOffset int64
	logStartOffset   int64
	forgotten        bool // removed from parts; order not yet compacted
	moved            bool // returned records: goes to the end of the order
}

// New returns an empty cache.
func New(opts Options) *Cache {
	if opts.Slots == 0 {
		opts.Slots = DefaultSlots
	}
	if opts.EvictionAge <= 0 {
		opts.EvictionAge = DefaultEvictionAge
	}
	if opts.MaxPartitions <= 0 {
		opts.MaxPartitions = DefaultMaxPartitions
	}
	if opts.MaxSessionPartitions <= 0 {
		opts.MaxSessionPartitions = DefaultMaxSessionPartitions
	}
	if opts.PerConnection <= 0 {
		opts.PerConnection = DefaultPerConnection
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := opts.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Cache{
		opts: opts, metrics: newMetrics(opts.Registerer), rand: r,
		sessions: map[int32]*session{}, byConn: map[uint64]map[int32]*session{},
	}
}

// Begin decides what a fetch request is and applies its changes to its
// session. An error means the fetch is answered with that error, session
// id 0 and no partitions.
func (c *Cache) Begin(req Request) (*Fetch, error) {
	if c == nil {
		if req.Epoch == NewSession || req.Epoch == NoSession {
			return &Fetch{Kind: Sessionless, Partitions: req.Partitions}, nil
		}
		return nil, ErrSessionNotFound
	}
	if req.Epoch == NewSession || req.Epoch == NoSession {
		kind := Full
		if req.Epoch == NoSession || c.opts.Slots < 0 {
			kind = Sessionless
		}
		c.metrics.requests.WithLabelValues(kind.String()).Inc()
		if req.SessionID != 0 {
			c.mu.Lock()
			if s := c.sessions[req.SessionID]; s != nil && s.conn == req.Conn {
				c.remove(s)
			}
			c.mu.Unlock()
		}
		return &Fetch{Kind: kind, Partitions: req.Partitions, conn: req.Conn, topicIDs: req.TopicIDs}, nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[req.SessionID]
	if s == nil || s.conn != req.Conn {
		c.metrics.requests.WithLabelValues("not_found").Inc()
		return nil, ErrSessionNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != req.Epoch {
		c.metrics.requests.WithLabelValues("invalid_epoch").Inc()
		return nil, ErrInvalidEpoch
	}
	if s.topicIDs != req.TopicIDs {
		c.metrics.requests.WithLabelValues("topic_id_usage").Inc()
		return nil, ErrTopicIDUsage
	}
	s.update(req.Partitions, req.Forgotten)
	size := len(s.parts)
	switch {
	case size == 0:
		// Nothing left to fetch: Kafka closes the session and answers
		// the request's partitions without one.
		c.remove(s)
		c.metrics.requests.WithLabelValues(Sessionless.String()).Inc()
		return &Fetch{Kind: Sessionless, Partitions: req.Partitions, conn: req.Conn}, nil
	case !c.fits(s, size):
		c.remove(s)
		c.metrics.evictions.WithLabelValues("too_large").Inc()
		c.metrics.requests.WithLabelValues(Sessionless.String()).Inc()
		return &Fetch{Kind: Sessionless, Partitions: s.partitions(), conn: req.Conn}, nil
	}
	c.touch(s, size)
	s.epoch = nextEpoch(s.epoch)
	c.metrics.requests.WithLabelValues(Incremental.String()).Inc()
	return &Fetch{Kind: Incremental, Partitions: s.partitions(), conn: req.Conn, session: s, epoch: s.epoch}, nil
}

// Finish takes the results of reading f.Partitions (results[i] is
// f.Partitions[i]'s) and returns the session id the response carries and
// which partitions it includes (nil: all). ErrInvalidEpoch means another
// fetch of the session began meanwhile: answer that error with the
// session's id and no partitions.
func (c *Cache) Finish(f *Fetch, results []Result) (sessionID int32, include []bool, err error) {
	switch f.Kind {
	case Sessionless:
		return 0, nil, nil
	case Full:
		return c.create(f.conn, f.Partitions, results, f.topicIDs), nil, nil
	}
	s := f.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != f.epoch {
		return s.id, nil, ErrInvalidEpoch
	}
	include = make([]bool, len(results))
	moved := 0
	for i, r := range results {
		cp := s.parts[f.Partitions[i].Key]
		if cp == nil {
			include[i] = true
			continue
		}
		include[i] = cp.respond(r)
		if r.Records {
			cp.moved = true
			moved++
		}
	}
	if moved > 0 {
		s.rotate()
	}
	return s.id, include, nil
}

// CloseConn drops the sessions of a closed connection.
func (c *Cache) CloseConn(conn uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.byConn[conn] {
		c.remove(s)
	}
}

// Slots is the most sessions the cache holds (Kafka's
// max.incremental.fetch.session.cache.slots; 0: none).
func (c *Cache) Slots() int {
	if c == nil {
		return 0
	}
	return max(c.opts.Slots, 0)
}

// Stats are the cache's sizes.
type Stats struct {
	Sessions   int
	Partitions int
}

// Stats returns the cache's sizes.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Sessions: len(c.sessions), Partitions: c.total}
}

// Session describes one session.
type Session struct {
	ID         int32
	Conn       uint64
	Epoch      int32 // the epoch its next fetch must carry
	Partitions int
	Created    time.Time
	LastUsed   time.Time
}

// Sessions lists the sessions, least recently used first.
func (c *Cache) Sessions() []Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *session) int {
		if older(a, b) {
			return -1
		}
		return 1
	})
	out := make([]Session, len(all))
	for i, s := range all {
		s.mu.Lock()
		out[i] = Session{ID: s.id, Conn: s.conn, Epoch: s.epoch, Partitions: s.size, Created: s.created, LastUsed: s.lastUsed}
		s.mu.Unlock()
	}
	return out
}

// create makes a session of a full fetch's partitions if the cache has
// room, and returns its id, or 0.
func (c *Cache) create(conn uint64, parts []Partition, results []Result, topicIDs bool) int32 {
	s := &session{conn: conn, epoch: 1, topicIDs: topicIDs, parts: make(map[Key]*cached, len(parts)), order: make([]*cached, 0, len(parts))}
	for i, p := range parts {
		cp := s.parts[p.Key]
		if cp == nil {
			cp = &cached{Partition: p}
			s.parts[p.Key] = cp
			s.order = append(s.order, cp)
		}
		cp.Params = p.Params
		cp.respond(results[i])
	}
	// An empty session is allowed, as in Kafka: its client may add
	// partitions with its first incremental fetch.
	size := len(s.parts)
	if size > c.opts.MaxSessionPartitions {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	if own := c.byConn[conn]; len(own) >= c.opts.PerConnection {
		var lru *session
		for _, o := range own {
			if lru == nil || older(o, lru) {
				lru = o
			}
		}
		c.remove(lru)
		c.metrics.evictions.WithLabelValues("per_connection").Inc()
	}
	for len(c.sessions) >= c.opts.Slots || c.total+size > c.opts.MaxPartitions {
		if !c.evict(size, nil, now) {
			return 0
		}
	}
	for s.id == 0 || c.sessions[s.id] != nil {
		s.id = c.rand.Int32N(math.MaxInt32) + 1
	}
	s.created = now
	c.sessions[s.id] = s
	if c.byConn[conn] == nil {
		c.byConn[conn] = map[int32]*session{}
	}
	c.byConn[conn][s.id] = s
	c.touch(s, size)
	return s.id
}

// fits reports whether s may grow to size partitions, evicting stale
// sessions to make room among all sessions' partitions.
func (c *Cache) fits(s *session, size int) bool {
	if size > c.opts.MaxSessionPartitions {
		return false
	}
	now := c.opts.Now()
	for c.total-s.size+size > c.opts.MaxPartitions {
		if !c.evict(0, s, now) {
			return false
		}
	}
	return true
}

// evict evicts one session to make room for a session of size partitions
// (Kafka's FetchSessionCache.tryEvict), never except, and reports whether
// it did: the least recently used session if it was unused for
// EvictionAge, else the smallest (then lowest id) session created more
// than EvictionAge ago, if it has fewer than size partitions.
func (c *Cache) evict(size int, except *session, now time.Time) bool {
	var lru, smallest *session
	for _, s := range c.sessions {
		if s == except {
			continue
		}
		if lru == nil || older(s, lru) {
			lru = s
		}
		if now.Sub(s.created) > c.opts.EvictionAge && (smallest == nil || s.size < smallest.size || s.size == smallest.size && s.id < smallest.id) {
			smallest = s
		}
	}
	switch {
	case lru == nil:
		return false
	case now.Sub(lru.lastUsed) > c.opts.EvictionAge:
		c.remove(lru)
		c.metrics.evictions.WithLabelValues("stale").Inc()
		return true
	case smallest != nil && size > smallest.size:
		c.remove(smallest)
		c.metrics.evictions.WithLabelValues("smaller").Inc()
		return true
	}
	return false
}

// older orders sessions by last use, then id, as Kafka's LastUsedKey.
func older(a, b *session) bool {
	return a.lastUsed.Before(b.lastUsed) || a.lastUsed.Equal(b.lastUsed) && a.id < b.id
}

// touch marks s used now with size partitions.
func (c *Cache) touch(s *session, size int) {
	s.lastUsed = c.opts.Now()
	c.total += size - s.size
	s.size = size
	c.metrics.partitions.Set(float64(c.total))
	c.metrics.sessions.Set(float64(len(c.sessions)))
}

// remove drops s from the cache; a fetch already holding it may still
// finish with it.
func (c *Cache) remove(s *session) {
	if c.sessions[s.id] != s {
		return
	}
	delete(c.sessions, s.id)
	if own := c.byConn[s.conn]; own != nil {
		delete(own, s.id)
		if len(own) == 0 {
			delete(c.byConn, s.conn)
		}
	}
	c.total -= s.size
	s.size = 0
	c.metrics.partitions.Set(float64(c.total))
	c.metrics.sessions.Set(float64(len(c.sessions)))
}

// update applies an incremental request's partitions and forgotten
// partitions; s.mu is held.
func (s *session) update(parts []Partition, forgotten []Key) {
	for _, p := range parts {
		if cp := s.parts[p.Key]; cp != nil {
			cp.Params = p.Params
			continue
		}
		cp := &cached{Partition: p, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1}
		s.parts[p.Key] = cp
		s.order = append(s.order, cp)
	}
	if len(forgotten) == 0 {
		return
	}
	removed := false
	for _, k := range forgotten {
		if cp := s.parts[k]; cp != nil {
			delete(s.parts, k)
			cp.forgotten = true
			removed = true
		}
	}
	if removed {
		kept := s.order[:0]
		for _, cp := range s.order {
			if !cp.forgotten {
				kept = append(kept, cp)
			}
		}
		clear(s.order[len(kept):])
		s.order = kept
	}
}

// partitions copies the session's partitions in fetch order; s.mu is
// held.
func (s *session) partitions() []Partition {
	out := make([]Partition, len(s.order))
	for i, cp := range s.order {
		out[i] = cp.Partition
	}
	return out
}

// rotate moves the partitions marked moved (they returned records) to
// the end of the order, keeping the relative order of both groups; s.mu
// is held.
func (s *session) rotate() {
	kept := make([]*cached, 0, len(s.order))
	var moved []*cached
	for _, cp := range s.order {
		if cp.moved {
			cp.moved = false
			moved = append(moved, cp)
			continue
		}
		kept = append(kept, cp)
	}
	s.order = append(kept, moved...)
}

// respond records a response's result for the partition and reports
// whether an incremental response must carry it (Kafka's
// CachedPartition.maybeUpdateResponseData).
func (cp *cached) respond(r Result) bool {
	must := r.Records || r.Failed
	if cp.highWatermark != r.HighWatermark {
		must = true
		cp.highWatermark = r.HighWatermark
	}
	if cp.lastStableOffset != r.LastStableOffset {
		must = true
		cp.lastStableOffset = r.LastStableOffset
	}
	if cp.logStartOffset != r.LogStartOffset {
		must = true
		cp.logStartOffset = r.LogStartOffset
	}
	if r.Failed {
		// Sent again once the error is gone.
		cp.highWatermark = -1
	}
	return must
}

// nextEpoch is the epoch after e (FetchMetadata.nextEpoch).
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}
