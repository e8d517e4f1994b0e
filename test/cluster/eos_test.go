package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/floe-io/floe/internal/nemesis"
)

const (
	eosIn      = "eos-in"
	eosOut     = "eos-out"
	eosGroup   = "eos-copiers"
	eosRecords = 20_000
	// eosPoll bounds the records one transaction copies, so that a run
	// is many transactions long and the kills land inside them.
	eosPoll = 250
	// eosTxnMin is the least time a transaction stays open. With at
	// least eosRecords/eosPoll transactions, two members at a time, the
	// copy lasts at least 12 s, longer than the nemesis needs to start
	// two kills (a quiet of at most 4 s, a kill of at most 1.5 s, a
	// quiet of at most 4 s): an unhindered copy took as little as 8 s,
	// and a run with one kill tests little.
	eosTxnMin = 300 * time.Millisecond
)

// TestExactlyOnceUnderKills copies eosRecords records from one topic to
// another with a consume-transform-produce loop in transactions
// (franz-go's GroupTransactSession, two members of one group, each
// transaction producing to several output partitions and committing the
// group's offsets), while a seeded nemesis SIGKILLs the three agents in
// turn and starts them again on their ports: the coordinators of the
// transactional ids and of the group, and the agents the members produce
// through and fetch from, die between and inside transactions, and a new
// owner carries on from the metadata store. Every 4–9 s a member
// abandons its session in the middle of a transaction (its records
// written, no EndTxn), as a crashed application would. A member whose
// session failed or was abandoned starts a new one with the same
// transactional id, whose InitProducerId fences the old producer and
// aborts what it left open.
//
// Afterwards, read back at read_uncommitted with the markers:
//
//   - every transaction ended on every partition, with the same outcome
//     on all of them; every transaction a member was told committed is
//     committed, and every one it was told aborted is aborted;
//   - read_committed returns exactly the committed records, and holds
//     every input record exactly once;
//   - the group's committed offsets are the input's end offsets;
//   - a read_committed consumer that ran throughout never read a record
//     that is not committed.
//
// The agents finalize transaction version 2 (their default), so the
// members run KIP-890 part 2: partitions join a transaction through
// Produce v12, the group's offsets through TxnOffsetCommit v5, and every
// EndTxn (v5) bumps the epoch; the agents' request counters must show
// it. TestExactlyOnceUnderKillsTV1 runs the same with the agents pinned
// to version 1.
//
// On the control plane (FLOE_TEST_CLUSTER_METASTORE=control) the
// nemesis also SIGKILLs the control process leading the vcluster, and
// starts it again standing by.
//
// FLOE_EOS_SEED=N repeats a run's kill schedule (the seed is logged).
func TestExactlyOnceUnderKills(t *testing.T) { exactlyOnceUnderKills(t, 2) }

// TestExactlyOnceUnderKillsTV1 is TestExactlyOnceUnderKills with the
// agents pinned to transaction version 1 (--transaction-version 1):
// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v4, which keeps the
// epoch.
func TestExactlyOnceUnderKillsTV1(t *testing.T) { exactlyOnceUnderKills(t, 1) }

