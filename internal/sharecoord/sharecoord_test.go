package sharecoord_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharegroup"
	"github.com/floe-io/floe/internal/sharepart"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func setup(t *testing.T) (*embedded.Store, metastore.Topic) {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	topic, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s, topic
}

// readAll pretends the log holds one record per offset: it "reads" every
// offset from from to the end, which it reports.
func readAll(end int64) sharecoord.ReadFunc {
	return func(_ context.Context, from int64) (sharecoord.Read, error) {
		return sharecoord.Read{Records: []byte(fmt.Sprintf("records %d-%d", from, end-1)), End: end}, nil
	}
}

// TestAcquireSkipsAbortedRuns: a read that finds only offsets to skip
// (an aborted transaction) archives them and reads on, a bounded number
// of times, so the member gets the committed records after them.
func TestAcquireSkipsAbortedRuns(t *testing.T) {
	store, topic := setup(t)
	clk := &clock{now: time.Unix(1000, 0)}
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, ReadCommitted: true, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	tp := sharecoord.TP{Topic: topic.ID, Partition: 0}
	const aborted = 25 // offsets 0-24 belong to an aborted transaction
	reads := 0
	read := func(_ context.Context, from int64) (sharecoord.Read, error) {
		reads++
		end := min(from+10, 40)
		rd := sharecoord.Read{Records: []byte(fmt.Sprintf("records %d-%d", from, end-1)), End: end}
		if from < aborted {
			rd.Skip = []sharepart.Span{{First: from, Last: min(end, aborted) - 1}}
		}
		return rd, nil
	}
	f, code := c.Acquire(context.Background(), "g", "m", tp, 100, sharecoord.Offsets{End: 40}, read)
	if code != 0 || acquired(f) != "[25-29 #1]" || reads != 3 {
		t.Fatalf("acquired %s (code %d) in %d reads; want [25-29 #1] in 3", acquired(f), code, reads)
	}
	ps, _, _ := c.Partition(context.Background(), "g", tp)
	if ps.Start != aborted {
		t.Fatalf("start %d, want %d: the aborted offsets are archived", ps.Start, aborted)
	}

	// A transaction aborted over more than maxSkippingReads reads: the
	// fetch answers nothing but the next one goes on from there.
	reads = 0
	long := func(_ context.Context, from int64) (sharecoord.Read, error) {
		reads++
		return sharecoord.Read{Records: []byte("x"), End: from + 10, Skip: []sharepart.Span{{First: from, Last: from + 9}}}, nil
	}
	tp1 := sharecoord.TP{Topic: topic.ID, Partition: 1}
	if f, _ := c.Acquire(context.Background(), "g", "m", tp1, 100, sharecoord.Offsets{End: 1000}, long); len(f.Acquired) != 0 || reads != 4 {
		t.Fatalf("acquired %s in %d reads; want nothing in 4", acquired(f), reads)
	}
	if ps, _, _ := c.Partition(context.Background(), "g", tp1); ps.Start != 40 {
		t.Fatalf("start %d after four skipping reads, want 40", ps.Start)
	}
}

func acquired(f sharecoord.Fetched) string {
	s := ""
	for _, a := range f.Acquired {
		s += fmt.Sprintf("[%d-%d #%d]", a.First, a.Last, a.DeliveryCount)
	}
	return s
}

