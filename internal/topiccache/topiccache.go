// Package topiccache keeps an agent's copy of every topic (name, ID,
// partition count, configs), so that Produce, Fetch, Metadata and the
// other handlers look topics up in memory instead of reading the metadata
// store for every request. It never writes to the store.
//
// Freshness. The cache loads every topic once, then follows the store's
// topic notices (metastore.TopicWatcher): each notice re-reads the topics
// it names, on the goroutine that delivers it, before the cache answers
// for them again.
//
//   - A change made through this agent's store is announced before the
//     call that made it returns, so this agent sees its own creations,
//     deletions, new partitions and config changes at once.
//   - A change made through another agent is seen when the notice
//     arrives: PostgreSQL's LISTEN/NOTIFY delivers it when the change
//     commits (milliseconds); a database polled instead of notifying
//     (CockroachDB) within its poll interval (500 ms by default). When
//     the listener loses its connection the store announces every topic
//     and the cache reloads them all.
//   - If a re-read fails, the cache keeps what it has and Run reloads
//     every topic each second until it succeeds; Run also reloads every
//     ResyncInterval (default five minutes) whatever happened, which
//     bounds staleness even if a notice were lost.
//
// Until a notice arrives a lookup may answer from the old state: a topic
// just created elsewhere is unknown (the client retries: Kafka's error
// codes for it are retriable), one just deleted still resolves (the
// commit then refuses its batches), a partition just added is unknown.
// A name the cache does not hold is read from the store once, and
// remembered as absent (up to maxAbsent names) until a notice names it.
// IDs are never read through: an unknown ID is unknown.
package topiccache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

// Store is what the cache reads and watches.
type Store interface {
	metastore.TopicReader
	metastore.TopicWatcher
}

// Options configure a Cache.
type Options struct {
	Logger *slog.Logger
	// ResyncInterval is how often Run reloads every topic whatever the
	// notices said; default 5 minutes, negative never.
	ResyncInterval time.Duration
	// ReadTimeout bounds each re-read a notice causes; default 10 s.
	ReadTimeout time.Duration
	// Registerer registers the cache's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// maxAbsent bounds the names remembered as absent, which clients choose.
const maxAbsent = 4096

// Cache is an agent's copy of the store's topics. It is safe for
// concurrent use. The Topic values it returns share their Configs map
// with the cache: callers must not modify them.
type Cache struct {
	store   Store
	opts    Options
	log     *slog.Logger
	stop    func()
	metrics *metrics

	mu     sync.RWMutex
	loaded bool
	seq    uint64 // moves on every notice and read start
	byName map[string]metastore.Topic
	byID   map[metastore.TopicID]string
	// applied is, per name, the seq at which the read that last set its
	// state started: a read that started earlier must not overwrite it
	// (names changed since the last full load only). base is the seq of
	// the last full load applied, which stands for every other name.
	applied map[string]uint64
	base    uint64
	absent  map[string]uint64 // names read as unknown, at seq
	sorted  []metastore.Topic // every topic by name; nil when out of date
	stale   bool              // a re-read failed: Run reloads everything
}

// New returns a cache of store's topics that follows its notices from now
// on. It reads nothing yet: Load (or the first lookup) does.
func New(store Store, opts Options) *Cache {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = 5 * time.Minute
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	c := &Cache{
		store: store, opts: opts, log: opts.Logger,
		byName: map[string]metastore.Topic{}, byID: map[metastore.TopicID]string{},
		applied: map[string]uint64{}, absent: map[string]uint64{},
		metrics: newMetrics(opts.Registerer),
	}
	// Watch before loading, so that no change falls between the two.
	c.stop = store.WatchTopics(c.notice)
	return c
}

// Close stops following notices.
func (c *Cache) Close() { c.stop() }

// Load reads every topic from the store, if it has not been loaded yet.
func (c *Cache) Load(ctx context.Context) error {
	c.mu.RLock()
	loaded := c.loaded
	c.mu.RUnlock()
	if loaded {
		return nil
	}
	return c.reload(ctx, true)
}

// reload reads every topic and applies what no later read has changed.
// With onlyIfUnloaded it does nothing once another reload succeeded.
// Concurrent reloads are harmless: each applies only what no read that
// started after it applied.
func (c *Cache) reload(ctx context.Context, onlyIfUnloaded bool) error {
	c.mu.Lock()
	if onlyIfUnloaded && c.loaded {
		c.mu.Unlock()
		return nil
	}
	c.seq++
	start := c.seq
	c.mu.Unlock()
	c.metrics.reads.WithLabelValues("load").Inc()
	topics, err := c.store.Topics(ctx)
	if err != nil {
		c.metrics.failed.Inc()
		return fmt.Errorf("load topics: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base > start {
		return nil // a reload that started later was applied
	}
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		seen[t.Name] = true
		if c.appliedAt(t.Name) > start {
			continue
		}
		c.set(t.Name, t, true)
	}
	for name := range c.byName {
		if !seen[name] && c.appliedAt(name) <= start {
			c.set(name, metastore.Topic{}, false)
		}
	}
	// The reload is as new as any read that started before it.
	c.base = start
	for name, at := range c.applied {
		if at <= start {
			delete(c.applied, name)
		}
	}
	c.loaded, c.stale = true, false
	c.metrics.topics.Set(float64(len(c.byName)))
	return nil
}

// set makes name's state t (exists) or absent, under mu.
func (c *Cache) set(name string, t metastore.Topic, exists bool) {
	if old, ok := c.byName[name]; ok {
		if exists && old.ID == t.ID && old.Partitions == t.Partitions && sameConfigs(old.Configs, t.Configs) {
			return
		}
		delete(c.byID, old.ID)
		delete(c.byName, name)
		c.sorted = nil
	}
	if exists {
		c.byName[name] = t
		c.byID[t.ID] = name
		delete(c.absent, name)
		c.sorted = nil
	}
}

// appliedAt is the seq of the read that set name's state, under mu.
func (c *Cache) appliedAt(name string) uint64 {
	return max(c.applied[name], c.base)
}

func sameConfigs(a, b map[string]string) bool {
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

// notice re-reads the topics a notice names (every topic for nil Names).
func (c *Cache) notice(n metastore.TopicNotice) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.ReadTimeout)
	defer cancel()
	// Re-read even before the first load: a load already under way may
	// have read the topics before this change, and skips what a later
	// read applied.
	//
	// mu is never held while the store is read (docs/locking.md): a read
	// takes a sequence number under it, reads without it, and applies
	// its answer under it only if no read that started later did.
	if n.Names == nil {
		if err := c.reload(ctx, false); err != nil {
			c.markStale(err)
		}
		return
	}
	for _, name := range n.Names {
		if err := c.refresh(ctx, name); err != nil {
			c.markStale(err)
		}
	}
}

