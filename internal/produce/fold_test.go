package produce_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/produce"
)

// gatedStore holds the first commit until its gate opens, so that the
// segments flushed meanwhile queue on the commit chain, and records how
// many segments each call to the store committed.
type gatedStore struct {
	*fixture
	gate chan struct{}

	mu      sync.Mutex
	held    bool  // the first commit has come
	calls   []int // segments per call, in order
	failAt  int   // the call (1-based) that fails, with failErr
	failErr error
	// unsupported: CommitSegments answers ErrGroupsUnsupported (an older
	// control plane), refused times.
	unsupported bool
	refused     int
}

func (s *gatedStore) enter(n int) error {
	s.mu.Lock()
	first := !s.held
	s.held = true
	s.calls = append(s.calls, n)
	fail := s.failAt == len(s.calls)
	s.mu.Unlock()
	if first {
		<-s.gate
	}
	if fail {
		return s.failErr
	}
	return nil
}

func (s *gatedStore) CommitSegment(ctx context.Context, c metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	if err := s.enter(1); err != nil {
		return nil, err
	}
	return s.store.CommitSegment(ctx, c)
}

func (s *gatedStore) CommitSegments(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	if s.unsupported {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		return nil, fmt.Errorf("control plane: %w", metastore.ErrGroupsUnsupported)
	}
	if err := s.enter(len(cs)); err != nil {
		return nil, err
	}
	return s.store.CommitSegments(ctx, cs)
}