// TestHandover: a share partition's acknowledgements survive a change of
// owner; the records the old owner had handed out come back, the
// acknowledged and rejected ones never.
func TestHandover(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}}
	a := sharecoord.New(store, opts)
	tp := sharecoord.TP{Topic: topic.ID, Partition: 1}
	offs := sharecoord.Offsets{LogStart: 0, End: 10}

	f, code := a.Acquire(ctx, "g", "m1", tp, 6, offs, readAll(10))
	if code != 0 || acquired(f) != "[0-5 #1]" {
		t.Fatalf("first acquire: %s, code %d", acquired(f), code)
	}
	codes := a.Acknowledge(ctx, "g", "m1", map[sharecoord.TP][]sharepart.AckBatch{
		tp: {{First: 0, Last: 2, Types: []sharepart.AckType{sharepart.Accept}}, {First: 4, Last: 4, Types: []sharepart.AckType{sharepart.Reject}}},
	})
	if codes[tp] != 0 {
		t.Fatalf("ack: %d", codes[tp])
	}
	// A second agent takes over (the first is still running, unaware).
	b := sharecoord.New(store, opts)
	f, code = b.Acquire(ctx, "g", "m2", tp, 100, offs, readAll(10))
	if code != 0 || acquired(f) != "[3-3 #2][5-5 #2][6-9 #1]" {
		t.Fatalf("new owner acquired %s, code %d; want 3 and 5 again (second delivery), then 6-9", acquired(f), code)
	}
	codes = b.Acknowledge(ctx, "g", "m2", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 3, Last: 3, Types: []sharepart.AckType{sharepart.Accept}}}})
	if codes[tp] != 0 {
		t.Fatalf("new owner's ack: %d", codes[tp])
	}
	// The deposed owner's write fails on the version: it does not
	// overwrite, and answers an error the client retries elsewhere.
	codes = a.Acknowledge(ctx, "g", "m1", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 5, Last: 5, Types: []sharepart.AckType{sharepart.Accept}}}})
	if codes[tp] != kerr.NotLeaderForPartition.Code {
		t.Fatalf("deposed owner's ack: %d, want NOT_LEADER_OR_FOLLOWER", codes[tp])
	}
	st, ok, err := b.Partition(ctx, "g", tp)
	if err != nil || !ok || st.Start != 5 {
		t.Fatalf("new owner's partition: %+v %v %v; want start 5 (0-3 acknowledged, 4 rejected)", st, ok, err)
	}
	// The other partition was never touched: it has no state.
	if _, ok, _ := b.Partition(ctx, "g", sharecoord.TP{Topic: topic.ID, Partition: 0}); ok {
		t.Fatal("untouched partition has state")
	}
}

// TestAutoOffsetReset: latest (the default) starts at the log end, and
// the start is stored at once, so a later owner starts there too.
func TestAutoOffsetReset(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tp := sharecoord.TP{Topic: topic.ID, Partition: 0}
	a := sharecoord.New(store, sharecoord.Options{Now: clk.Now})
	if f, code := a.Acquire(ctx, "g", "m", tp, 10, sharecoord.Offsets{LogStart: 2, End: 7}, readAll(7)); code != 0 || len(f.Acquired) != 0 {
		t.Fatalf("latest acquired %s, code %d", acquired(f), code)
	}
	b := sharecoord.New(store, sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	if f, _ := b.Acquire(ctx, "g", "m", tp, 10, sharecoord.Offsets{LogStart: 2, End: 9}, readAll(9)); acquired(f) != "[7-8 #1]" {
		t.Fatalf("after the log grew: %s, want 7-8 (the stored start wins over earliest)", acquired(f))
	}
}

// TestLockTimeout: records of a member that stops are handed to another
// after share.record.lock.duration.ms, and archived at the delivery
// limit.
func TestLockTimeout(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest},
		Partition: sharepart.Config{LockDuration: time.Second, DeliveryCountLimit: 2}})
	tp := sharecoord.TP{Topic: topic.ID, Partition: 0}
	offs := sharecoord.Offsets{End: 3}
	for i, want := range []string{"[0-2 #1]", "", "[0-2 #2]", ""} {
		f, code := c.Acquire(ctx, "g", fmt.Sprint("m", i), tp, 10, offs, readAll(3))
		if code != 0 || acquired(f) != want {
			t.Fatalf("round %d: %s, code %d; want %s", i, acquired(f), code, want)
		}
		if i%2 == 1 {
			clk.now = clk.now.Add(time.Second)
		}
	}
	st, _, _ := c.Partition(ctx, "g", tp)
	if st.Start != 3 {
		t.Fatalf("start %d after two failed deliveries with limit 2, want 3 (archived)", st.Start)
	}
}