func exactlyOnceUnderKills(t *testing.T, tv int) {
	requireServices(t)
	seed := time.Now().UnixNano() % 1_000_000
	if s := os.Getenv("FLOE_EOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("FLOE_EOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (FLOE_EOS_SEED=%d repeats the kill schedule)", seed, seed)
	e := newEnv(t, "")
	agents := startFixedAgents(t, e, 3, "--transaction-version", strconv.Itoa(tv))
	seeds := fixedAddrs(agents)
	createTopic(t, e.admin(), seeds[0], eosIn, 4)
	createTopic(t, e.admin(), seeds[0], eosOut, 4)
	produceInput(t, seeds, eosIn, eosRecords)
	inEnds := endOffsets(t, seeds, client{}, eosIn)
	tail := startCommittedTail(t, seeds, eosOut)

	began := time.Now()
	members := []*eosMember{newEosMember(t, "m0", seeds), newEosMember(t, "m1", seeds)}
	for _, m := range members {
		go m.run()
	}
	var faults []nemesis.Fault
	for _, a := range agents {
		faults = append(faults, a.killFault())
	}
	if onControlPlane() {
		// The control process leading the vcluster dies too.
		faults = append(faults, e.controlKillFault())
	}
	steps := nemesis.NewSchedule(seed, faults, nemesis.ScheduleOptions{
		Duration: 35 * time.Second,
		QuietMin: 1500 * time.Millisecond, QuietMax: 4 * time.Second,
		ActiveMin: 200 * time.Millisecond, ActiveMax: 1500 * time.Millisecond,
	})
	// Now and then a member's application dies mid-transaction too.
	crashes := nemesis.NewSchedule(seed+1, []nemesis.Fault{members[0].crashFault(), members[1].crashFault()}, nemesis.ScheduleOptions{
		Duration: 35 * time.Second,
		QuietMin: 4 * time.Second, QuietMax: 9 * time.Second,
		ActiveMin: time.Millisecond, ActiveMax: 2 * time.Millisecond,
	})
	nctx, stopNemesis := context.WithCancel(context.Background())
	nemesisDone := make(chan []nemesis.Interval, 2)
	go func() { nemesisDone <- nemesis.Run(nctx, steps, t.Logf) }()
	go func() { nemesisDone <- nemesis.Run(nctx, crashes, t.Logf) }()

	// The copy is done when the group has committed the input's ends.
	copied := waitUntil(75*time.Second, func() bool { return groupCaughtUp(t, seeds, inEnds) })
	copyTook := time.Since(began)
	stopNemesis()
	kills := append(<-nemesisDone, <-nemesisDone...)
	for _, m := range members {
		m.stop()
	}
	var during int
	for _, iv := range kills {
		if iv.Kind == "kill" && iv.Start.Before(began.Add(copyTook)) {
			during++
		}
		if iv.Err != "" {
			t.Errorf("nemesis: %v", iv)
		}
	}
	for _, m := range members {
		m.report(t)
	}
	checkEosVersions(t, agents, tv)
	if !copied {
		t.Fatalf("the group had not committed the input's end offsets %v after %v", inEnds, copyTook.Round(time.Second))
	}
	t.Logf("copy done in %v, with %d agent kills during it", copyTook.Round(time.Millisecond), during)
	if during < 2 {
		t.Errorf("only %d kills landed while the copy ran; the test did not test much", during)
	}

	waitStable(t, seeds, 30*time.Second, eosOut)
	log := readTxnLog(t, seeds, eosOut)
	fates := log.check(t, eosLabel)
	tail.stop()
	tail.check(t, log)
	for _, m := range members {
		m.checkOutcomes(t, fates)
	}
	seen := map[string]int{}
	for _, vs := range log.readCommitted {
		for _, v := range vs {
			in, _, _ := strings.Cut(v, "|")
			seen[in]++
		}
	}
	bad := 0
	for i := range eosRecords {
		if n := seen[inputValue(i)]; n != 1 {
			if bad++; bad <= 10 {
				t.Errorf("input record %s is in the output %d times (read_committed)", inputValue(i), n)
			}
		}
	}
	if len(seen) != eosRecords {
		t.Errorf("the output holds %d distinct records, want %d", len(seen), eosRecords)
	}
	count := map[fate]int{}
	for _, f := range fates {
		count[f]++
	}
	t.Logf("output: %d transactions committed, %d aborted; %d input records copied exactly once, %d not",
		count[committed], count[aborted], eosRecords-bad, bad)
	if offs := groupOffsets(t, seeds); !maps.Equal(offs, inEnds) {
		t.Errorf("the group's committed offsets %v, the input's end offsets %v", offs, inEnds)
	}
}

func inputValue(i int) string { return fmt.Sprintf("in-%05d", i) }

// eosLabel is the transaction an output value was produced in: the
// member, its session and the transaction's number in it.
func eosLabel(v string) string {
	_, label, _ := strings.Cut(v, "|")
	return label
}

// produceInput writes n records, inputValue(0..n-1), round robin.
func produceInput(t *testing.T, seeds []string, topic string, n int) {
	t.Helper()
	start := time.Now()
	// Produce v11 at most, so that every Produce v12+ the agents count
	// is a transactional one (the version check below).
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(0, 11)
	cl := client{}.newClient(t, seeds, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(20*time.Millisecond), kgo.MaxVersions(versions))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
	)
	for i := range n {
		cl.Produce(ctx, kgo.StringRecord(inputValue(i)), func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("produce the input: %v", err)
	}
	if first != nil {
		t.Fatalf("produce the input: %v", first)
	}
	t.Logf("produced %d input records in %v", n, time.Since(start).Round(time.Millisecond))
}

// groupOffsets returns the eos group's committed offsets.
func groupOffsets(t *testing.T, seeds []string) map[tp]int64 {
	t.Helper()
	cl := client{}.newClient(t, seeds)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, eosGroup)
	if err != nil {
		return nil
	}
	out := map[tp]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			out[tp{o.Topic, o.Partition}] = o.At
		}
	})
	return out
}

