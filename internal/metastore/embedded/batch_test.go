package embedded_test

import (
	"context"
	"errors"
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