func TestSessions(t *testing.T) {
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, MaxSessions: 2})
	p0, p1 := sharecoord.TP{Topic: topic.ID, Partition: 0}, sharecoord.TP{Topic: topic.ID, Partition: 1}
	check := func(what string, r sharecoord.SessionResult, code int16, fetch, released int) {
		t.Helper()
		if r.Err != code || len(r.Fetch) != fetch || len(r.Released) != released {
			t.Fatalf("%s: %+v; want code %d, %d to fetch, %d released", what, r, code, fetch, released)
		}
	}
	check("incremental without a session", c.FetchSession("g", "a", 1, nil, nil, false), kerr.ShareSessionNotFound.Code, 0, 0)
	check("open with acks", c.FetchSession("g", "a", 0, []sharecoord.TP{p0}, nil, true), kerr.InvalidRequest.Code, 0, 0)
	check("open", c.FetchSession("g", "a", 0, []sharecoord.TP{p0, p0}, nil, false), 0, 1, 0)
	check("wrong epoch", c.FetchSession("g", "a", 2, nil, nil, false), kerr.InvalidShareSessionEpoch.Code, 0, 0)
	check("add", c.FetchSession("g", "a", 1, []sharecoord.TP{p1}, nil, false), 0, 2, 0)
	check("forget (releases nothing, as Kafka)", c.FetchSession("g", "a", 2, nil, []sharecoord.TP{p0}, false), 0, 1, 0)
	check("ack at 0", c.AckSession("g", "a", 0), kerr.InvalidShareSessionEpoch.Code, 0, 0)
	check("ack", c.AckSession("g", "a", 3), 0, 1, 0)
	check("replayed epoch", c.FetchSession("g", "a", 3, nil, nil, false), kerr.InvalidShareSessionEpoch.Code, 0, 0)
	check("second member", c.FetchSession("g", "b", 0, []sharecoord.TP{p0}, nil, false), 0, 1, 0)
	check("over the limit", c.FetchSession("g", "c", 0, []sharecoord.TP{p0}, nil, false), kerr.ShareSessionLimitReached.Code, 0, 0)
	clk.now = clk.now.Add(time.Minute) // both idle past the session timeout
	check("limit after idle sessions", c.FetchSession("g", "c", 0, []sharecoord.TP{p0}, nil, false), 0, 1, 0)
	check("reopen replaces (releases nothing, as Kafka)", c.FetchSession("g", "c", 0, []sharecoord.TP{p1}, nil, false), 0, 1, 0)
	check("close", c.FetchSession("g", "c", -1, nil, nil, false), 0, 0, 1)
	check("closed", c.AckSession("g", "c", 2), kerr.ShareSessionNotFound.Code, 0, 0)
	many := make([]sharecoord.TP, sharecoord.MaxSessionPartitions+1)
	for i := range many {
		many[i] = sharecoord.TP{Partition: int32(i)}
	}
	check("too many partitions", c.FetchSession("g", "d", 0, many, nil, false), kerr.InvalidRequest.Code, 0, 0)
}

// failing fails every write.
type failing struct {
	*embedded.Store
}

func (f failing) WriteShareStates(context.Context, string, []metastore.ShareState) ([]int64, error) {
	return nil, errors.New("store down")
}

func TestWriteFailure(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	c := sharecoord.New(failing{store}, sharecoord.Options{})
	f, code := c.Acquire(ctx, "g", "m", sharecoord.TP{Topic: topic.ID}, 10, sharecoord.Offsets{End: 5}, readAll(5))
	if code != kerr.UnknownServerError.Code || len(f.Acquired) != 0 {
		t.Fatalf("acquire with the store down: %s, %d", acquired(f), code)
	}
}

// TestResetByDuration: by_duration starts at the first record at or
// after now minus the duration.
func TestResetByDuration(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.UnixMilli(100_000)}
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetByDuration, Duration: 30 * time.Second}})
	var asked int64
	offs := sharecoord.Offsets{End: 10, ForTime: func(ms int64) int64 { asked = ms; return 6 }}
	f, code := c.Acquire(ctx, "g", "m", sharecoord.TP{Topic: topic.ID}, 10, offs, readAll(10))
	if code != 0 || acquired(f) != "[6-9 #1]" || asked != 70_000 {
		t.Fatalf("by_duration acquired %s (code %d), asked for time %d; want 6-9 and 70000", acquired(f), code, asked)
	}
}

