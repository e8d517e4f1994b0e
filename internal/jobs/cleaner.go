package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// DataPrefixes are the key prefixes under which Floe writes data
// objects: only objects under them are ever deleted as orphans. A job
// that writes objects elsewhere adds its prefix (both compactions write
// under segments/).
var DataPrefixes = []string{"segments/"}

// Defaults of the cleaner's grace periods.
const (
	// DefaultDeleteDelay is Kafka's default of file.delete.delay.ms
	// (and of the broker's log.segment.delete.delay.ms).
	DefaultDeleteDelay = time.Minute
	// DefaultOrphanGrace is how old an object no metadata refers to must
	// be before it is deleted as an orphan.
	DefaultOrphanGrace = time.Hour
)

// DeleteDelay translates file.delete.delay.ms to Floe's objects: an
// object may hold batches of any topic, and which ones it held is gone
// once it is unreferenced, so the delay is the largest effective
// file.delete.delay.ms among the topics (def for those that do not set
// it). A topic that sets a shorter delay therefore waits for the others;
// no topic's readers ever get less than they asked for.
func DeleteDelay(topics []metastore.Topic, def time.Duration) time.Duration {
	d := def
	if len(topics) == 0 {
		return d
	}
	d = 0
	for _, t := range topics {
		if _, set := t.Configs["file.delete.delay.ms"]; !set {
			d = max(d, def)
			continue
		}
		d = max(d, time.Duration(config.TopicInt(t.Configs, "file.delete.delay.ms"))*time.Millisecond)
	}
	return d
}

// PlanOrphans picks, from listed objects, the orphans that may be
// deleted: under a data prefix, unknown to the metadata store, and older
// than grace at now. pending counts the orphans still too young.
func PlanOrphans(listed []objstore.ObjectInfo, known map[string]bool, prefixes []string, now time.Time, grace time.Duration) (deletable []objstore.ObjectInfo, pending int) {
	for _, o := range listed {
		if known[o.Key] || !hasPrefix(o.Key, prefixes) {
			continue
		}
		if now.Sub(o.Modified) <= grace {
			pending++
			continue
		}
		deletable = append(deletable, o)
	}
	return deletable, pending
}

func hasPrefix(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// CleanerStore is what the cleaner reads and changes.
type CleanerStore interface {
	Topics(ctx context.Context) ([]metastore.Topic, error)
	metastore.ObjectLedger
}

// Cleaner is the garbage collector of the bucket. Each pass it deletes
// the objects that have been unreferenced for longer than the delete
// delay (DeleteDelay), then forgets them; and, every OrphanScanInterval,
// lists the bucket and deletes orphans: objects under DataPrefixes that
// the metadata store does not know and that are older than OrphanGrace
// (a PUT whose commit never happened). It never deletes an object the
// store refers to: a referenced object is known, and an unreferenced one
// is listed only once no extent names it.
type Cleaner struct {
	Store  CleanerStore
	Bucket objstore.Bucket
	// DefaultDeleteDelay is file.delete.delay.ms for topics that do not
	// set it (default DefaultDeleteDelay).
	DefaultDeleteDelay time.Duration
	// OrphanGrace is how old an unknown object must be (default
	// DefaultOrphanGrace). It must exceed the longest time between an
	// object's PUT and its commit (or compaction's replacement).
	OrphanGrace time.Duration
	// OrphanScanInterval is the time between bucket listings (default
	// OrphanGrace / 4, at most 15 minutes).
	OrphanScanInterval time.Duration
	// Prefixes are where orphans are looked for (default DataPrefixes).
	Prefixes []string
	Logger   *slog.Logger

	mu       sync.Mutex
	lastScan time.Time
}

var _ Job = (*Cleaner)(nil)

// Name implements Job.
func (*Cleaner) Name() string { return "cleaner" }

// deleteBatch bounds the objects deleted per ListDeletable call.
const deleteBatch = 500

// Run implements Job.
func (c *Cleaner) Run(ctx context.Context, env *Env) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topics, err := c.Store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("cleaner: %w", err)
	}
	def := c.DefaultDeleteDelay
	if def <= 0 {
		def = DefaultDeleteDelay
	}
	delay := DeleteDelay(topics, def)
	var lag time.Duration
	for {
		before := env.Now().Add(-delay)
		objs, err := c.Store.ListDeletable(ctx, before, deleteBatch)
		if err != nil {
			return fmt.Errorf("cleaner: %w", err)
		}
		if len(objs) > 0 {
			lag = max(lag, before.Sub(objs[0].Since))
		}
		for _, o := range objs {
			// Delete first, forget after: a crash in between leaves a
			// ledger entry for a missing object, which the next pass
			// deletes (a no-op) and forgets.
			if err := c.Bucket.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("cleaner: delete %s: %w", o.Key, err)
			}
			if err := c.Store.ForgetObject(ctx, o.Key); err != nil {
				return fmt.Errorf("cleaner: %w", err)
			}
			env.Stats.In(1, o.Size)
			log.Debug("unreferenced object deleted", "object", o.Key, "bytes", o.Size, "unreferenced_since", o.Since)
		}
		if len(objs) < deleteBatch {
			break
		}
	}
	env.Stats.Lag(lag)
	return c.scanOrphans(ctx, env, log)
}

func (c *Cleaner) orphanGrace() time.Duration {
	if c.OrphanGrace > 0 {
		return c.OrphanGrace
	}
	return DefaultOrphanGrace
}

// scanOrphans lists the bucket, at most every OrphanScanInterval, and
// deletes the orphans PlanOrphans picks, a page of keys at a time.
func (c *Cleaner) scanOrphans(ctx context.Context, env *Env, log *slog.Logger) error {
	grace := c.orphanGrace()
	every := c.OrphanScanInterval
	if every <= 0 {
		every = min(grace/4, 15*time.Minute)
	}
	c.mu.Lock()
	if !c.lastScan.IsZero() && time.Since(c.lastScan) < every {
		c.mu.Unlock()
		return nil
	}
	c.lastScan = time.Now()
	c.mu.Unlock()
	prefixes := c.Prefixes
	if len(prefixes) == 0 {
		prefixes = DataPrefixes
	}
	const page = 1000
	var listed []objstore.ObjectInfo
	flush := func() error {
		if len(listed) == 0 {
			return nil
		}
		keys := make([]string, len(listed))
		for i, o := range listed {
			keys[i] = o.Key
		}
		// The bucket is listed before the store is asked, so an object
		// committed in between is known here; one committed later than
		// OrphanGrace after its PUT is the documented limit.
		known, err := c.Store.KnownObjects(ctx, keys)
		if err != nil {
			return err
		}
		// The store's clock, not the agent's: an agent whose clock runs
		// ahead by more than the grace would otherwise take an object
		// whose commit is still on its way for an orphan.
		orphans, _ := PlanOrphans(listed, known, prefixes, env.Now(), grace)
		for _, o := range orphans {
			if err := c.Bucket.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("delete orphan %s: %w", o.Key, err)
			}
			env.Stats.In(1, o.Size)
			log.Info("orphaned object deleted", "object", o.Key, "bytes", o.Size, "modified", o.Modified)
		}
		listed = listed[:0]
		return nil
	}
	for _, prefix := range prefixes {
		err := c.Bucket.List(ctx, prefix, func(o objstore.ObjectInfo) error {
			listed = append(listed, o)
			if len(listed) == page {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return fmt.Errorf("cleaner: orphan scan: %w", err)
		}
	}
	return nil
}
