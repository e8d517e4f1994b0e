package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// TestBatch checks that calls under a Batch's context commit together,
// are unseen by other contexts until then, and that a call failing inside
// the transaction loses the whole batch.
func TestBatch(t *testing.T) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outside := t.Context()
	err = s.Batch(func(ctx context.Context) error {
		for _, name := range []string{"a", "b"} {
			if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: 1}); err != nil {
				return err
			}
		}
		// The batch sees its own writes; others do not, yet.
		if _, err := s.Topic(ctx, "a"); err != nil {
			t.Errorf("batch does not see its own topic: %v", err)
		}
		if _, err := s.Topic(outside, "a"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			t.Errorf("topic visible outside the batch before it committed: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := s.Topics(outside); err != nil || len(ts) != 2 {
		t.Fatalf("after the batch: %v, %v", ts, err)
	}
	err = s.Batch(func(ctx context.Context) error {
		if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "c", Partitions: 1}); err != nil {
			t.Errorf("create c: %v", err)
		}
		if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "a", Partitions: 1}); !errors.Is(err, metastore.ErrTopicExists) {
			t.Errorf("create a again: %v", err)
		}
		if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "d", Partitions: 1}); !errors.Is(err, embedded.ErrBatchFailed) {
			t.Errorf("call after a failed one: %v, want ErrBatchFailed", err)
		}
		return nil
	})
	if !errors.Is(err, embedded.ErrBatchFailed) {
		t.Fatalf("failed batch: %v", err)
	}
	if _, err := s.Topic(outside, "c"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Fatalf("a failed batch committed: %v", err)
	}
}

// TestBatchPrepare checks that a prepared batch is unseen by readers
// until committed, that the next batch builds on it (a commit on top
// takes the offsets after it), that batches commit in order, that a
// rollback drops the batch and the ones prepared on it, and that a
// store on file refuses to prepare.
func TestBatchPrepare(t *testing.T) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outside := t.Context()
	topic, err := s.CreateTopic(outside, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	// commit prepares a batch of one commit and returns it with the
	// base offset the commit was given.
	commit := func() (*embedded.Prepared, int64) {
		t.Helper()
		var base int64
		p, err := s.BatchPrepare(func(ctx context.Context) error {
			n++
			rs, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", n), Size: 10,
				Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
			if err == nil {
				base = rs[0].BaseOffset
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return p, base
	}
	hw := func() int64 {
		t.Helper()
		o, err := s.Offsets(outside, topic.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return o.HighWatermark
	}

	p1, b1 := commit()
	p2, b2 := commit()
	if b1 != 0 || b2 != 1 {
		t.Fatalf("offsets %d and %d, want 0 and 1: the second batch did not build on the first", b1, b2)
	}
	if got := hw(); got != 0 {
		t.Fatalf("high watermark %d with both batches prepared, want 0", got)
	}
	if err := p2.Commit(); err == nil {
		t.Fatal("the second batch committed before the first")
	}
	if err := p1.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := hw(); got != 1 {
		t.Fatalf("high watermark %d after the first commit, want 1", got)
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := hw(); got != 2 {
		t.Fatalf("high watermark %d after both, want 2", got)
	}

	p3, _ := commit()
	p4, b4 := commit()
	if b4 != 3 {
		t.Fatalf("offset %d on top of a prepared batch, want 3", b4)
	}
	p3.Rollback()
	if err := p4.Commit(); err == nil {
		t.Fatal("a batch prepared on a rolled-back one committed")
	}
	if _, b5 := commit(); b5 != 2 {
		t.Fatalf("offset %d after the rollback, want 2", b5)
	}

	f, err := embedded.Open(filepath.Join(t.TempDir(), "file.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.BatchPrepare(func(context.Context) error { return nil }); !errors.Is(err, embedded.ErrNotPreparable) {
		t.Fatalf("prepare on file: %v, want ErrNotPreparable", err)
	}
}