// TestMaxGroups: a client naming ever new groups cannot grow the agent:
// empty groups and idle share partitions are dropped for new ones, and a
// new group is refused when none can be.
func TestMaxGroups(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, MaxGroups: 2, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	img := consumer.NewImage([]consumer.Topic{{ID: consumer.TopicID(topic.ID), Name: "t", Partitions: 2}})
	join := func(group string) int16 {
		return c.Heartbeat(group, img, sharegroup.HeartbeatRequest{MemberID: "m", SubscribedTopicNames: []string{"t"}}).Err
	}
	for _, g := range []string{"a", "b"} {
		if code := join(g); code != 0 {
			t.Fatalf("join %s: %d", g, code)
		}
	}
	if code := join("c"); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("a third group with two full ones: %d, want COORDINATOR_NOT_AVAILABLE", code)
	}
	if r := c.Heartbeat("a", img, sharegroup.HeartbeatRequest{MemberID: "m", MemberEpoch: -1}); r.Err != 0 {
		t.Fatalf("leave: %d", r.Err)
	}
	if code := join("c"); code != 0 {
		t.Fatalf("a third group once one is empty: %d", code)
	}
	// Share partitions: idle groups make way; acknowledgements stay stored.
	tp := sharecoord.TP{Topic: topic.ID}
	for _, g := range []string{"a", "b", "c", "d"} {
		f, code := c.Acquire(ctx, g, "m", tp, 1, sharecoord.Offsets{End: 3}, readAll(3))
		if code != 0 || acquired(f) != "[0-0 #1]" {
			t.Fatalf("group %s: %s %d", g, acquired(f), code)
		}
		if codes := c.Acknowledge(ctx, g, "m", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 0, Last: 0, Types: []sharepart.AckType{sharepart.Accept}}}}); codes[tp] != 0 {
			t.Fatalf("group %s ack: %d", g, codes[tp])
		}
	}
	// "a" was dropped from memory on the way; it comes back from the store.
	if f, _ := c.Acquire(ctx, "a", "m", tp, 5, sharecoord.Offsets{End: 3}, readAll(3)); acquired(f) != "[1-2 #1]" {
		t.Fatalf("group a after eviction: %s, want 1-2", acquired(f))
	}
}

func TestLag(t *testing.T) {
	st := metastore.ShareState{StartOffset: 10, Batches: []metastore.ShareBatch{
		{First: 10, Last: 11, State: metastore.ShareAvailable, DeliveryCount: 1},
		{First: 12, Last: 14, State: metastore.ShareAcknowledged, DeliveryCount: 1},
		{First: 15, Last: 15, State: metastore.ShareArchived, DeliveryCount: 5},
		{First: 16, Last: 19, State: metastore.ShareAcknowledged, DeliveryCount: 1},
	}}
	for _, c := range []struct{ end, want int64 }{{20, 2}, {30, 12}, {18, 2}, {13, 2}, {10, 0}, {5, 0}} {
		if got := sharecoord.Lag(st, c.end); got != c.want {
			t.Errorf("Lag(end %d) = %d, want %d", c.end, got, c.want)
		}
	}
}

// TestForgetIdle: when the last share session of a group on an agent
// closes, the agent drops the group's share partitions, so it sees what
// another agent stored meanwhile (here: the group deleted by its
// coordinator).
func TestForgetIdle(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	opts := sharecoord.Options{Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}}
	leader := sharecoord.New(store, opts)
	tp := sharecoord.TP{Topic: topic.ID}
	offs := sharecoord.Offsets{End: 4}
	acceptAll := func(c *sharecoord.Coordinator) {
		t.Helper()
		if codes := c.Acknowledge(ctx, "g", "m", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 0, Last: 3, Types: []sharepart.AckType{sharepart.Accept}}}}); codes[tp] != 0 {
			t.Fatalf("ack: %d", codes[tp])
		}
	}
	leader.FetchSession("g", "m", 0, []sharecoord.TP{tp}, nil, false)
	leader.Acquire(ctx, "g", "m", tp, 10, offs, readAll(4))
	acceptAll(leader)
	if leader.ForgetIdle("g") {
		t.Fatal("forgot a group with an open session")
	}
	leader.FetchSession("g", "m", -1, nil, nil, false)
	if !leader.ForgetIdle("g") {
		t.Fatal("kept a group without sessions")
	}
	// Meanwhile the group is deleted and its state gone.
	if err := store.DeleteShareStates(ctx, "g", nil); err != nil {
		t.Fatal(err)
	}
	if f, _ := leader.Acquire(ctx, "g", "m", tp, 10, offs, readAll(4)); acquired(f) != "[0-3 #1]" {
		t.Fatalf("after the group was deleted elsewhere: %s, want everything again", acquired(f))
	}
}

