package compat

// Consumer groups with franz-go: rebalances under churn with eager and
// cooperative assignors, static membership, rebalance time, lag metrics.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// groupAgentOptions start agents with group settings fit for tests: a
// short initial rebalance delay and session timeouts down to 1s.
func groupAgentOptions() agenttest.Options {
	return agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 200 * time.Millisecond
		c.Groups.Groups.MinSessionTimeout = time.Second
		c.Groups.LagInterval = 500 * time.Millisecond
	}}
}

// produceN produces n records spread over the partitions of topic and
// returns the end offset of each partition.
func produceSpread(t *testing.T, ctx context.Context, addr, topic string, partitions int32, n int) map[int32]int64 {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ends := map[int32]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		p := int32(i) % partitions
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "v%d", i)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
			mu.Unlock()
		})
	}
	wg.Wait()
	return ends
}

// consumedLog records which member consumed which offsets.
type consumedLog struct {
	mu    sync.Mutex
	seen  map[string]int // "partition/offset" → times consumed
	dups  int
	total int
}

func newConsumedLog() *consumedLog { return &consumedLog{seen: map[string]int{}} }

func (l *consumedLog) add(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
	l.seen[k]++
	if l.seen[k] > 1 {
		l.dups++
	}
	l.total++
}

func (l *consumedLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// member is a franz-go group consumer that processes and commits every
// poll before letting a rebalance through (BlockRebalanceOnPoll), so a
// clean run consumes nothing twice.
type groupMember struct {
	cl      *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}
	first   chan struct{} // closed at the first record
	records int
	stopped sync.Once
}

func startMember(t *testing.T, addr, group, topic string, log *consumedLog, opts ...kgo.Opt) *groupMember {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(20 * time.Second), kgo.FetchMaxWait(200 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{cl: cl, cancel: cancel, done: make(chan struct{}), first: make(chan struct{})}
	// A test that fails before stopping its members still stops them
	// before it ends: the poll loop logs through t, and a log after the
	// test has returned panics the whole package.
	t.Cleanup(m.stop)
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				cl.AllowRebalance()
				return
			}
			fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if m.records == 0 {
					close(m.first)
				}
				m.records++
				log.add(r)
			})
			if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
				t.Logf("commit: %v", err)
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

// stop leaves the group cleanly: the poll loop ends after committing.
// Calls after the first do nothing.
func (m *groupMember) stop() {
	m.stopped.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close()
	})
}

func describeGroup(t *testing.T, ctx context.Context, admin *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	d, err := admin.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	g := d[group]
	if g.Err != nil {
		t.Fatalf("describe %s: %v", group, g.Err)
	}
	return g
}

// TestGroupChurn: 4 franz-go members over 16 partitions, with members
// joining and leaving while records are produced and consumed, for an
// eager and a cooperative assignor. Every record is consumed, none twice
// (every poll is committed before a rebalance may proceed), and the
// committed offsets end at the end of every partition.
func TestGroupChurn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"eager-roundrobin", kgo.RoundRobinBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) { testGroupChurn(t, tc.balancer) })
	}
}

func testGroupChurn(t *testing.T, balancer kgo.GroupBalancer) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	const topic, group, partitions = "churn", "churn-group", 16
	createTopic(t, ctx, a.Addr(), topic, partitions)

	// Records arrive for about 3 seconds while the membership changes.
	ends := map[int32]int64{}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for range 30 {
			for p, o := range produceSpread(t, ctx, a.Addr(), topic, partitions, 400) {
				ends[p] = max(ends[p], o)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	log := newConsumedLog()
	start := func() *groupMember { return startMember(t, a.Addr(), group, topic, log, kgo.Balancers(balancer)) }
	members := []*groupMember{start(), start()}
	time.Sleep(500 * time.Millisecond)
	members = append(members, start(), start())
	time.Sleep(700 * time.Millisecond)
	members[0].stop() // one leaves, another joins
	members = append(members[1:], start())
	time.Sleep(700 * time.Millisecond)
	members[1].stop()
	members = append(members[:1], members[2:]...)
	<-produced
	var total int
	for _, o := range ends {
		total += int(o)
	}
	testutil.WaitFor(t, 60*time.Second, "every record consumed", func() bool { return log.distinct() == total })
	g := describeGroup(t, ctx, admin, group)
	if g.State != "Stable" || len(g.Members) != 3 {
		t.Errorf("group %s with %d members, want Stable with 3", g.State, len(g.Members))
	}
	for _, m := range members {
		m.stop()
	}
	if log.dups != 0 {
		t.Errorf("%d records consumed twice (of %d)", log.dups, log.total)
	}
	offs, err := admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.At != end {
			t.Errorf("partition %d: committed %+v, want %d", p, o, end)
		}
	}
	if d := describeGroup(t, ctx, admin, group); d.State != "Empty" {
		t.Errorf("after every member left: %s, want Empty", d.State)
	}
}

