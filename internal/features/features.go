// Package features keeps an agent's view of the cluster's finalized
// feature levels (KIP-584: group.version, transaction.version, …), which
// live in the metadata store (metastore.FeatureStore) and change with
// UpdateFeatures. ApiVersions reads them on every connection, so they are
// cached: refreshed from the store every Options.Refresh, and at once on
// the agent that changed them.
//
// The agents' flags are the levels of a new cluster: the first agent to
// start on a store that never finalized any writes them (epoch 1); later
// agents, and agents restarted with other flags, take the stored levels.
// The package decides nothing about which changes are allowed: the
// UpdateFeatures handler validates them (internal/protocol).
package features

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Options configure Levels.
type Options struct {
	// Refresh is how often the levels are read again from the store
	// (default 5s): how long another agent's update takes to show here.
	Refresh time.Duration
	Logger  *slog.Logger
}

// Levels is the cached finalized feature levels. Safe for concurrent use.
type Levels struct {
	store    metastore.FeatureStore
	defaults map[string]int16
	opts     Options
	cur      atomic.Pointer[metastore.FinalizedFeatures]
}

// New returns levels kept in store, defaults being the levels of a new
// cluster (until Init has read the store, they are what Finalized
// returns, at epoch 0).
func New(store metastore.FeatureStore, defaults map[string]int16, opts Options) *Levels {
	if opts.Refresh <= 0 {
		opts.Refresh = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Levels{store: store, defaults: metastore.PositiveLevels(defaults), opts: opts}
	l.cur.Store(&metastore.FinalizedFeatures{Levels: maps.Clone(l.defaults)})
	return l
}

// Finalized returns the levels; the caller must not change the map.
func (l *Levels) Finalized() metastore.FinalizedFeatures { return *l.cur.Load() }

// Level is one feature's finalized level (0 when not finalized).
func (l *Levels) Level(feature string) int16 { return l.cur.Load().Levels[feature] }

// set publishes f unless the cache already holds a newer epoch.
func (l *Levels) set(f metastore.FinalizedFeatures) {
	for {
		old := l.cur.Load()
		if old.Epoch > f.Epoch {
			return
		}
		next := f.Clone()
		if l.cur.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Init reads the levels from the store, finalizing the defaults first on
// a store that has none.
func (l *Levels) Init(ctx context.Context) error {
	for attempt := 0; attempt < 3; attempt++ {
		f, err := l.store.FinalizedFeatures(ctx)
		if err != nil {
			return err
		}
		if f.Epoch > 0 {
			if !maps.Equal(f.Levels, l.defaults) {
				l.opts.Logger.Info("finalized feature levels come from the metadata store, not this agent's flags",
					"finalized", f.Levels, "flags", l.defaults, "epoch", f.Epoch)
			}
			l.set(f)
			return nil
		}
		f, err = l.store.UpdateFeatures(ctx, 0, l.defaults)
		if errors.Is(err, metastore.ErrFeaturesChanged) {
			continue // another agent finalized them first
		}
		if err != nil {
			return err
		}
		l.opts.Logger.Info("finalized the feature levels of a new cluster", "levels", f.Levels)
		l.set(f)
		return nil
	}
	return fmt.Errorf("finalize feature levels: %w", metastore.ErrFeaturesChanged)
}

// Run refreshes the levels until ctx ends.
func (l *Levels) Run(ctx context.Context) {
	t := time.NewTicker(l.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f, err := l.store.FinalizedFeatures(ctx); err != nil {
			if ctx.Err() == nil {
				l.opts.Logger.Warn("reading the finalized feature levels failed", "err", err)
			}
		} else if f.Epoch > 0 {
			l.set(f)
		}
	}
}

// ErrNoChange is returned by an Update's decide function to apply
// nothing (validation only, or the levels asked for are those finalized).
var ErrNoChange = errors.New("no change")

// Update changes the levels: decide gets the levels as stored now and
// returns the new ones (every feature, those at 0 removed), ErrNoChange,
// or an error that ends the update. When another agent updates the levels
// in between, decide is called again with them (a few times at most).
func (l *Levels) Update(ctx context.Context, decide func(cur metastore.FinalizedFeatures) (map[string]int16, error)) (metastore.FinalizedFeatures, error) {
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := l.store.FinalizedFeatures(ctx)
		if err != nil {
			return metastore.FinalizedFeatures{}, err
		}
		if cur.Epoch > 0 {
			l.set(cur)
		}
		next, err := decide(cur.Clone())
		if err != nil {
			return cur, err
		}
		f, err := l.store.UpdateFeatures(ctx, cur.Epoch, next)
		if errors.Is(err, metastore.ErrFeaturesChanged) {
			continue
		}
		if err != nil {
			return cur, err
		}
		l.opts.Logger.Info("finalized feature levels updated", "levels", f.Levels, "epoch", f.Epoch)
		l.set(f)
		return f, nil
	}
	return metastore.FinalizedFeatures{}, fmt.Errorf("update feature levels: %w", metastore.ErrFeaturesChanged)
}