// TestMetrics: the share-group counters and the in-flight gauge follow
// acquisitions, acknowledgements of each type and lock expiries.
func TestMetrics(t *testing.T) {
	store, topic := setup(t)
	clk := &clock{now: time.Unix(1000, 0)}
	reg := prometheus.NewRegistry()
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, Registerer: reg, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest},
		Partition: sharepart.Config{LockDuration: 30 * time.Second}})
	ctx := context.Background()
	tp := sharecoord.TP{Topic: topic.ID, Partition: 0}
	metrics := func() map[string]float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, f := range families {
			for _, x := range f.GetMetric() {
				if x.Counter != nil {
					m[f.GetName()] = x.Counter.GetValue()
				} else {
					m[f.GetName()] = x.Gauge.GetValue()
				}
			}
		}
		return m
	}
	check := func(what string, want map[string]float64) {
		t.Helper()
		got := metrics()
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s: %s = %v, want %v", what, name, got[name], v)
			}
		}
	}
	if f, _ := c.Acquire(ctx, "g", "m", tp, 100, sharecoord.Offsets{End: 10}, readAll(10)); len(f.Acquired) == 0 {
		t.Fatal("nothing acquired")
	}
	check("after acquiring 0-9", map[string]float64{"floe_share_records_acquired_total": 10, "floe_share_records_in_flight": 10})
	codes := c.Acknowledge(ctx, "g", "m", map[sharecoord.TP][]sharepart.AckBatch{tp: {
		{First: 0, Last: 3, Types: []sharepart.AckType{sharepart.Accept}},
		{First: 4, Last: 4, Types: []sharepart.AckType{sharepart.Reject}},
		{First: 5, Last: 5, Types: []sharepart.AckType{sharepart.Release}},
	}})
	if codes[tp] != 0 {
		t.Fatalf("acknowledge: %d", codes[tp])
	}
	check("after accept 0-3, reject 4, release 5", map[string]float64{
		"floe_share_records_acknowledged_total": 4, "floe_share_records_rejected_total": 1, "floe_share_records_archived_total": 1,
		"floe_share_records_released_total": 1, "floe_share_records_in_flight": 5,
	})
	clk.now = clk.now.Add(time.Minute) // the locks of 6-9 expire
	if f, _ := c.Acquire(ctx, "g", "n", tp, 100, sharecoord.Offsets{End: 10}, readAll(10)); acquired(f) != "[5-9 #2]" {
		t.Fatalf("second member acquired %s, want [5-9 #2]", acquired(f))
	}
	check("after the locks expired and 5-9 went to another member", map[string]float64{
		"floe_share_lock_expiries_total": 4, "floe_share_records_acquired_total": 15, "floe_share_records_in_flight": 5,
	})
	if err := c.Release(ctx, "g", "n", []sharecoord.TP{tp}); err != nil {
		t.Fatal(err)
	}
	check("after the member's session closed", map[string]float64{"floe_share_records_released_total": 6, "floe_share_records_in_flight": 5})
}

// slow delays every write, so that acknowledgements arriving meanwhile
// queue for the next one.
type slow struct {
	*embedded.Store
	delay time.Duration
}

func (s slow) WriteShareStates(ctx context.Context, group string, states []metastore.ShareState) ([]int64, error) {
	time.Sleep(s.delay)
	return s.Store.WriteShareStates(ctx, group, states)
}

// TestGroupCommit: members acknowledging concurrently share store writes
// (fewer writes than acknowledgements), and every acknowledgement
// answered is in the store when it is answered.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	c := sharecoord.New(slow{store, 20 * time.Millisecond}, sharecoord.Options{Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	const members, rounds = 8, 5
	tps := []sharecoord.TP{{Topic: topic.ID, Partition: 0}, {Topic: topic.ID, Partition: 1}}
	offs := sharecoord.Offsets{End: 1000}
	// Create both share partitions first (their first write is waited for).
	for _, tp := range tps {
		if _, code := c.Acquire(ctx, "g", "init", tp, 0, offs, readAll(1000)); code != 0 {
			t.Fatalf("create: %d", code)
		}
	}
	before := c.Writes()
	errs := make(chan error, members*rounds)
	var wg sync.WaitGroup
	for m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			member := fmt.Sprintf("m%d", m)
			tp := tps[m%2]
			for range rounds {
				f, code := c.Acquire(ctx, "g", member, tp, 3, offs, readAll(1000))
				if code != 0 || len(f.Acquired) != 1 {
					errs <- fmt.Errorf("%s acquired %s, code %d", member, acquired(f), code)
					return
				}
				a := f.Acquired[0]
				codes := c.Acknowledge(ctx, "g", member, map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: a.First, Last: a.Last, Types: []sharepart.AckType{sharepart.Accept}}}})
				if codes[tp] != 0 {
					errs <- fmt.Errorf("%s ack %d-%d: %d", member, a.First, a.Last, codes[tp])
					return
				}
				// Answered: it must be in the store now.
				stored, err := store.LoadShareStates(ctx, "g")
				if err != nil {
					errs <- err
					return
				}
				if !acknowledgedIn(stored, tp, a.First, a.Last) {
					errs <- fmt.Errorf("%s's acknowledgement of %d-%d answered but not stored: %+v", member, a.First, a.Last, stored)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	writes := c.Writes() - before
	if writes >= members*rounds {
		t.Errorf("%d writes for %d acknowledgements: none shared", writes, members*rounds)
	}
	t.Logf("%d acknowledgements, %d writes", members*rounds, writes)
	// A new owner sees every record acknowledged.
	next := sharecoord.New(store, sharecoord.Options{})
	for _, tp := range tps {
		st, _, err := next.Partition(ctx, "g", tp)
		if err != nil || st.Start != members/2*rounds*3 {
			t.Errorf("partition %d after handover: start %d (%v), want %d", tp.Partition, st.Start, err, members/2*rounds*3)
		}
	}
}

