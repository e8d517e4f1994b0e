package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.FeatureStore = (*Store)(nil)

// keyFeatures holds the finalized feature levels in the meta bucket, as
// JSON: {"epoch":N,"levels":{"name":level}}. Files written before it
// simply lack the key: the levels were never finalized.
const keyFeatures = "features"

type storedFeatures struct {
	Epoch  int64            `json:"epoch"`
	Levels map[string]int16 `json:"levels"`
}

func readFeatures(tx kv.Tx) (metastore.FinalizedFeatures, error) {
	v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keyFeatures))
	if v == nil {
		return metastore.FinalizedFeatures{Levels: map[string]int16{}}, nil
	}
	var sf storedFeatures
	if err := json.Unmarshal(v, &sf); err != nil {
		return metastore.FinalizedFeatures{}, fmt.Errorf("features: %w: %v", errCorrupt, err)
	}
	if sf.Levels == nil {
		sf.Levels = map[string]int16{}
	}
	return metastore.FinalizedFeatures{Levels: sf.Levels, Epoch: sf.Epoch}, nil
}

// FinalizedFeatures implements metastore.FeatureStore.
func (s *Store) FinalizedFeatures(ctx context.Context) (metastore.FinalizedFeatures, error) {
	var f metastore.FinalizedFeatures
	err := s.view(ctx, func(tx kv.Tx) error {
		var err error
		f, err = readFeatures(tx)
		return err
	})
	if err != nil {
		return metastore.FinalizedFeatures{}, fmt.Errorf("finalized features: %w", err)
	}
	return f, nil
}

// UpdateFeatures implements metastore.FeatureStore.
func (s *Store) UpdateFeatures(ctx context.Context, epoch int64, levels map[string]int16) (metastore.FinalizedFeatures, error) {
	next := metastore.FinalizedFeatures{Levels: metastore.PositiveLevels(levels), Epoch: epoch + 1}
	err := s.update(ctx, func(tx kv.Tx) error {
		cur, err := readFeatures(tx)
		if err != nil {
			return err
		}
		if cur.Epoch != epoch {
			return fmt.Errorf("%w: epoch %d, not %d", metastore.ErrFeaturesChanged, cur.Epoch, epoch)
		}
		v, err := json.Marshal(storedFeatures{Epoch: next.Epoch, Levels: next.Levels})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyFeatures), v)
	})
	if err != nil {
		return metastore.FinalizedFeatures{}, fmt.Errorf("update features: %w", err)
	}
	return next, nil
}
