package control_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/metastore"
)

// TestBatchSeenOnlyOnceJournaled holds a batch's journal append while
// the applier has applied it (a batch is applied while it is appended):
// no reader sees it until the append returns; once it succeeds the
// commit is answered and seen, and when it fails the commit is answered
// unavailable and never seen, also once the server has rebuilt the
// vcluster from its journal.
func TestBatchSeenOnlyOnceJournaled(t *testing.T) {
	const name = "journaled"
	var armed atomic.Bool
	release := make(chan error)
	awaiting := make(chan struct{}, 1)
	ended := make(chan struct{}) // the test failed: appends go on
	control.HookAppends(t, func(vcluster string) error {
		if vcluster != name || !armed.Load() {
			return nil
		}
		select {
		case err := <-release:
			return err
		case <-ended:
			return errors.New("test ended")
		}
	}, func(vcluster string) {
		if vcluster != name || !armed.Load() {
			return
		}
		select {
		case awaiting <- struct{}{}:
		default:
		}
	})
	cp := newControl(t)
	t.Cleanup(func() { close(ended) }) // before the server closes
	ctx := t.Context()
	key, err := cp.server.CreateVCluster(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	c := cp.client(t, name, key)
	reader := cp.client(t, name, key)
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	highWatermark := func(s metastore.Store) int64 {
		t.Helper()
		o, err := s.Offsets(ctx, topic.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return o.HighWatermark
	}
	commit := func(n int) <-chan error {
		done := make(chan error, 1)
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := c.CommitSegment(cctx, metastore.SegmentCommit{Object: fmt.Sprintf("segments/%d", n), Size: 10, Batches: []metastore.BatchCommit{
				{TopicID: topic.ID, Partition: 0, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
			}})
			done <- err
		}()
		return done
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-awaiting:
		case <-time.After(10 * time.Second):
			t.Fatalf("the applier never waited for the append of %s", what)
		}
	}

	armed.Store(true)
	done := commit(0)
	wait("the first commit")
	if hw := highWatermark(reader); hw != 0 {
		t.Fatalf("high watermark %d while the commit's append is held, want 0", hw)
	}
	release <- nil
	if err := <-done; err != nil {
		t.Fatalf("commit whose append succeeded: %v", err)
	}
	if hw := highWatermark(reader); hw != 1 {
		t.Fatalf("high watermark %d after the commit, want 1", hw)
	}

	done = commit(1)
	wait("the second commit")
	if hw := highWatermark(reader); hw != 1 {
		t.Fatalf("high watermark %d while the second commit's append is held, want 1", hw)
	}
	release <- errors.New("injected append failure")
	if err := <-done; err == nil {
		t.Fatal("commit whose append failed was acknowledged")
	}
	armed.Store(false)

	// The failed vcluster still answers reads from its state, without
	// the batch; the server then rebuilds it from its journal, which
	// holds the first commit alone (two rows with the topic's).
	if hw := highWatermark(reader); hw != 1 {
		t.Fatalf("high watermark %d after the failed append, want 1", hw)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, ok := cp.server.Stats(name); ok && st.Replayed > 0 {
			if st.Replayed != 2 {
				t.Fatalf("rebuilt from %d journal rows, want 2", st.Replayed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the vcluster was not rebuilt from its journal")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		o, err := reader.Offsets(ctx, topic.ID, 0)
		if err == nil {
			if o.HighWatermark != 1 {
				t.Fatalf("high watermark %d once rebuilt from the journal, want 1", o.HighWatermark)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading the rebuilt vcluster: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
