package cluster

// Reading the log back, and a consumer group that records what each
// member consumed and committed.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/nemesis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// endOffsets lists the high watermark of every partition of topics.
func endOffsets(t *testing.T, seeds []string, c client, topics ...string) map[tp]int64 {
	t.Helper()
	cl := c.newClient(t, seeds)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := map[tp]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[tp{o.Topic, o.Partition}] = o.Offset })
	return out
}

// readLog reads every partition of topics from 0 to its high watermark
// through seeds as c (whose client id names the zone, if any) and checks
// that offsets are contiguous.
func readLog(t *testing.T, seeds []string, c client, timeout time.Duration, topics ...string) consumedLog {
	t.Helper()
	start := time.Now()
	hwm := endOffsets(t, seeds, c, topics...)
	assign := map[string]map[int32]kgo.Offset{}
	log := consumedLog{}
	remaining := 0
	for x, h := range hwm {
		if assign[x.topic] == nil {
			assign[x.topic] = map[int32]kgo.Offset{}
		}
		assign[x.topic][x.partition] = kgo.NewOffset().At(0)
		log[x] = make([]string, 0, h)
		if h > 0 {
			remaining++
		}
	}
	cl := c.newClient(t, seeds, kgo.ConsumePartitions(assign), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var p problems
	for remaining > 0 && len(p.list) == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			for x, h := range hwm {
				if int64(len(log[x])) < h {
					p.add("%s: read %d of %d records in %v", x, len(log[x]), h, timeout)
				}
			}
			break
		}
		fs.EachError(func(topic string, part int32, err error) {
			p.add("fetch %s/%d: %v", topic, part, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			x := tp{r.Topic, r.Partition}
			next := int64(len(log[x]))
			if next >= hwm[x] {
				return // written after the end offsets were listed
			}
			if r.Offset != next {
				p.add("%s: offset %d follows %d (offsets must be contiguous from 0)", x, r.Offset, next-1)
			}
			log[x] = append(log[x], string(r.Value))
			if int64(len(log[x])) == hwm[x] {
				remaining--
			}
		})
	}
	for _, s := range p.list {
		t.Errorf("reading the log: %s", s)
	}
	if len(p.list) > 0 {
		t.FailNow()
	}
	n := 0
	for _, vs := range log {
		n += len(vs)
	}
	t.Logf("read back %d records of %d partitions in %v", n, len(log), time.Since(start).Round(time.Millisecond))
	return log
}

// verifyLog reads the whole log and checks it against the ledger.
func verifyLog(t *testing.T, seeds []string, c client, led *ledger, topics ...string) consumedLog {
	t.Helper()
	led.report(t)
	log := readLog(t, seeds, c, 60*time.Second, topics...)
	for _, s := range checkLog(log, led) {
		t.Errorf("log: %s", s)
	}
	return log
}

// delivery is one record a group member consumed.
type delivery struct {
	member  int
	session int // the member's assignment of the partition it came in
	offset  int64
	value   string
}

// groupTracker records, per partition, every delivery to every member,
// the sessions (a member's ownership of a partition, from assignment to
// revocation) and the commits, to check the group against committed-offset
// semantics: a member that takes over a partition starts exactly at its
// last committed offset, so a record is consumed twice only if its
// commit failed.
type groupTracker struct {
	mu         sync.Mutex
	sessions   int
	deliveries map[tp][]delivery
	open       map[int]map[tp]int // member → partition → open session
	maxSeen    map[tp]int64       // highest offset delivered
	started    map[int]bool       // sessions that delivered a record
	committed  map[tp]int64       // highest offset committed successfully
	attempted  map[tp]int64       // highest offset a commit was sent for
	unsure     map[tp]bool        // a commit above committed failed
	problems   problems
	commits    int
	failures   map[string]int // commit failures by error
	dupes      int            // deliveries of an offset delivered before
	explained  int            // of which after a failed commit
	restarts   int            // sessions that started past offset 0
	lost       int            // OnPartitionsLost calls
	assigned   int            // OnPartitionsAssigned calls with partitions
}

func newGroupTracker() *groupTracker {
	return &groupTracker{
		deliveries: map[tp][]delivery{}, open: map[int]map[tp]int{}, maxSeen: map[tp]int64{}, started: map[int]bool{},
		committed: map[tp]int64{}, attempted: map[tp]int64{}, unsure: map[tp]bool{}, failures: map[string]int{},
	}
}

