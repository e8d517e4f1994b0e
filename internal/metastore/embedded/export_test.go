package embedded

import (
	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// SetFoldLimits sets how many records and entries the store's extent log
// holds before commits fold it (0: the defaults), so that tests can run
// everything with folds at nearly every commit.
func SetFoldLimits(s *Store, records, extents int) {
	s.setFold(foldLimits{records: records, extents: extents})
}

// FoldAll moves every extent of the log to the extents bucket, as files
// written before the log had them.
func FoldAll(s *Store) error {
	return s.db.Update(func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketTopics)).ForEach(func(k, _ []byte) error {
			var id metastore.TopicID
			copy(id[:], k)
			return foldTopic(tx, id)
		})
	})
}

// setFold sets the store's fold limits, and has its commits trim the
// extent log themselves (no goroutine, trimlater.go), so that a test
// sees each trim in the commit that makes it.
func (s *Store) setFold(l foldLimits) {
	s.stopLaterTrimmer()
	s.later = nil
	s.fold = l
}
