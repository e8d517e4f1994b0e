// Package metastoretest is the contract test suite for metastore.Store:
// every backend runs Run against itself, so that the embedded and the
// PostgreSQL stores behave the same way in every case the brokers rely on.
// The suite is grouped by the store's roles (Sequencer, ExtentReader, …):
// each group takes only the roles it tests and those it sets its cases up
// with, so a group names what a backend of that role must do.
//
// It only uses the public interface. It must never depend on a backend's
// internals, and a backend-specific test (persistence across a restart,
// file locking, connection loss) belongs in that backend's package.
package metastoretest

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/metastore"
)

// Run runs the contract suite. open must return a new, empty store and
// close it when t ends (t.Cleanup); the suite closes some stores itself,
// so that cleanup may find the store already closed.
func Run(t *testing.T, open func(t *testing.T) metastore.Store) {
	records := func(t *testing.T) recordStore { return open(t) }
	t.Run("TopicStore", func(t *testing.T) { testTopics(t, records) })
	t.Run("Sequencer", func(t *testing.T) {
		t.Run("Commit", func(t *testing.T) { testCommit(t, records) })
		t.Run("Idempotence", func(t *testing.T) { testIdempotence(t, records) })
		// Segments committed together (metastore.GroupSequencer is
		// optional).
		t.Run("Group", func(t *testing.T) {
			if _, ok := open(t).(metastore.GroupSequencer); !ok {
				t.Skip("the backend does not commit segments in groups")
			}
			testGroupCommit(t, open)
		})
	})
	t.Run("ExtentReader", func(t *testing.T) { testExtents(t, records) })
	t.Run("ProducerStore", func(t *testing.T) {
		testInitProducerID(t, func(t *testing.T) producerStore { return open(t) })
	})
	t.Run("GroupStore", func(t *testing.T) {
		testGroups(t, func(t *testing.T) groupStore { return open(t) })
	})
	t.Run("AgentRegistry", func(t *testing.T) {
		testAgents(t, func(t *testing.T) metastore.AgentRegistry { return open(t) })
	})
	t.Run("CommitWatcher", func(t *testing.T) {
		testWatch(t, func(t *testing.T) commitWatcher { return open(t) })
	})
	t.Run("TopicWatcher", func(t *testing.T) {
		testTopicWatch(t, func(t *testing.T) topicWatcher { return open(t) })
	})
	t.Run("LeaseStore", func(t *testing.T) {
		testLeases(t, func(t *testing.T) metastore.LeaseStore { return open(t) })
	})
	jobs := func(t *testing.T) jobStore { return open(t) }
	t.Run("RetentionStore", func(t *testing.T) { testRetention(t, jobs) })
	t.Run("ExtentReplacer", func(t *testing.T) { testReplace(t, jobs) })
	t.Run("ObjectLedger", func(t *testing.T) { testLedger(t, jobs) })
	t.Run("ACLStore", func(t *testing.T) { testACLs(t, func(t *testing.T) metastore.ACLStore { return open(t) }) })
	// What agents need to trust each other's cache requests: peer
	// addresses, the cluster secret, object sizes.
	t.Run("Peers", func(t *testing.T) { testPeers(t, open) })
	t.Run("QuotaStore", func(t *testing.T) {
		testQuotas(t, func(t *testing.T) metastore.QuotaStore { return open(t) })
	})
	// SASL users and the Kafka listeners agents advertise.
	t.Run("UserStore", func(t *testing.T) { testUsers(t, open) })
	// Transactions, checked through commits, reads, group offsets and
	// retention.
	t.Run("TxnStore", func(t *testing.T) {
		testTxns(t, func(t *testing.T) txnStore { return open(t) })
	})
	t.Run("ShareStore", func(t *testing.T) {
		testShares(t, func(t *testing.T) shareStore { return open(t) })
	})
	// The finalized feature levels (KIP-584), for backends that keep
	// them (metastore.FeatureStore is optional).
	t.Run("FeatureStore", func(t *testing.T) {
		if _, ok := open(t).(metastore.FeatureStore); !ok {
			t.Skip("the backend does not keep finalized feature levels")
		}
		testFeatures(t, func(t *testing.T) metastore.FeatureStore { return open(t).(metastore.FeatureStore) })
	})
	t.Run("GroupConfigStore", func(t *testing.T) {
		testGroupConfigs(t, func(t *testing.T) metastore.GroupConfigStore { return open(t) })
	})
	// The roles together: concurrent use of all of them (commits, and
	// transactions ending while their batches are committed), a model of
	// commits, retention and compaction, cancellation and Close.
	t.Run("Store", func(t *testing.T) {
		t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
		t.Run("TxnConcurrency", func(t *testing.T) { testTxnConcurrency(t, open(t)) })
		t.Run("Model", func(t *testing.T) { testModel(t, open) })
		t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, open) })
	})
}