func (g *groupTracker) assign(member int, parts map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[member] == nil {
		g.open[member] = map[tp]int{}
	}
	for topic, ps := range parts {
		for _, p := range ps {
			g.sessions++
			g.open[member][tp{topic, p}] = g.sessions
		}
	}
	if len(parts) > 0 {
		g.assigned++
	}
}

func (g *groupTracker) revoke(member int, parts map[string][]int32, lost bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if lost {
		g.lost++
	}
	for topic, ps := range parts {
		for _, p := range ps {
			delete(g.open[member], tp{topic, p})
		}
	}
}

// deliver records the records of one poll and checks each session's
// start and contiguity.
func (g *groupTracker) deliver(member int, rs []*kgo.Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range rs {
		x := tp{r.Topic, r.Partition}
		session, ok := g.open[member][x]
		if !ok {
			g.problems.add("member %d got %s offset %d without owning the partition", member, x, r.Offset)
			continue
		}
		ds := g.deliveries[x]
		if !g.started[session] {
			g.started[session] = true
			// The first record of a session: consumption (re)starts at
			// the committed offset. Only a commit that failed may leave
			// it lower than the last one attempted.
			committed, attempted := g.committed[x], g.attempted[x]
			switch {
			case r.Offset < committed:
				g.problems.add("%s: member %d started at offset %d, below the committed offset %d (records consumed again although committed)", x, member, r.Offset, committed)
			case r.Offset > max(attempted, committed):
				g.problems.add("%s: member %d started at offset %d, past every commit (%d): records skipped", x, member, r.Offset, max(attempted, committed))
			case r.Offset != committed && !g.unsure[x]:
				g.problems.add("%s: member %d started at offset %d, committed offset %d", x, member, r.Offset, committed)
			}
			if r.Offset > 0 {
				g.restarts++
			}
		} else if last := lastOf(ds, session); last >= 0 && r.Offset != last+1 {
			g.problems.add("%s: member %d got offset %d after %d in one session (gap or reorder)", x, member, r.Offset, last)
		}
		// Sessions are contiguous and start no later than the end of
		// the previous one, so an offset at or below the highest
		// delivered one was delivered before.
		if maxSeen, ok := g.maxSeen[x]; ok && r.Offset <= maxSeen {
			g.dupes++
			if g.unsure[x] || r.Offset >= g.committed[x] {
				g.explained++
			}
		} else {
			g.maxSeen[x] = r.Offset
		}
		g.deliveries[x] = append(ds, delivery{member: member, session: session, offset: r.Offset, value: string(r.Value)})
	}
}

func lastOf(ds []delivery, session int) int64 {
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].session == session {
			return ds[i].offset
		}
	}
	return -1
}

// commitDone records a commit's outcome per partition.
func (g *groupTracker) commitDone(req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.commits++
	codes := map[tp]int16{}
	if err == nil && resp != nil {
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				codes[tp{rt.Topic, rp.Partition}] = rp.ErrorCode
			}
		}
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			x := tp{rt.Topic, rp.Partition}
			g.attempted[x] = max(g.attempted[x], rp.Offset)
			code, answered := codes[x]
			switch {
			case err != nil:
				g.failures[err.Error()]++
				g.unsure[x] = true
			case !answered:
				g.failures["no answer for the partition"]++
				g.unsure[x] = true
			case code != 0:
				g.failures[fmt.Sprintf("error code %d", code)]++
				g.unsure[x] = true
			default:
				if rp.Offset < g.committed[x] {
					g.problems.add("%s: commit of offset %d after %d (committed offsets went back)", x, rp.Offset, g.committed[x])
				}
				g.committed[x] = max(g.committed[x], rp.Offset)
				if g.committed[x] >= g.attempted[x] {
					g.unsure[x] = false
				}
			}
		}
	}
}

// caughtUp reports whether the committed offsets reached hwm everywhere.
func (g *groupTracker) caughtUp(hwm map[tp]int64) (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range sortedTPs(hwm) {
		if g.committed[x] < hwm[x] {
			return false, fmt.Sprintf("%s committed %d of %d", x, g.committed[x], hwm[x])
		}
	}
	return true, ""
}

