package produce_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/produce"
)

// lostAgent drives an outage queue under name through an outage and
// drops it without replaying, as an agent that dies and never comes
// back: its first commit is applied with its answer lost, the rest are
// queued only. It returns the manifests it left, by key.
func lostAgent(t *testing.T, s *flakyStore, name string) map[string][]byte {
	t.Helper()
	o := produce.OutageOptions{ManifestName: name, RetryMin: time.Minute, RetryMax: time.Minute}
	w := produce.NewWriter(s.bucket, s, produce.Options{Linger: 10 * time.Millisecond, FlushTimeout: 300 * time.Millisecond, Outage: &o})
	s.applyThenFail.Store(1)
	s.downAfterLost.Store(true)
	if _, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, "applied"))); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := wait(t, w.Append(s.topic.ID, "t", 0, producerBatch(6, 0, int32(i), 1, fmt.Sprint("q", i)))); err != nil {
			t.Fatal(err)
		}
		if _, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, fmt.Sprint("p", i)))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close() // the store is down: nothing replayed, the manifests stay
	s.downAfterLost.Store(false)
	left := map[string][]byte{}
	ctx := context.Background()
	err := s.bucket.List(ctx, produce.ManifestPrefix+name+"/", func(o objstore.ObjectInfo) error {
		data, err := s.bucket.GetRange(ctx, o.Key, 0, o.Size)
		left[o.Key] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func replayOpts() produce.ReplayOptions {
	return produce.ReplayOptions{FlushTimeout: 2 * time.Second, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
}

// TestReplayOutageManifestsOfLostAgent: the manifests an agent left when
// it died during an outage are replayed by ReplayOutageManifests once
// the store answers: every acknowledged batch committed once, in queue
// order (the one applied before its answer was lost is not applied
// again), each manifest deleted. A second run commits nothing; manifests
// put back (as if their deletes had failed) are found committed by the
// ledger; with the store down the replay ends incomplete and keeps them.
func TestReplayOutageManifestsOfLostAgent(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	left := lostAgent(t, s, "agent-7")
	if len(left) != 7 {
		t.Fatalf("the lost agent left %d manifests, want 7", len(left))
	}
	want := "[applied-0 q0-0 p0-0 q1-0 p1-0 q2-0 p2-0]"
	ctx := context.Background()

	s.down.Store(false)
	var progress []int
	o := replayOpts()
	o.Progress = func(n int) { progress = append(progress, n) }
	rep, err := produce.ReplayOutageManifests(ctx, s.bucket, s, "agent-7", o)
	if err != nil {
		t.Fatalf("replay: %v (%+v)", err, rep)
	}
	if rep.Loaded != 7 || rep.Remaining != 0 || rep.Commits["already_committed"] != 1 || rep.Commits["committed"] != 6 ||
		rep.Batches["committed"] != 6 || rep.Lost != 0 {
		t.Fatalf("report %+v: want 7 loaded, 1 already committed, 6 committed", rep)
	}
	if got := fmt.Sprint(s.readPartition(t, 0)); got != want {
		t.Fatalf("partition: %s, want %s", got, want)
	}
	if m := s.manifests(t); len(m) != 0 {
		t.Fatalf("manifests left after the replay: %v", m)
	}
	s.mu.Lock()
	commits := len(s.commits)
	s.mu.Unlock()
	if commits != 7 { // the applied one and six replayed
		t.Fatalf("%d commits reached the store, want 7", commits)
	}

	// Again: nothing to load, nothing committed.
	rep, err = produce.ReplayOutageManifests(ctx, s.bucket, s, "agent-7", replayOpts())
	if err != nil || rep.Loaded != 0 || len(rep.Commits) != 0 {
		t.Fatalf("second replay: %+v %v, want nothing loaded", rep, err)
	}

	// The manifests back, as if their deletes had failed: the ledger
	// knows every object; nothing is committed twice.
	for k, data := range left {
		if err := s.bucket.Put(ctx, k, data); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = produce.ReplayOutageManifests(ctx, s.bucket, s, "agent-7", replayOpts())
	if err != nil || rep.Loaded != 7 || rep.Commits["already_committed"] != 7 || rep.Commits["committed"] != 0 {
		t.Fatalf("replay of manifests already committed: %+v %v, want 7 found committed", rep, err)
	}
	if got := fmt.Sprint(s.readPartition(t, 0)); got != want {
		t.Fatalf("partition after replaying committed manifests: %s, want %s", got, want)
	}
	s.mu.Lock()
	commits = len(s.commits)
	s.mu.Unlock()
	if commits != 7 {
		t.Fatalf("%d commits reached the store, want still 7", commits)
	}
	if m := s.manifests(t); len(m) != 0 {
		t.Fatalf("manifests left: %v", m)
	}

	// The store down: incomplete, the manifests stay.
	for k, data := range left {
		if err := s.bucket.Put(ctx, k, data); err != nil {
			t.Fatal(err)
		}
	}
	s.down.Store(true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	o = replayOpts()
	o.FlushTimeout = 200 * time.Millisecond
	rep, err = produce.ReplayOutageManifests(short, s.bucket, s, "agent-7", o)
	if !errors.Is(err, produce.ErrReplayIncomplete) || rep.Remaining != 7 {
		t.Fatalf("replay with the store down: %+v %v, want ErrReplayIncomplete with 7 left", rep, err)
	}
	if m := s.manifests(t); len(m) != 7 {
		t.Fatalf("%d manifests after an incomplete replay, want 7", len(m))
	}
}

// TestListOutageManifests: the names with manifests, their counts and
// bytes; keys under the prefix that no agent writes are skipped.
func TestListOutageManifests(t *testing.T) {
	s := &flakyStore{fixture: newFixture(t, 1)}
	ctx := context.Background()
	for _, k := range []string{"a-1/0001", "a-1/0002", "b/0001", ".hidden/0001", "stray"} {
		if err := s.bucket.Put(ctx, produce.ManifestPrefix+k, []byte("12345")); err != nil {
			t.Fatal(err)
		}
	}
	sets, err := produce.ListOutageManifests(ctx, s.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || sets[0].Name != "a-1" || sets[0].Manifests != 2 || sets[0].Bytes != 10 ||
		sets[1].Name != "b" || sets[1].Manifests != 1 || sets[0].Oldest.IsZero() {
		t.Fatalf("sets %+v: want a-1 (2 manifests, 10 bytes) and b (1)", sets)
	}
}

// TestReplayOutageManifestsHostile: a manifest that is not JSON, not one
// Floe writes, or larger than the bound stops the replay before anything
// is committed, with an error naming its key; the manifests stay.
func TestReplayOutageManifestsHostile(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		body, want string
		limit      int64
	}{
		"bad json":  {body: "{not json", want: "outage/x/0002"},
		"foreign":   {body: `{"v":1,"commit":{"Object":"elsewhere/x","Size":10,"Batches":[{"OffsetCount":1,"ByteLength":5}]}}`, want: "not one this version writes"},
		"oversized": {body: strings.Repeat(" ", 64) + "{}", want: "bytes, at most 32", limit: 32},
	} {
		t.Run(name, func(t *testing.T) {
			s := &flakyStore{fixture: newFixture(t, 1)}
			left := lostAgent(t, s, "x")
			if len(left) == 0 {
				t.Fatal("no manifests")
			}
			// Sorts before the agent's own manifests (their keys start
			// with the clock's nanoseconds): nothing is committed.
			if err := s.bucket.Put(ctx, produce.ManifestPrefix+"x/0002", []byte(c.body)); err != nil {
				t.Fatal(err)
			}
			if c.limit > 0 {
				defer produce.SetMaxManifestBytes(c.limit)()
			}
			s.down.Store(false)
			s.mu.Lock()
			before := len(s.commits)
			s.mu.Unlock()
			rep, err := produce.ReplayOutageManifests(ctx, s.bucket, s, "x", replayOpts())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("replay: %+v %v, want an error containing %q", rep, err, c.want)
			}
			s.mu.Lock()
			after := len(s.commits)
			s.mu.Unlock()
			if after != before {
				t.Fatalf("%d commits reached the store after a refused manifest", after-before)
			}
			if got := len(s.manifests(t)); got != len(left)+1 {
				t.Fatalf("%d manifests after the refusal, want %d", got, len(left)+1)
			}
		})
	}
}
