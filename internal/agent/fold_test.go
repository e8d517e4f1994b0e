package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// slowGroups is a metadata store whose commits take commitTime, so that
// an agent's uploaded segments queue behind each commit and are folded
// into groups; some group commits fail: before committing (refused), or
// after (committed, the answer lost).
type slowGroups struct {
	metastore.Store
	inner      metastore.GroupSequencer
	commitTime time.Duration

	mu     sync.Mutex
	groups int            // group commits so far
	faults map[int]string // group commit number (from 1) → "refuse" or "lose"
	sizes  map[int]int    // segments per store call → calls
	hit    []string
}

var errInjected = errors.New("injected store fault")

func (s *slowGroups) commit(cs []metastore.SegmentCommit) (fault string) {
	time.Sleep(s.commitTime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes[len(cs)]++
	if len(cs) > 1 {
		s.groups++
		fault = s.faults[s.groups]
		if fault != "" {
			s.hit = append(s.hit, fault)
		}
	}
	return fault
}

func (s *slowGroups) CommitSegment(ctx context.Context, c metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	s.commit([]metastore.SegmentCommit{c})
	return s.Store.CommitSegment(ctx, c)
}

func (s *slowGroups) CommitSegments(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	fault := s.commit(cs)
	if fault == "refuse" {
		return nil, errInjected
	}
	rs, err := s.inner.CommitSegments(ctx, cs)
	if err == nil && fault == "lose" {
		return nil, fmt.Errorf("%w: the answer was lost", errInjected)
	}
	return rs, err
}

func (s *slowGroups) stats() (sizes map[int]int, hit []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sizes = make(map[int]int, len(s.sizes))
	for k, v := range s.sizes {
		sizes[k] = v
	}
	return sizes, append([]string(nil), s.hit...)
}

// TestFoldedCommitsKeepIdempotentOrder runs idempotent franz-go producers
// against an agent whose store commits slowly, so that the writer folds
// the segments queued behind each commit into one transaction, while some
// group commits fail: refused (nothing committed; the producers retry) or
// committed with the answer lost (the retries are duplicates). Every
// acknowledged record must be read back exactly once, at the offset it
// was acknowledged with, each producer's records in each partition in the
// order sent.
// It runs on the embedded store and on PostgreSQL.
func TestFoldedCommitsKeepIdempotentOrder(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { foldedCommits(t, nil) })
	t.Run("postgres", func(t *testing.T) {
		dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_fold_")
		foldedCommits(t, openPostgres(t, dbURL, postgres.Options{}))
	})
}

// foldedCommits runs the test on store (nil: the agent's embedded one).
func foldedCommits(t *testing.T, store metastore.Store) {
	var sg *slowGroups
	a := agenttest.Start(t, agenttest.Options{
		Linger: 5 * time.Millisecond,
		WrapStore: func(s metastore.Store) metastore.Store {
			if store != nil {
				s = store
			}
			sg = &slowGroups{Store: s, inner: s.(metastore.GroupSequencer), commitTime: 20 * time.Millisecond,
				faults: map[int]string{3: "refuse", 8: "lose", 15: "refuse", 21: "lose"}, sizes: map[int]int{}}
			return sg
		},
		Config: func(cfg *agent.Config) {
			cfg.FlushMinInterval = time.Millisecond
			cfg.FlushTimeout = 10 * time.Second
		},
	})
	const (
		topic      = "folded"
		partitions = 4
		producers  = 3
		perProd    = 1500
	)
	createTopic(t, testutil.Dial(t, a.Addr()), topic, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	acked, failed := produceSequences(t, ctx, a.Addr(), topic, partitions, producers, perProd, 5, 4*time.Millisecond)
	sizes, hit := sg.stats()
	t.Logf("%d records acknowledged, %d failed; store calls by segments committed: %v; faults hit: %v", len(acked), failed, sizes, hit)
	grouped := 0
	for n, calls := range sizes {
		if n > 1 {
			grouped += calls
		}
	}
	if grouped < 10 {
		t.Fatalf("%d group commits: the writer hardly folded (store calls by size %v)", grouped, sizes)
	}
	if len(hit) < 2 || !strings.Contains(strings.Join(hit, " "), "refuse") || !strings.Contains(strings.Join(hit, " "), "lose") {
		t.Fatalf("faults hit %v: want a refused group and a lost answer", hit)
	}

	readBackExactlyOnce(t, ctx, a.Addr(), topic, acked)
}