func acknowledgedIn(states []metastore.ShareState, tp sharecoord.TP, first, last int64) bool {
	for _, st := range states {
		if st.TopicID != tp.Topic || st.Partition != tp.Partition {
			continue
		}
		for off := first; off <= last; off++ {
			if off < st.StartOffset {
				continue
			}
			ok := false
			for _, b := range st.Batches {
				ok = ok || b.First <= off && off <= b.Last && b.State == metastore.ShareAcknowledged
			}
			if !ok {
				return false
			}
		}
		return true
	}
	return false
}

// TestAcquireWholeBatches: with the batches of a read known, MaxRecords
// is a soft limit rounded up to the end of a batch (Kafka's
// batch-optimized mode), and only the batches holding acquired records
// are returned.
func TestAcquireWholeBatches(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	c := sharecoord.New(store, sharecoord.Options{Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	tp := sharecoord.TP{Topic: topic.ID}
	// Batches of ten offsets, each written as ten bytes "bNNNNNNNNN".
	read := func(_ context.Context, from int64) (sharecoord.Read, error) {
		rd := sharecoord.Read{End: 100}
		for b := from / 10 * 10; b < 100; b += 10 {
			rd.Records = append(rd.Records, fmt.Sprintf("b%09d", b)...)
			rd.Batches = append(rd.Batches, sharecoord.Batch{First: b, Last: b + 9, End: len(rd.Records)})
		}
		return rd, nil
	}
	offs := sharecoord.Offsets{End: 100}
	f, code := c.Acquire(ctx, "g", "m", tp, 3, offs, read)
	if code != 0 || acquired(f) != "[0-9 #1]" || string(f.Records) != "b000000000" {
		t.Fatalf("acquired %s with records %q (code %d); want the whole first batch, alone", acquired(f), f.Records, code)
	}
	f, _ = c.Acquire(ctx, "g", "n", tp, 15, offs, read)
	if acquired(f) != "[10-29 #1]" || string(f.Records) != "b000000010b000000020" {
		t.Fatalf("acquired %s with records %q; want 10-29 in two batches", acquired(f), f.Records)
	}
	// The record-limit mode (ShareFetch v2) stops at the limit.
	if f, _ := c.AcquireStrict(ctx, "g", "o", tp, 3, offs, read); acquired(f) != "[30-32 #1]" || string(f.Records) != "b000000030" {
		t.Fatalf("strict: acquired %s with records %q; want 30-32 of batch 30", acquired(f), f.Records)
	}
	// Offsets 12-14 released: a fetch gets them from their batch, with
	// nothing past it; the batch's other records are held by "n".
	if codes := c.Acknowledge(ctx, "g", "n", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 12, Last: 14, Types: []sharepart.AckType{sharepart.Release}}}}); codes[tp] != 0 {
		t.Fatalf("release: %d", codes[tp])
	}
	f, _ = c.Acquire(ctx, "g", "m", tp, 1, offs, read)
	if acquired(f) != "[12-14 #2]" || string(f.Records) != "b000000010" {
		t.Fatalf("acquired %s with records %q; want 12-14 from batch 10", acquired(f), f.Records)
	}
}

