package txncoord_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/txncoord"
)

// clock is a settable clock shared by coordinators of one test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// bucket keeps objects in memory; onPut, if set, runs before each Put
// (and may block it or fail it).
type bucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	onPut   func(ctx context.Context, key string) error
}

func newBucket() *bucket { return &bucket{objects: map[string][]byte{}} }

func (b *bucket) Put(ctx context.Context, key string, data []byte) error {
	b.mu.Lock()
	hook := b.onPut
	b.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, key); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = slices.Clone(data)
	return nil
}

func (b *bucket) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var keys []string
	for k := range b.objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (b *bucket) get(key string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.objects[key]
}

func (b *bucket) setOnPut(fn func(ctx context.Context, key string) error) {
	b.mu.Lock()
	b.onPut = fn
	b.mu.Unlock()
}

// hookStore is a store whose transaction writes can be delayed or
// failed.
type hookStore struct {
	txncoord.Store
	mu       sync.Mutex
	onSave   func(ctx context.Context, t metastore.Txn) error
	onEnd    func(ctx context.Context, e metastore.TxnEnd) error
	saves    int
	conflict bool // every write conflicts
}

func (s *hookStore) SaveTxn(ctx context.Context, t metastore.Txn) (int64, error) {
	s.mu.Lock()
	hook, conflict := s.onSave, s.conflict
	s.saves++
	s.mu.Unlock()
	if conflict {
		return 0, metastore.ErrTxnVersionConflict
	}
	if hook != nil {
		if err := hook(ctx, t); err != nil {
			return 0, err
		}
	}
	return s.Store.SaveTxn(ctx, t)
}

func (s *hookStore) EndTxn(ctx context.Context, e metastore.TxnEnd) (metastore.TxnEndResult, error) {
	s.mu.Lock()
	hook, conflict := s.onEnd, s.conflict
	s.mu.Unlock()
	if conflict {
		return metastore.TxnEndResult{}, metastore.ErrTxnVersionConflict
	}
	if hook != nil {
		if err := hook(ctx, e); err != nil {
			return metastore.TxnEndResult{}, err
		}
	}
	return s.Store.EndTxn(ctx, e)
}

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newCoordinator(t *testing.T, s txncoord.Store, b txncoord.Bucket, clk *clock, opts txncoord.Options) *txncoord.Coordinator {
	t.Helper()
	if clk != nil {
		opts.Now = clk.Now
	}
	if opts.AbortInterval == 0 {
		opts.AbortInterval = time.Hour // tests call Scan themselves
	}
	c := txncoord.New(s, b, opts)
	t.Cleanup(c.Close)
	return c
}

func createTopic(t *testing.T, s metastore.TopicStore, name string, partitions int32) metastore.Topic {
	t.Helper()
	top, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: name, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func tp(top metastore.Topic, p int32) metastore.TopicPartition {
	return metastore.TopicPartition{TopicID: top.ID, Partition: p}
}

// produce commits a transactional batch of n records of producer (pid,
// epoch) from sequence seq, and returns its result.
func produce(t *testing.T, s metastore.Sequencer, p metastore.TopicPartition, pid int64, epoch int16, seq int32, n int64) metastore.BatchResult {
	t.Helper()
	res, err := s.CommitSegment(t.Context(), metastore.SegmentCommit{Object: "segments/data-" + time.Now().Format(time.RFC3339Nano), Size: 100, Batches: []metastore.BatchCommit{{
		TopicID: p.TopicID, Partition: p.Partition, ByteOffset: 0, ByteLength: 100, OffsetCount: n, MaxTimestamp: 1,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true,
	}}})
	if err != nil {
		t.Error(err) // may run off the test's goroutine
		return metastore.BatchResult{Err: err}
	}
	return res[0]
}

func offsets(t *testing.T, s metastore.ExtentReader, p metastore.TopicPartition) metastore.PartitionOffsets {
	t.Helper()
	o, err := s.Offsets(t.Context(), p.TopicID, p.Partition)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