// What the groups take from the store under test, besides single roles.
type (
	// recordStore is topics, commits and reads: the TopicStore,
	// Sequencer and ExtentReader groups check each through the others.
	recordStore interface {
		metastore.TopicStore
		metastore.Sequencer
		metastore.ExtentReader
	}
	// producerStore checks new epochs against commits' sequences.
	producerStore interface {
		metastore.ProducerStore
		recordStore
	}
	// groupStore commits offsets of topics it creates and deletes.
	groupStore interface {
		metastore.GroupStore
		metastore.TopicStore
	}
	// commitWatcher watches commits.
	commitWatcher interface {
		metastore.CommitWatcher
		recordStore
	}
	// jobStore trims, replaces and forgets what commits wrote, and
	// announces it to watchers.
	jobStore interface {
		metastore.JobStore
		metastore.CommitWatcher
		recordStore
	}
)

// clockSlack bounds how far a store's clock (a database server's, say) may
// be from the test's when timestamps are checked.
const clockSlack = time.Minute

func createTopic(t *testing.T, s metastore.TopicStore, name string, partitions int32) metastore.Topic {
	t.Helper()
	topic, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: name, Partitions: partitions})
	if err != nil {
		t.Fatalf("CreateTopic(%s, %d): %v", name, partitions, err)
	}
	return topic
}

// batch is a non-idempotent batch of count offsets at bytes [at, at+n).
func batch(id metastore.TopicID, partition int32, at, n, count int64) metastore.BatchCommit {
	return metastore.BatchCommit{
		TopicID:      id,
		Partition:    partition,
		ByteOffset:   at,
		ByteLength:   n,
		OffsetCount:  count,
		MaxTimestamp: 1_700_000_000_000,
		ProducerID:   -1,
	}
}

// segment wraps batches into a commit for a fresh object sized to hold
// them.
func segment(batches ...metastore.BatchCommit) metastore.SegmentCommit {
	c := metastore.SegmentCommit{Object: "segments/" + uuid.NewString(), Batches: batches}
	for _, b := range batches {
		c.Size = max(c.Size, b.ByteOffset+b.ByteLength)
	}
	return c
}

// commit commits c and fails the test on an error or a malformed result.
func commit(t *testing.T, s metastore.Sequencer, c metastore.SegmentCommit) []metastore.BatchResult {
	t.Helper()
	results, err := s.CommitSegment(t.Context(), c)
	if err != nil {
		t.Fatalf("CommitSegment(%s): %v", c.Object, err)
	}
	if len(results) != len(c.Batches) {
		t.Fatalf("CommitSegment(%s): %d results for %d batches", c.Object, len(results), len(c.Batches))
	}
	return results
}

// commitOK commits c and fails the test unless every batch was accepted.
func commitOK(t *testing.T, s metastore.Sequencer, c metastore.SegmentCommit) []metastore.BatchResult {
	t.Helper()
	results := commit(t, s, c)
	for i, r := range results {
		if r.Err != nil || r.Duplicate {
			t.Fatalf("CommitSegment(%s) batch %d: %+v, want accepted", c.Object, i, r)
		}
	}
	return results
}

func offsets(t *testing.T, s metastore.ExtentReader, id metastore.TopicID, partition int32) metastore.PartitionOffsets {
	t.Helper()
	o, err := s.Offsets(t.Context(), id, partition)
	if err != nil {
		t.Fatalf("Offsets(%d): %v", partition, err)
	}
	return o
}

func extents(t *testing.T, s metastore.ExtentReader, id metastore.TopicID, partition int32, from int64, limit int) []metastore.Extent {
	t.Helper()
	es, err := s.Extents(t.Context(), id, partition, from, limit)
	if err != nil {
		t.Fatalf("Extents(%d, from %d, limit %d): %v", partition, from, limit, err)
	}
	return es
}

// wantErr fails the test unless err matches want (nil: no error).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// sameTopic compares topics the way a client sees them: nil and empty
// configs are the same, times are compared as instants.
func sameTopic(t *testing.T, what string, got, want metastore.Topic) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Partitions != want.Partitions ||
		!maps.Equal(got.Configs, want.Configs) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func recent(t *testing.T, what string, ts time.Time) {
	t.Helper()
	if d := time.Since(ts); d < -clockSlack || d > clockSlack {
		t.Errorf("%s = %v, not within %v of now", what, ts, clockSlack)
	}
}