// waitCaughtUp waits, up to 60 s, for the committed offsets to reach hwm
// everywhere, and fails the test if they do not.
func (g *groupTracker) waitCaughtUp(t *testing.T, hwm map[tp]int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, behind := g.caughtUp(hwm)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group not caught up 60s after the load stopped: %s", behind)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check compares the group's deliveries with the log: every record
// consumed, in log order, and consumed again only past the committed
// offset (after a failed commit).
func (g *groupTracker) check(t *testing.T, log consumedLog) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	consumed := 0
	for _, x := range sortedTPs(log) {
		seen := make([]bool, len(log[x]))
		for _, d := range g.deliveries[x] {
			consumed++
			if d.offset >= int64(len(log[x])) {
				g.problems.add("%s: consumed offset %d beyond the log's end %d", x, d.offset, len(log[x]))
				continue
			}
			if log[x][d.offset] != d.value {
				g.problems.add("%s offset %d: consumed %.40q, the log holds %.40q", x, d.offset, d.value, log[x][d.offset])
			}
			seen[d.offset] = true
		}
		missing := 0
		for off, ok := range seen {
			if !ok {
				if missing++; missing <= 3 {
					g.problems.add("%s offset %d (%.40q) never consumed by the group", x, off, log[x][off])
				}
			}
		}
		if missing > 3 {
			g.problems.add("%s: %d records never consumed by the group", x, missing)
		}
	}
	for _, s := range g.problems.list {
		t.Errorf("consumer group: %s", s)
	}
	t.Logf("consumer group: %d deliveries in %d sessions (%d assignments, %d restarts past offset 0, %d lost), %d commits (failures: %v); %d records consumed twice, %d of them after a failed commit",
		consumed, g.sessions, g.assigned, g.restarts, g.lost, g.commits, g.failures, g.dupes, g.explained)
	if g.dupes > g.explained {
		t.Errorf("consumer group: %d records consumed again although their offsets were committed", g.dupes-g.explained)
	}
}

// groupMember is one franz-go group member that polls, records and
// commits synchronously before it lets a rebalance proceed
// (BlockRebalanceOnPoll), so its commits and its deliveries never race a
// revocation.
type groupMember struct {
	id     int
	cl     *kgo.Client
	tr     *groupTracker
	cancel context.CancelFunc
	done   chan struct{}
	logs   *nemesis.OutputBuffer
	errs   map[string]int
}

// startMember starts member id of group, connecting as c through seed.
func startMember(t *testing.T, tr *groupTracker, id int, c client, seed, group string, topics ...string) *groupMember {
	t.Helper()
	m := &groupMember{id: id, tr: tr, done: make(chan struct{}), logs: &nemesis.OutputBuffer{}, errs: map[string]int{}}
	cl, err := kgo.NewClient(append(c.opts(t, seed),
		kgo.ClientID(fmt.Sprintf("member-%d", id)),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(15*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.MetadataMaxAge(2*time.Second),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { tr.assign(id, ps) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			m.commit(ctx, cl, cl.UncommittedOffsets())
			tr.revoke(id, ps, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { tr.revoke(id, ps, true) }),
		kgo.WithLogger(kgo.BasicLogger(m.logs, kgo.LogLevelWarn, func() string { return fmt.Sprintf("[member %d] ", id) })),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(ctx)
	t.Cleanup(func() {
		m.close()
		if t.Failed() || verbose() {
			if s := m.logs.String(); s != "" {
				t.Logf("member %d franz-go log:\n%s", id, s)
			}
		}
	})
	return m
}

func (m *groupMember) run(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollRecords(ctx, 2000)
		if ctx.Err() != nil {
			m.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			m.errs[fmt.Sprintf("%s/%d: %v", topic, p, err)]++
		})
		rs := fs.Records()
		if len(rs) > 0 {
			m.tr.deliver(m.id, rs)
			offsets := map[string]map[int32]kgo.EpochOffset{}
			for _, r := range rs {
				if offsets[r.Topic] == nil {
					offsets[r.Topic] = map[int32]kgo.EpochOffset{}
				}
				offsets[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			m.commit(cctx, m.cl, offsets)
			cancel()
		}
		m.cl.AllowRebalance()
	}
}

func (m *groupMember) commit(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) {
	if len(offsets) == 0 {
		return
	}
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		m.tr.commitDone(req, resp, err)
	})
}

// close stops polling and leaves the group (the revocation commits what is
// left), once.
func (m *groupMember) close() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cl.Close()
	m.cancel = nil
}
