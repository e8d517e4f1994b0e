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
// the applier has applied it, and applies a second batch on top of it
// meanwhile: no reader sees either until its append and every append
// before it returned; once they succeed the commits are answered and
// seen in order, and when the first fails both are answered
// unavailable and never seen, also once the server has rebuilt the
// vcluster from its journal.
func TestBatchSeenOnlyOnceJournaled(t *testing.T) {
	const name = "journaled"
	var armed atomic.Bool
	release := make(chan error)
	awaiting := make(chan struct{}, 1)
	applied := make(chan struct{}, 8)
	ended := make(chan struct{}) // the test failed: appends go on
	signal := func(c chan struct{}) func(string) {
		return func(vcluster string) {
			if vcluster != name || !armed.Load() {
				return
			}
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
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
	}, signal(applied), signal(awaiting))
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
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("never %s", what)
		}
	}
	acked := func(done <-chan error, what string) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer", what)
		}
	}
	// applyOnTop commits n while the batch before it is held in its
	// append, and waits until the applier has applied it on top.
	applyOnTop := func(n int) <-chan error {
		t.Helper()
		for len(applied) > 0 {
			<-applied
		}
		done := commit(n)
		wait(applied, fmt.Sprintf("applied commit %d on top of the held batch", n))
		return done
	}
	hwIs := func(want int64, when string) {
		t.Helper()
		if hw := highWatermark(reader); hw != want {
			t.Fatalf("high watermark %d %s, want %d", hw, when, want)
		}
	}

	armed.Store(true)
	first := commit(0)
	wait(awaiting, "waited for the append of the first commit")
	second := applyOnTop(1)
	hwIs(0, "while the first commit's append is held")
	release <- nil // the first commit's append
	acked(first, "commit whose append succeeded")
	hwIs(1, "after the first commit, the second's append held")
	select {
	case err := <-second:
		t.Fatalf("second commit answered (%v) before its append returned", err)
	default:
	}
	release <- nil // the second's
	acked(second, "commit applied on top, whose append succeeded")
	hwIs(2, "after both commits")

	third := commit(2)
	wait(awaiting, "waited for the append of the third commit")
	fourth := applyOnTop(3)
	hwIs(2, "while the third commit's append is held")
	release <- errors.New("injected append failure")
	for i, done := range []<-chan error{third, fourth} {
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("commit %d acknowledged: its append, or the one of the batch it was applied on, failed", 2+i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("commit %d: no answer", 2+i)
		}
	}
	armed.Store(false)

	// The failed vcluster still answers reads from its state, without
	// either batch; the server then rebuilds it from its journal, which
	// holds the first two commits alone (three rows with the topic's).
	hwIs(2, "after the failed append")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, ok := cp.server.Stats(name); ok && st.Replayed > 0 {
			if st.Replayed != 3 {
				t.Fatalf("rebuilt from %d journal rows, want 3", st.Replayed)
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
			if o.HighWatermark != 2 {
				t.Fatalf("high watermark %d once rebuilt from the journal, want 2", o.HighWatermark)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading the rebuilt vcluster: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