func groupCaughtUp(t *testing.T, seeds []string, ends map[tp]int64) bool {
	offs := groupOffsets(t, seeds)
	for x, e := range ends {
		if offs[x] != e {
			return false
		}
	}
	return true
}

// eosMember is one member of the copying group: GroupTransactSessions
// one after another, each until it fails.
type eosMember struct {
	t     *testing.T
	name  string
	seeds []string
	quit  chan struct{}
	done  chan struct{}
	crash chan struct{} // abandon the session in its next transaction
	logs  *nemesis.OutputBuffer

	mu       sync.Mutex
	sessions int
	outcomes map[string]fate // label → what End said (committed or aborted)
	unsure   map[string]error
	copied   int            // records in transactions End said committed
	crashes  int            // sessions abandoned mid-transaction
	failures map[string]int // why sessions ended
}

func newEosMember(t *testing.T, name string, seeds []string) *eosMember {
	m := &eosMember{t: t, name: name, seeds: seeds, quit: make(chan struct{}), done: make(chan struct{}), crash: make(chan struct{}, 1),
		logs: &nemesis.OutputBuffer{}, outcomes: map[string]fate{}, unsure: map[string]error{}, failures: map[string]int{}}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() || verbose() {
			t.Logf("member %s's client log:\n%s", m.name, m.logs.Tail(60))
		}
	})
	return m
}

func (m *eosMember) stopping() bool {
	select {
	case <-m.quit:
		return true
	default:
		return false
	}
}

// crashFault is the nemesis's fault that makes the member abandon its
// session in the middle of its next transaction, as if its process died,
// and start another.
func (m *eosMember) crashFault() nemesis.Fault {
	return nemesis.New("crash", m.name,
		func(context.Context) error {
			select {
			case m.crash <- struct{}{}:
			default:
			}
			return nil
		},
		func(context.Context) error { return nil })
}

// stop asks the member to stop after the transaction it is in, and waits.
func (m *eosMember) stop() {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
}

func (m *eosMember) run() {
	defer close(m.done)
	for session := 0; !m.stopping(); session++ {
		m.mu.Lock()
		m.sessions++
		m.mu.Unlock()
		if why := m.session(session); why != "" {
			m.mu.Lock()
			m.failures[why]++
			m.mu.Unlock()
		}
	}
}

// session runs one GroupTransactSession until it fails (returning why)
// or the member stops.
func (m *eosMember) session(n int) string {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(m.seeds...),
		kgo.ClientID("eos-"+m.name),
		kgo.TransactionalID("eos-"+m.name),
		kgo.TransactionTimeout(20*time.Second),
		kgo.ConsumerGroup(eosGroup),
		kgo.ConsumeTopics(eosIn),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.DefaultProduceTopic(eosOut),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.MetadataMaxAge(2*time.Second),
		kgo.RetryBackoffFn(txnBackoff),
		kgo.WithLogger(kgo.BasicLogger(m.logs, kgo.LogLevelWarn, func() string {
			return fmt.Sprintf("%s [%s s%d] ", time.Now().Format("15:04:05.000"), m.name, n)
		})),
	)
	if err != nil {
		return "new session: " + err.Error()
	}
	defer sess.Close()
	// As an application's initTransactions: the new producer fences the
	// last session's and aborts whatever it left open, before anything
	// is read.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := sess.Client().ProducerID(ctx)
		cancel()
		if err == nil {
			break
		}
		if m.stopping() {
			return ""
		}
		fmt.Fprintf(m.logs, "%s [%s s%d] producer id: %v\n", time.Now().Format("15:04:05.000"), m.name, n, err)
	}
	for txn := 0; !m.stopping(); txn++ {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := sess.PollRecords(ctx, eosPoll)
		cancel()
		if fs.IsClientClosed() {
			return "client closed"
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return "begin: " + err.Error()
		}
		opened := time.Now()
		label := fmt.Sprintf("%s.s%d.t%d", m.name, n, txn)
		records := 0
		fs.EachRecord(func(r *kgo.Record) {
			records++
			out := &kgo.Record{Key: r.Value, Value: []byte(string(r.Value) + "|" + label)}
			sess.Produce(context.Background(), out, nil)
		})
		time.Sleep(time.Until(opened.Add(eosTxnMin)))
		select {
		case <-m.crash:
			// The application dies mid-transaction: its records are
			// written, its transaction open, and the next session's
			// producer must abort it.
			ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
			err := sess.Client().Flush(ctx)
			cancel()
			m.mu.Lock()
			if err == nil {
				m.outcomes[label] = aborted
			}
			m.crashes++
			m.mu.Unlock()
			return "crashed mid-transaction"
		default:
		}
		ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
		ok, err := sess.End(ctx, kgo.TryCommit)
		cancel()
		m.mu.Lock()
		switch {
		case err != nil:
			m.unsure[label] = err
		case ok:
			m.outcomes[label] = committed
			m.copied += records
		default:
			m.outcomes[label] = aborted
		}
		m.mu.Unlock()
		if err != nil {
			return "end: " + shortErr(err)
		}
	}
	return ""
}