// TestGroupConfigs: a group's stored configs override the agent's
// defaults, also for share partitions already in memory, and other
// groups keep the defaults.
func TestGroupConfigs(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Unix(1000, 0)}
	c := sharecoord.New(store, sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	tp := sharecoord.TP{Topic: topic.ID}
	offs := sharecoord.Offsets{End: 10}
	if f, _ := c.Acquire(ctx, "g", "m", tp, 10, offs, readAll(10)); acquired(f) != "[0-9 #1]" {
		t.Fatalf("acquired %s", acquired(f))
	}
	deadline := func(group string, off int) time.Duration {
		t.Helper()
		st, _, err := c.Partition(ctx, group, tp)
		if err != nil || len(st.Records) <= off {
			t.Fatalf("partition: %+v, %v", st, err)
		}
		return st.Records[off].Deadline.Sub(clk.now)
	}
	if d := deadline("g", 0); d != 30*time.Second {
		t.Fatalf("default lock %v, want 30s", d)
	}
	if err := c.ValidateConfig(sharecoord.ConfigLockDuration, "5000"); err == nil {
		t.Fatal("a lock duration below 15 s accepted")
	}
	v := func(s string) *string { return &s }
	if err := c.AlterConfigs(ctx, "g", []metastore.ConfigChange{{Name: sharecoord.ConfigLockDuration, Value: v("20000")}, {Name: sharecoord.ConfigDeliveryCountLimit, Value: v("2")}}); err != nil {
		t.Fatal(err)
	}
	// Release everything: the next delivery is locked for 20 s, and the
	// second delivery is the last (limit 2).
	if codes := c.Acknowledge(ctx, "g", "m", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 0, Last: 9, Types: []sharepart.AckType{sharepart.Release}}}}); codes[tp] != 0 {
		t.Fatalf("release: %d", codes[tp])
	}
	if f, _ := c.Acquire(ctx, "g", "m", tp, 10, offs, readAll(10)); acquired(f) != "[0-9 #2]" {
		t.Fatalf("second delivery %s", acquired(f))
	}
	if d := deadline("g", 0); d != 20*time.Second {
		t.Fatalf("group lock %v, want 20s", d)
	}
	c.Acknowledge(ctx, "g", "m", map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: 0, Last: 9, Types: []sharepart.AckType{sharepart.Release}}}})
	if st, _, _ := c.Partition(ctx, "g", tp); st.Start != 10 {
		t.Fatalf("start %d after two deliveries with the group's limit 2, want 10 (all archived)", st.Start)
	}
	// Another group keeps the agent's defaults.
	c.Acquire(ctx, "other", "m", tp, 1, offs, readAll(10))
	if d := deadline("other", 0); d != 30*time.Second {
		t.Fatalf("other group's lock %v, want 30s", d)
	}
}

// TestCloseConn: a connection that closes ends the share sessions whose
// last request came on it and releases their members' records; sessions
// on other connections stay.
func TestCloseConn(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	c := sharecoord.New(store, sharecoord.Options{Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}})
	tp := sharecoord.TP{Topic: topic.ID}
	offs := sharecoord.Offsets{End: 10}
	for i, m := range []string{"a", "b"} {
		if r := c.FetchSession("g", m, 0, []sharecoord.TP{tp}, nil, false); r.Err != 0 {
			t.Fatalf("open %s: %d", m, r.Err)
		}
		c.BindSession("g", m, uint64(i+1))
		if f, _ := c.Acquire(ctx, "g", m, tp, 5, offs, readAll(10)); len(f.Acquired) == 0 {
			t.Fatalf("%s acquired nothing", m)
		}
	}
	c.CloseConn(ctx, 1)
	if r := c.AckSession("g", "a", 1); r.Err != kerr.ShareSessionNotFound.Code {
		t.Fatalf("a's session after its connection closed: %d, want SHARE_SESSION_NOT_FOUND", r.Err)
	}
	if r := c.AckSession("g", "b", 1); r.Err != 0 {
		t.Fatalf("b's session on another connection: %d", r.Err)
	}
	if f, _ := c.Acquire(ctx, "g", "b", tp, 10, offs, readAll(10)); acquired(f) != "[0-4 #2]" {
		t.Fatalf("after a's connection closed, b acquired %s, want a's records 0-4 again", acquired(f))
	}
}

