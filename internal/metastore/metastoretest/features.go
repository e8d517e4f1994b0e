package metastoretest

import (
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// testFeatures: the finalized feature levels start unset, every update
// compares the epoch it read (so of concurrent updates from one epoch
// exactly one wins), levels at 0 are removed, and what is read is what
// was written.
func testFeatures(t *testing.T, open func(t *testing.T) metastore.FeatureStore) {
	t.Run("UpdateAndRead", func(t *testing.T) {
		s := open(t)
		read := func(what string, want metastore.FinalizedFeatures) {
			t.Helper()
			got, err := s.FinalizedFeatures(t.Context())
			wantErr(t, what+": FinalizedFeatures", err, nil)
			if got.Epoch != want.Epoch || !maps.Equal(got.Levels, want.Levels) {
				t.Fatalf("%s: read %+v, want %+v", what, got, want)
			}
		}
		read("new store", metastore.FinalizedFeatures{Levels: map[string]int16{}})
		_, err := s.UpdateFeatures(t.Context(), 1, map[string]int16{"group.version": 1})
		wantErr(t, "update from an epoch never reached", err, metastore.ErrFeaturesChanged)

		first, err := s.UpdateFeatures(t.Context(), 0, map[string]int16{"group.version": 1, "transaction.version": 2, "zero.version": 0})
		wantErr(t, "first update", err, nil)
		want := metastore.FinalizedFeatures{Levels: map[string]int16{"group.version": 1, "transaction.version": 2}, Epoch: 1}
		if first.Epoch != 1 || !maps.Equal(first.Levels, want.Levels) {
			t.Fatalf("first update returned %+v, want %+v", first, want)
		}
		read("after the first update", want)

		_, err = s.UpdateFeatures(t.Context(), 0, map[string]int16{"group.version": 0})
		wantErr(t, "stale update", err, metastore.ErrFeaturesChanged)
		read("after a stale update", want)

		second, err := s.UpdateFeatures(t.Context(), 1, map[string]int16{"group.version": 1, "transaction.version": 0})
		wantErr(t, "downgrade to 0", err, nil)
		want = metastore.FinalizedFeatures{Levels: map[string]int16{"group.version": 1}, Epoch: 2}
		if second.Epoch != 2 || !maps.Equal(second.Levels, want.Levels) {
			t.Fatalf("second update returned %+v, want %+v", second, want)
		}
		read("after removing a feature", want)
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		s := open(t)
		if _, err := s.UpdateFeatures(t.Context(), 0, map[string]int16{"transaction.version": 2}); err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.UpdateFeatures(t.Context(), 1, map[string]int16{"transaction.version": int16(i % 3)})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, metastore.ErrFeaturesChanged):
				t.Errorf("concurrent update: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent updates from one epoch won, want 1", won)
		}
		if f, err := s.FinalizedFeatures(t.Context()); err != nil || f.Epoch != 2 {
			t.Fatalf("after the race: %+v, %v", f, err)
		}
	})
}