func (c *Cache) markStale(err error) {
	c.log.Warn("topic cache could not re-read a changed topic; reloading every topic until it can", "err", err)
	c.mu.Lock()
	c.stale = true
	c.mu.Unlock()
}

// refresh reads one topic and applies it unless a later read did.
func (c *Cache) refresh(ctx context.Context, name string) error {
	c.mu.Lock()
	c.seq++
	start := c.seq
	delete(c.absent, name)
	c.mu.Unlock()
	c.metrics.reads.WithLabelValues("notice").Inc()
	t, err := c.store.Topic(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		c.metrics.failed.Inc()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.appliedAt(name) > start {
		return nil
	}
	c.applied[name] = start
	c.set(name, t, exists)
	c.metrics.topics.Set(float64(len(c.byName)))
	return nil
}

// Topic returns a topic by name, or metastore.ErrUnknownTopicOrPartition.
func (c *Cache) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	if err := c.Load(ctx); err != nil {
		return metastore.Topic{}, err
	}
	c.mu.RLock()
	t, ok := c.byName[name]
	_, absent := c.absent[name]
	c.mu.RUnlock()
	if ok {
		return t, nil
	}
	if absent {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopicOrPartition)
	}
	// Not known here: maybe created elsewhere, its notice not yet heard.
	c.mu.Lock()
	c.seq++
	start := c.seq
	c.mu.Unlock()
	c.metrics.reads.WithLabelValues("miss").Inc()
	t, err := c.store.Topic(ctx, name)
	if err != nil && !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		c.metrics.failed.Inc()
		return metastore.Topic{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.appliedAt(name) > start {
		// A notice re-read it meanwhile; its answer is newer.
		if cur, ok := c.byName[name]; ok {
			return cur, nil
		}
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopicOrPartition)
	}
	c.applied[name] = start
	if err != nil {
		if len(c.absent) >= maxAbsent {
			clear(c.absent)
		}
		c.absent[name] = start
		return metastore.Topic{}, err
	}
	c.set(name, t, true)
	c.metrics.topics.Set(float64(len(c.byName)))
	return t, nil
}

// TopicByID returns a topic by ID, or metastore.ErrUnknownTopicOrPartition.
func (c *Cache) TopicByID(ctx context.Context, id metastore.TopicID) (metastore.Topic, error) {
	if err := c.Load(ctx); err != nil {
		return metastore.Topic{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if name, ok := c.byID[id]; ok {
		return c.byName[name], nil
	}
	return metastore.Topic{}, fmt.Errorf("topic id %x: %w", id, metastore.ErrUnknownTopicOrPartition)
}

// Topics returns every topic, sorted by name. The slice is shared: callers
// must not modify it.
func (c *Cache) Topics(ctx context.Context) ([]metastore.Topic, error) {
	if err := c.Load(ctx); err != nil {
		return nil, err
	}
	c.mu.RLock()
	sorted := c.sorted
	c.mu.RUnlock()
	if sorted != nil {
		return sorted, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sorted == nil {
		c.sorted = make([]metastore.Topic, 0, len(c.byName))
		for _, t := range c.byName {
			c.sorted = append(c.sorted, t)
		}
		slices.SortFunc(c.sorted, func(a, b metastore.Topic) int { return cmp.Compare(a.Name, b.Name) })
	}
	return c.sorted, nil
}

// Run reloads every topic each ResyncInterval, and each second while a
// re-read has failed, until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.RLock()
		due := c.stale || !c.loaded || (c.opts.ResyncInterval > 0 && time.Since(last) >= c.opts.ResyncInterval)
		c.mu.RUnlock()
		if !due {
			continue
		}
		if err := c.reload(ctx, false); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("topic cache reload failed", "err", err)
			}
			continue
		}
		last = time.Now()
	}
}
