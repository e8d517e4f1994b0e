package features_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/features"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Agents starting together on a new store: one finalizes its defaults,
// the others take them, whatever their own.
func TestInitNewCluster(t *testing.T) {
	s := openStore(t)
	levels := make([]*features.Levels, 6)
	var wg sync.WaitGroup
	for i := range levels {
		levels[i] = features.New(s, map[string]int16{"transaction.version": int16(1 + i%2), "group.version": 1}, features.Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := levels[i].Init(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	stored, err := s.FinalizedFeatures(t.Context())
	if err != nil || stored.Epoch != 1 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	for i, l := range levels {
		if f := l.Finalized(); f.Epoch != 1 || !maps.Equal(f.Levels, stored.Levels) {
			t.Errorf("agent %d finalizes %+v, the store %+v", i, f, stored)
		}
	}
}

// An update on one agent is seen at once there and by the other after
// its refresh; decide sees the levels as stored, and ErrNoChange writes
// nothing.
func TestUpdateAndRefresh(t *testing.T) {
	s := openStore(t)
	defaults := map[string]int16{"transaction.version": 2, "group.version": 1}
	a := features.New(s, defaults, features.Options{})
	b := features.New(s, defaults, features.Options{Refresh: 20 * time.Millisecond})
	for _, l := range []*features.Levels{a, b} {
		if err := l.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := a.Update(t.Context(), func(cur metastore.FinalizedFeatures) (map[string]int16, error) {
		return nil, features.ErrNoChange
	}); !errors.Is(err, features.ErrNoChange) {
		t.Fatalf("no change: %v", err)
	}
	f, err := a.Update(t.Context(), func(cur metastore.FinalizedFeatures) (map[string]int16, error) {
		if cur.Epoch != 1 || cur.Levels["transaction.version"] != 2 {
			t.Errorf("decide sees %+v", cur)
		}
		next := maps.Clone(cur.Levels)
		next["transaction.version"] = 1
		return next, nil
	})
	if err != nil || f.Epoch != 2 {
		t.Fatalf("update: %+v, %v", f, err)
	}
	if a.Level("transaction.version") != 1 || a.Finalized().Epoch != 2 {
		t.Fatalf("the updating agent finalizes %+v", a.Finalized())
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Level("transaction.version") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the other agent still finalizes %+v", b.Finalized())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// An agent restarted with other defaults takes the stored levels.
	c := features.New(s, map[string]int16{"group.version": 1}, features.Options{})
	if err := c.Init(t.Context()); err != nil || c.Level("transaction.version") != 1 || c.Finalized().Epoch != 2 {
		t.Fatalf("restarted: %+v, %v", c.Finalized(), err)
	}
}

// Concurrent updates through two agents apply one after the other, each
// decided on the levels the previous one left.
func TestConcurrentUpdates(t *testing.T) {
	s := openStore(t)
	a := features.New(s, map[string]int16{"counter": 1}, features.Options{})
	b := features.New(s, map[string]int16{"counter": 1}, features.Options{})
	for _, l := range []*features.Levels{a, b} {
		if err := l.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 4 {
		l := []*features.Levels{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Update(t.Context(), func(cur metastore.FinalizedFeatures) (map[string]int16, error) {
				return map[string]int16{"counter": cur.Levels["counter"] + 1}, nil
			})
			if err != nil && !errors.Is(err, metastore.ErrFeaturesChanged) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := s.FinalizedFeatures(t.Context())
	if err != nil || f.Levels["counter"] != int16(f.Epoch) {
		t.Fatalf("counter %d at epoch %d (%v): an update was decided on stale levels", f.Levels["counter"], f.Epoch, err)
	}
}
