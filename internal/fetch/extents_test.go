package fetch

import (
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// A commit announced while the first load of a partition is under way
// (after the load read the store, before it cached what it read) must
// drop that load, as it does for a partition cached before.
func TestCommitDuringFirstLoadIsNotCachedOver(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(c *extentCache, id metastore.TopicID)
	}{
		{"invalidate", func(c *extentCache, id metastore.TopicID) { c.invalidate(id, 0) }},
		{"invalidateAll", func(c *extentCache, _ metastore.TopicID) { c.invalidateAll() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newExtentCache()
			id := metastore.TopicID{1}
			_, _, version, ok := c.get(id, 0, 0)
			if ok {
				t.Fatal("hit in an empty cache")
			}
			tc.invalidate(c, id)
			c.put(id, 0, version, metastore.PartitionOffsets{HighWatermark: 3}, nil)
			if offs, _, _, ok := c.get(id, 0, 3); ok {
				t.Fatalf("stale load cached: %+v", offs)
			}
		})
	}
}
