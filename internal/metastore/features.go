package metastore

import (
	"context"
	"errors"
	"maps"
)

// FinalizedFeatures are the cluster's finalized feature levels (KIP-584):
// what ApiVersions tells clients the whole cluster runs at, changed by
// UpdateFeatures. Kafka keeps them in its metadata log; Floe keeps them
// in the metadata store, so that every agent answers the same levels.
type FinalizedFeatures struct {
	// Levels maps a feature to its finalized level; a feature at level 0
	// is absent (Kafka leaves it out of ApiVersions).
	Levels map[string]int16
	// Epoch counts the updates, from 1 for the levels a new cluster
	// starts with; 0 means the levels were never finalized. Clients keep
	// the levels of the highest epoch they saw.
	Epoch int64
}

// Clone returns a copy that shares nothing with f.
func (f FinalizedFeatures) Clone() FinalizedFeatures {
	return FinalizedFeatures{Levels: maps.Clone(f.Levels), Epoch: f.Epoch}
}

// ErrFeaturesChanged reports an UpdateFeatures whose epoch is no longer
// the stored one: another update came first; read the levels again.
var ErrFeaturesChanged = errors.New("finalized features changed since they were read")

// FeatureStore keeps the finalized feature levels. It is not part of
// Store: a backend without it leaves each agent finalizing the levels of
// its own flags.
type FeatureStore interface {
	// FinalizedFeatures returns the stored levels (Epoch 0 and no levels
	// when never finalized).
	FinalizedFeatures(ctx context.Context) (FinalizedFeatures, error)
	// UpdateFeatures replaces every level with levels (those at 0 or
	// below are removed) if the stored epoch is still epoch, and returns
	// the new state, at epoch+1; ErrFeaturesChanged otherwise.
	UpdateFeatures(ctx context.Context, epoch int64, levels map[string]int16) (FinalizedFeatures, error)
}

// PositiveLevels returns the levels above 0, the ones a FeatureStore keeps.
func PositiveLevels(levels map[string]int16) map[string]int16 {
	out := make(map[string]int16, len(levels))
	for name, l := range levels {
		if l > 0 {
			out[name] = l
		}
	}
	return out
}