func (m *eosMember) report(t *testing.T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, a := 0, 0
	for _, f := range m.outcomes {
		if f == committed {
			c++
		} else {
			a++
		}
	}
	var why []string
	for w, n := range m.failures {
		why = append(why, fmt.Sprintf("%d× %s", n, w))
	}
	slices.Sort(why)
	t.Logf("member %s: %d sessions, %d transactions committed (%d records), %d aborted (%d of them abandoned by a crash), %d ended with an error; sessions ended by: %v",
		m.name, m.sessions, c, m.copied, a, m.crashes, len(m.unsure), why)
}

// checkOutcomes compares what End told the member with the log.
func (m *eosMember) checkOutcomes(t *testing.T, fates map[string]fate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for label, told := range m.outcomes {
		got, ok := fates[label]
		switch {
		case !ok && told == committed:
			t.Errorf("transaction %s: End said committed, but none of its records is in the output", label)
		case ok && got != told:
			t.Errorf("transaction %s: End said %s, the log says %s", label, told, got)
		}
	}
	for label, err := range m.unsure {
		if f, ok := fates[label]; ok {
			t.Logf("transaction %s: End failed (%v); the log says %s", label, err, f)
		}
	}
}

// shortErr names an error by its Kafka code if it has one.
func shortErr(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// checkEosVersions checks, on the agents' request counters (of the
// processes running now: a kill resets them), that the members used
// transaction version tv: EndTxn v5, Produce v12 and TxnOffsetCommit v5
// under 2, and no AddOffsetsToTxn after the first transaction of a
// session; EndTxn v4 and AddPartitionsToTxn, never v5 or v12, under 1.
func checkEosVersions(t *testing.T, agents []*fixedAgent, tv int) {
	t.Helper()
	// count sums the requests of api at version ("": any version).
	count := func(api, version string) float64 {
		labels := []string{"api", api}
		if version != "" {
			labels = append(labels, "version", version)
		}
		total := 0.0
		for _, a := range agents {
			m, err := a.metrics()
			if err != nil {
				t.Logf("metrics of agent %s: %v", a.Name, err)
				continue
			}
			total += m.sum("floe_api_requests_total", labels...)
			for _, g := range a.gone {
				total += g.sum("floe_api_requests_total", labels...)
			}
		}
		return total
	}
	end4, end5 := count("EndTxn", "4"), count("EndTxn", "5")
	// Produce v12 and v13 (topic IDs) both add partitions themselves.
	p11, p12 := count("Produce", "11"), count("Produce", "12")+count("Produce", "13")
	adds, offsets := count("AddPartitionsToTxn", ""), count("AddOffsetsToTxn", "")
	commit5 := count("TxnOffsetCommit", "5")
	t.Logf("requests the agents answered (their killed processes' as scraped before each kill): EndTxn v4 %.0f v5 %.0f, Produce v11 %.0f v12+ %.0f, AddPartitionsToTxn %.0f, AddOffsetsToTxn %.0f, TxnOffsetCommit v5 %.0f",
		end4, end5, p11, p12, adds, offsets, commit5)
	switch tv {
	case 2:
		if end5 == 0 || p12 == 0 || commit5 == 0 {
			t.Errorf("transaction version 2: EndTxn v5 %.0f, Produce v12+ %.0f, TxnOffsetCommit v5 %.0f; want some of each", end5, p12, commit5)
		}
		// A session that began a transaction before its client had
		// talked to any agent runs that one under version 1 (franz-go
		// decides at BeginTransaction), never more.
		if end4 > end5/4 || offsets > end4 {
			t.Errorf("transaction version 2: EndTxn v4 %.0f against v5 %.0f, AddOffsetsToTxn %.0f", end4, end5, offsets)
		}
	default:
		if end5 != 0 || p12 != 0 || commit5 != 0 || end4 == 0 || adds == 0 || offsets == 0 {
			t.Errorf("transaction version 1: EndTxn v4 %.0f v5 %.0f, Produce v12+ %.0f, TxnOffsetCommit v5 %.0f, AddPartitionsToTxn %.0f, AddOffsetsToTxn %.0f",
				end4, end5, p12, commit5, adds, offsets)
		}
	}
}