// TestLeadershipRegained: an agent leads a share partition, loses it to
// another agent (which hands out and acknowledges records), and gets it
// back. What the other acknowledged must not be handed out again from the
// memory the first kept: once the live agents have changed (the view
// generation moved), the states are read again from the store.
func TestLeadershipRegained(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var gen atomic.Uint64
	opts := sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}, ViewGeneration: gen.Load}
	a := sharecoord.New(store, opts)
	tp := sharecoord.TP{Topic: topic.ID, Partition: 0}
	offs := sharecoord.Offsets{LogStart: 0, End: 10}
	accept := func(c *sharecoord.Coordinator, member string, first, last int64) {
		t.Helper()
		codes := c.Acknowledge(ctx, "g", member, map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: first, Last: last, Types: []sharepart.AckType{sharepart.Accept}}}})
		if codes[tp] != 0 {
			t.Fatalf("%s's ack of %d-%d: %d", member, first, last, codes[tp])
		}
	}
	// a leads: hands out 0-3, acknowledged.
	if f, code := a.Acquire(ctx, "g", "m1", tp, 4, offs, readAll(10)); code != 0 || acquired(f) != "[0-3 #1]" {
		t.Fatalf("a's first acquire: %s, code %d", acquired(f), code)
	}
	accept(a, "m1", 0, 3)
	// An agent joins and leads the partition: it hands out and
	// acknowledges 4-7.
	gen.Add(1)
	b := sharecoord.New(store, opts)
	if f, code := b.Acquire(ctx, "g", "m2", tp, 4, offs, readAll(10)); code != 0 || acquired(f) != "[4-7 #1]" {
		t.Fatalf("b's acquire: %s, code %d", acquired(f), code)
	}
	accept(b, "m2", 4, 7)
	// It dies: the partition is a's again.
	gen.Add(1)
	f, code := a.Acquire(ctx, "g", "m1", tp, 100, offs, readAll(10))
	if code != 0 || acquired(f) != "[8-9 #1]" {
		t.Fatalf("a, leading again, acquired %s (code %d); want only 8-9: 4-7 were acknowledged on b", acquired(f), code)
	}
}

// TestViewsDisagree: while two agents both take themselves for a share
// partition's leader (their views of the live agents disagree), each
// hands out records only once its acquisition is stored at the version
// it last wrote: the one that another agent has written over since gets
// NOT_LEADER_OR_FOLLOWER and no records, so no record is handed out by
// both at one delivery count, and one acknowledged is never handed out
// again. Without the fence the deposed agent handed out, from memory,
// records the other had already handed out.
func TestViewsDisagree(t *testing.T) {
	ctx := t.Context()
	store, topic := setup(t)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := sharecoord.Options{Now: clk.Now, Reset: sharepart.Reset{Kind: sharepart.ResetEarliest}}
	agents := []*sharecoord.Coordinator{sharecoord.New(store, opts), sharecoord.New(store, opts)}
	tp := sharecoord.TP{Topic: topic.ID, Partition: 0}
	offs := sharecoord.Offsets{End: 1000}
	type delivery struct {
		off   int64
		count int16
	}
	delivered := map[delivery]int{} // → agent
	accepted := map[int64]bool{}
	// Both agents load the partition before either hands anything out.
	for i, a := range agents {
		if _, code := a.Acquire(ctx, "g", "init", tp, 0, offs, readAll(1000)); code != 0 {
			t.Fatalf("agent %d: load: %d", i, code)
		}
	}
	refused := 0
	// A fixed schedule: agents take turns, sometimes twice in a row; each
	// accepts half of what it got, through the agent that delivered it.
	schedule := []int{0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0}
	for step, i := range schedule {
		a := agents[i]
		member := fmt.Sprintf("m%d", i)
		f, code := a.Acquire(ctx, "g", member, tp, 4, offs, readAll(1000))
		if code != 0 {
			if code != kerr.NotLeaderForPartition.Code || len(f.Acquired) != 0 {
				t.Fatalf("step %d agent %d: code %d with %s", step, i, code, acquired(f))
			}
			refused++
			continue
		}
		for _, r := range f.Acquired {
			for off := r.First; off <= r.Last; off++ {
				d := delivery{off, r.DeliveryCount}
				if prev, ok := delivered[d]; ok {
					t.Fatalf("step %d: agent %d handed out offset %d at delivery %d, which agent %d had handed out", step, i, off, r.DeliveryCount, prev)
				}
				if accepted[off] {
					t.Fatalf("step %d: agent %d handed out offset %d, accepted before", step, i, off)
				}
				delivered[d] = i
			}
		}
		if len(f.Acquired) == 0 {
			continue
		}
		r := f.Acquired[0]
		codes := a.Acknowledge(ctx, "g", member, map[sharecoord.TP][]sharepart.AckBatch{tp: {{First: r.First, Last: r.First, Types: []sharepart.AckType{sharepart.Accept}}}})
		if codes[tp] == 0 {
			accepted[r.First] = true
		}
	}
	if refused == 0 {
		t.Fatal("no acquisition was refused: the schedule never deposed an agent")
	}
	if len(accepted) == 0 {
		t.Fatal("nothing was accepted")
	}
}