// waitHeld waits until the first commit has reached the store (and
// waits for the gate there).
func (s *gatedStore) waitHeld(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		held := s.held
		s.mu.Unlock()
		if held {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the first commit never reached the store")
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *gatedStore) callSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// waitPuts waits until the bucket has taken n PUTs.
func waitPuts(t *testing.T, b *faulty.Bucket, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Calls(faulty.Put) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d PUTs after 10s, want %d", b.Calls(faulty.Put), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// queueBehindHeldCommit appends one batch per segment to partitions
// 0, 1, 0, 1, …: the first segment's commit is held until the other
// segments are uploaded and wait on the chain behind it.
func queueBehindHeldCommit(t *testing.T, s *gatedStore, segments int) (*produce.Writer, []*produce.Pending) {
	return queueBehindHeldCommitWith(t, s, produce.Options{Linger: time.Hour, MaxSegmentBytes: 1, MaxInflightFlushes: segments}, segments)
}

func queueBehindHeldCommitWith(t *testing.T, s *gatedStore, opts produce.Options, segments int) (*produce.Writer, []*produce.Pending) {
	t.Helper()
	w := produce.NewWriter(s.bucket, s, opts)
	t.Cleanup(w.Close)
	var ps []*produce.Pending
	for i := range segments {
		ps = append(ps, w.Append(s.topic.ID, "t", int32(i%2), batch(2, fmt.Sprintf("s%d", i))))
		if i == 0 {
			s.waitHeld(t)
		}
	}
	waitPuts(t, s.bucket, segments)
	time.Sleep(20 * time.Millisecond) // past the PUTs, onto the chain
	return w, ps
}

// wantAppendOrder waits for the batches queueBehindHeldCommit appended and
// fails the test unless each got the offset append order gives it: two
// records a segment, alternately on partitions 0 and 1.
func wantAppendOrder(t *testing.T, ps []*produce.Pending) {
	t.Helper()
	for i, p := range ps {
		res, err := wait(t, p)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if want := int64(i/2) * 2; res.BaseOffset != want {
			t.Fatalf("segment %d (partition %d): offset %d, want %d", i, i%2, res.BaseOffset, want)
		}
	}
}

// TestFoldQueuedCommits: segments uploaded while a commit runs are
// committed together by the next flush, in one store call, and their
// batches get offsets in append order.
func TestFoldQueuedCommits(t *testing.T) {
	s := &gatedStore{fixture: newFixture(t, 2), gate: make(chan struct{})}
	_, ps := queueBehindHeldCommit(t, s, 4)
	close(s.gate)
	wantAppendOrder(t, ps)
	if got := s.callSizes(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("store calls committed %v segments, want [1 3] (the first alone, the three queued behind it together)", got)
	}
	for p, want := range map[int32][]string{0: {"s0-0", "s0-1", "s2-0", "s2-1"}, 1: {"s1-0", "s1-1", "s3-0", "s3-1"}} {
		if got := s.readPartition(t, p); !slices.Equal(got, want) {
			t.Fatalf("partition %d: %v, want %v", p, got, want)
		}
	}
}

// TestFoldedCommitFailsTogether: a group's commit that fails fails every
// segment of it, commits none of it, and the next segment commits after
// what was committed before the group.
func TestFoldedCommitFailsTogether(t *testing.T) {
	s := &gatedStore{fixture: newFixture(t, 2), gate: make(chan struct{}), failAt: 2, failErr: errors.New("store refused")}
	w, ps := queueBehindHeldCommit(t, s, 4)
	close(s.gate)
	if res, err := wait(t, ps[0]); err != nil || res.BaseOffset != 0 {
		t.Fatalf("segment 0: %+v %v, want offset 0", res, err)
	}
	for i, p := range ps[1:] {
		if _, err := wait(t, p); !errors.Is(err, produce.ErrStorage) {
			t.Fatalf("segment %d of the failed group: %v, want ErrStorage", i+1, err)
		}
	}
	if got := s.callSizes(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("store calls committed %v segments, want [1 3]", got)
	}
	res, err := wait(t, w.Append(s.topic.ID, "t", 0, batch(1, "after")))
	if err != nil || res.BaseOffset != 2 {
		t.Fatalf("after the failed group: %+v %v, want offset 2 (after segment 0's two records)", res, err)
	}
	if got := s.readPartition(t, 1); len(got) != 0 {
		t.Fatalf("partition 1 holds %v, written only by the failed group", got)
	}
}

// TestFoldedCommitUnreachableQueuesInOrder: with the outage mode on, a
// group whose store cannot be reached is queued segment by segment in
// order, acknowledged, and replayed in order once the store answers.
func TestFoldedCommitUnreachableQueuesInOrder(t *testing.T) {
	f := newFixture(t, 2)
	s := &gatedStore{fixture: f, gate: make(chan struct{}), failAt: 2, failErr: fmt.Errorf("control plane: %w", errRefused)}
	o := produce.OutageOptions{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	w := produce.NewWriter(f.bucket, s, produce.Options{Linger: time.Hour, MaxSegmentBytes: 1, MaxInflightFlushes: 4,
		FlushTimeout: 5 * time.Second, Outage: &o})
	t.Cleanup(w.Close)
	var ps []*produce.Pending
	for i := range 4 {
		ps = append(ps, w.Append(f.topic.ID, "t", int32(i%2), batch(1, fmt.Sprintf("s%d", i))))
		if i == 0 {
			s.waitHeld(t)
		}
	}
	waitPuts(t, f.bucket, 4)
	time.Sleep(20 * time.Millisecond)
	close(s.gate)
	for i, p := range ps {
		res, err := wait(t, p)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if i > 0 && res.BaseOffset != -1 {
			t.Fatalf("segment %d of the unreachable group: %+v, want acknowledged without offsets", i, res)
		}
	}
	waitQueue(t, w, 0) // replayed: the store answers again after the failed call
	for p, want := range map[int32][]string{0: {"s0-0", "s2-0"}, 1: {"s1-0", "s3-0"}} {
		if got := f.readPartition(t, p); !slices.Equal(got, want) {
			t.Fatalf("partition %d after the replay: %v, want %v", p, got, want)
		}
	}
}

// TestFoldFallsBackWhenGroupsUnsupported: a store that turns out unable to
// commit groups (an older control plane) committed nothing; the writer
// then commits each segment on its own, in order.
func TestFoldFallsBackWhenGroupsUnsupported(t *testing.T) {
	s := &gatedStore{fixture: newFixture(t, 2), gate: make(chan struct{}), unsupported: true}
	_, ps := queueBehindHeldCommit(t, s, 4)
	close(s.gate)
	wantAppendOrder(t, ps)
	s.mu.Lock()
	refused := s.refused
	s.mu.Unlock()
	if got := s.callSizes(); refused == 0 || !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Fatalf("%d groups refused, then store calls of %v segments; want a refused group, then [1 1 1 1]", refused, got)
	}
}

// TestFoldDisabled: with DisableCommitGroups every segment commits in a
// transaction of its own.
func TestFoldDisabled(t *testing.T) {
	s := &gatedStore{fixture: newFixture(t, 2), gate: make(chan struct{})}
	_, ps := queueBehindHeldCommitWith(t, s, produce.Options{Linger: time.Hour, MaxSegmentBytes: 1, MaxInflightFlushes: 4, DisableCommitGroups: true}, 4)
	close(s.gate)
	wantAppendOrder(t, ps)
	if got := s.callSizes(); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Fatalf("store calls committed %v segments, want [1 1 1 1]", got)
	}
}

// GroupFits lets a group spread over at most twice the partitions of its
// first segment: segments of the same partitions always fit, others until
// the group would pass the bound; a segment that does not fit leaves the
// group as it was.
func TestGroupFits(t *testing.T) {
	seg := func(parts ...int32) *metastore.SegmentCommit {
		c := &metastore.SegmentCommit{Object: "o"}
		for _, p := range parts {
			c.Batches = append(c.Batches, metastore.BatchCommit{Partition: p, ByteLength: 1, OffsetCount: 1})
		}
		return c
	}
	fits := produce.GroupFits(*seg(0, 1, 2))
	for i, tc := range []struct {
		c    *metastore.SegmentCommit
		want bool
	}{
		{seg(0, 1, 2, 2, 1), true}, // the same partitions
		{seg(3, 4), true},          // 5 of 6
		{seg(5, 6), false},         // 7 of 6: refused, nothing kept
		{seg(5, 0), true},          // 6 of 6
		{seg(6), false},
		{seg(4, 5, 1), true},
	} {
		if got := fits(tc.c); got != tc.want {
			t.Errorf("segment %d: fits %v, want %v", i, got, tc.want)
		}
	}
}