// TestGroupStaticRestart: static members (group.instance.id, KIP-345)
// restart one after the other, leader included, without a rebalance: the
// generation stays the same, each restarted member gets its previous
// assignment back and consumes what is produced next.
func TestGroupStaticRestart(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	const topic, group, partitions = "static", "static-group", 6
	createTopic(t, ctx, a.Addr(), topic, partitions)
	log := newConsumedLog()
	start := func(i int) *groupMember {
		return startMember(t, a.Addr(), group, topic, log, kgo.Balancers(kgo.RangeBalancer()),
			kgo.InstanceID(fmt.Sprintf("static-%d", i)))
	}
	members := []*groupMember{start(0), start(1), start(2)}
	total := 0
	for _, o := range produceSpread(t, ctx, a.Addr(), topic, partitions, 600) {
		total += int(o)
	}
	testutil.WaitFor(t, 30*time.Second, "first records consumed", func() bool { return log.distinct() == total })
	generation := func(m *groupMember) int32 {
		_, gen := m.cl.GroupMetadata()
		return gen
	}
	gen := generation(members[0])
	if gen <= 0 || generation(members[1]) != gen || generation(members[2]) != gen {
		t.Fatalf("generations %d %d %d", gen, generation(members[1]), generation(members[2]))
	}
	before := describeGroup(t, ctx, admin, group)
	for i := range members {
		members[i].stop() // a static member does not leave the group on close
		members[i] = start(i)
		for _, o := range produceSpread(t, ctx, a.Addr(), topic, partitions, 60) {
			total = max(total, int(o)) // recomputed below
		}
		total = 0
		ends, err := admin.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("records consumed after restart %d", i), func() bool { return log.distinct() == total })
		if g := generation(members[i]); g != gen {
			t.Errorf("restart of static-%d: generation %d, want %d (no rebalance)", i, g, gen)
		}
		d := describeGroup(t, ctx, admin, group)
		if d.State != "Stable" || len(d.Members) != 3 {
			t.Errorf("after restart %d: %s with %d members", i, d.State, len(d.Members))
		}
	}
	after := describeGroup(t, ctx, admin, group)
	assigned := func(g kadm.DescribedGroup) map[string]string {
		out := map[string]string{}
		for _, m := range g.Members {
			if ca, ok := m.Assigned.AsConsumer(); ok {
				out[*m.InstanceID] = fmt.Sprint(ca.Topics)
			}
		}
		return out
	}
	if b, a := assigned(before), assigned(after); fmt.Sprint(b) != fmt.Sprint(a) {
		t.Errorf("assignments changed across restarts:\n before %v\n after  %v", b, a)
	}
	for _, m := range members {
		if g := generation(m); g != gen {
			t.Errorf("generation %d, want %d", g, gen)
		}
		m.stop()
	}
	if log.dups != 0 {
		t.Errorf("%d records consumed twice", log.dups)
	}
}

// TestGroupRebalanceTime measures, for 4 franz-go members started
// together over 16 partitions holding records, the time from their start
// to the first record each one fetches (with a 200ms
// group.initial.rebalance.delay; Kafka's default is 3s).
func TestGroupRebalanceTime(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group, partitions = "rebalance-time", "rebalance-time-group", 16
	createTopic(t, ctx, a.Addr(), topic, partitions)
	produceSpread(t, ctx, a.Addr(), topic, partitions, 1600)
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{{"range", kgo.RangeBalancer()}, {"cooperative-sticky", kgo.CooperativeStickyBalancer()}} {
		log := newConsumedLog()
		begin := time.Now()
		var members []*groupMember
		for range 4 {
			members = append(members, startMember(t, a.Addr(), group+"-"+tc.name, topic, log, kgo.Balancers(tc.balancer)))
		}
		var slowest time.Duration
		for i, m := range members {
			select {
			case <-m.first:
				slowest = max(slowest, time.Since(begin))
			case <-ctx.Done():
				t.Fatalf("member %d never fetched", i)
			}
		}
		t.Logf("rebalance time, 4 members, %s: join to first fetch of the last member %v", tc.name, slowest.Round(time.Millisecond))
		if slowest > 10*time.Second {
			t.Errorf("rebalance took %v", slowest)
		}
		for _, m := range members {
			m.stop()
		}
	}
}
