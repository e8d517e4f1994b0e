package cluster

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/kproxy"
	"github.com/floe-io/floe/internal/nemesis"
	"github.com/floe-io/floe/internal/recordbatch"
)

const (
	cpTopic      = "txn-crash"
	cpPartitions = 6
)

// TestTransactionCrashPoints crashes a transaction's agents and its
// metadata database at chosen steps between InitProducerId and the end of
// EndTxn, one franz-go transactional producer per scenario, on three
// agents over a PostgreSQL server of the test's own and versitygw. The
// steps inside the metadata store are reached deterministically: a
// trigger in the test's database holds the store transaction at the
// statement named (stall_test.go) while the test kills.
//
//   - the coordinator of the transactional id is SIGKILLed mid-transaction
//     (after InitProducerId and some produces), and the producer goes on
//     with a new owner;
//   - the agent committing a transactional batch (the partition's leader)
//     is SIGKILLed with the commit open in the database, and the producer
//     retries elsewhere;
//   - the coordinator is SIGKILLed inside EndTxn's store transaction,
//     after it uploaded the markers (commit, and abort), and the producer's
//     retry ends the transaction through a new owner;
//   - the coordinator and the producer's application both die inside
//     EndTxn's store transaction (a commit): a new instance of the
//     transactional id must abort the transaction on every partition;
//   - PostgreSQL is restarted (immediate stop: a crash) inside EndTxn's
//     store transaction, and inside a transactional batch's commit;
//   - EndTxn's store transaction commits but its answer is lost (the
//     client is cut off from the coordinator by a Kafka proxy first), and
//     the coordinator is then SIGKILLed: the retry through a new owner is
//     answered as the success it was;
//   - the coordinator is SIGKILLed mid-transaction and the producer
//     abandoned; a new instance of the transactional id fences it, and
//     the old one can neither produce nor commit.
//
// While EndTxn is held open, the last stable offset of every partition of
// the transaction must stay at or below its first record, and a
// read_committed consumer, running throughout, must see none of it. At
// the end, every transaction must be committed or aborted as a whole, as
// its client was told, and read_committed must return exactly the
// committed records (txnlog_test.go).
//
// On the control plane (FLOE_TEST_CLUSTER_METASTORE=control) the steps
// inside a PostgreSQL store transaction do not exist: the database holds
// only the journal, and a command is applied whole in memory. There the
// scenarios that hold one open are skipped, and one of the control
// plane's own runs instead: the control leader SIGKILLed mid-transaction
// and again while EndTxn is in flight.
func TestTransactionCrashPoints(t *testing.T) {
	requireServices(t)
	pg := startPostgres(t)
	e := newEnv(t, pg.url())
	agents := startFixedAgents(t, e, 3)
	seeds := fixedAddrs(agents)
	createTopic(t, e.admin(), seeds[0], cpTopic, cpPartitions)
	proxy, proxied := startKafkaProxy(t, seeds)
	c := &crashPoints{t: t, e: e, pg: pg, agents: agents, seeds: seeds, proxy: proxy, proxied: proxied,
		tail: startCommittedTail(t, seeds, cpTopic), want: map[string]fate{}}
	if !onControlPlane() {
		c.stall = installStall(t, e.pgURL)
	}
	for _, sc := range []struct {
		name string
		run  func(name string)
		// inStore: the scenario holds a PostgreSQL store transaction
		// open (stall_test.go); control: it kills the control plane.
		inStore, control bool
	}{
		{name: "coordinator-killed-mid-txn", run: c.coordinatorKilledMidTxn},
		{name: "leader-killed-in-produce-commit", run: c.leaderKilledInProduceCommit, inStore: true},
		{name: "coordinator-killed-in-end-commit", run: func(name string) { c.coordinatorKilledInEnd(name, true) }, inStore: true},
		{name: "coordinator-killed-in-end-abort", run: func(name string) { c.coordinatorKilledInEnd(name, false) }, inStore: true},
		{name: "coordinator-and-producer-killed-in-end", run: c.bothKilledInEnd, inStore: true},
		{name: "db-restart-in-end", run: c.dbRestartInEnd, inStore: true},
		{name: "db-restart-in-produce-commit", run: c.dbRestartInProduceCommit, inStore: true},
		{name: "answer-lost-after-end", run: c.answerLostAfterEnd, inStore: true},
		{name: "zombie-fenced-after-coordinator-kill", run: c.zombieFenced},
		{name: "control-leader-killed-mid-txn-and-in-end", run: c.controlLeaderKilled, control: true},
	} {
		if onControlPlane() && sc.inStore {
			t.Logf("%s: skipped on the control plane (no store transaction to hold open)", sc.name)
			continue
		}
		if !onControlPlane() && sc.control {
			continue
		}
		c.settle()
		start := time.Now()
		sc.run(sc.name)
		t.Logf("%s: done in %v", sc.name, time.Since(start).Round(time.Millisecond))
	}

	waitStable(t, seeds, 30*time.Second, cpTopic)
	log := readTxnLog(t, seeds, cpTopic)
	fates := log.check(t, cpLabel)
	for label, want := range c.want {
		if got, ok := fates[label]; !ok || got != want {
			t.Errorf("transaction %s: %s in the log (found %v), want %s", label, got, ok, want)
		}
	}
	c.tail.stop()
	c.tail.check(t, log)
}

func cpLabel(v string) string {
	label, _, _ := strings.Cut(v, "#")
	return label
}

// startKafkaProxy starts a Kafka proxy in front of the agents, returning
// its bootstrap addresses (one per agent; the proxy keeps clients on it).
func startKafkaProxy(t *testing.T, seeds []string) (*kproxy.Proxy, []string) {
	t.Helper()
	p, first, err := kproxy.Start(seeds[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	out := []string{first}
	for _, s := range seeds[1:] {
		addr, err := p.Listen(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, addr)
	}
	return p, out
}

// crashPoints is the state the scenarios share.
type crashPoints struct {
	t       *testing.T
	pg      *pgServer
	agents  []*fixedAgent
	seeds   []string
	proxy   *kproxy.Proxy
	proxied []string // the proxy's addresses of the agents
	stall   *dbStall // nil on the control plane
	e       *env
	tail    *committedTail
	want    map[string]fate // transaction label → the outcome its client was told
}

// settle waits until every agent lists exactly the running agents, so
// that coordinators and leaders are what the test computes.
func (c *crashPoints) settle() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range c.agents {
		for {
			want := map[int32]bool{}
			for _, b := range c.agents {
				want[b.nodeID()] = true
			}
			got, err := brokersOf(c.t, client{}, a.addr)
			if err == nil && sameSet(got, want) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("agent %s lists brokers %v (%v), want %v", a.Name, got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// coordinatorOf returns the agent coordinating transactional id id.
func (c *crashPoints) coordinatorOf(id string) *fixedAgent {
	c.t.Helper()
	cl := client{}.newClient(c.t, c.seeds)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, ok := kadm.NewClient(cl).FindTxnCoordinators(ctx, id)[id]
	if !ok || r.Err != nil {
		c.t.Fatalf("coordinator of transactional id %s: %v", id, r.Err)
	}
	a := agentByNode(c.agents, r.NodeID)
	if a == nil {
		c.t.Fatalf("the coordinator of %s is node %d, no running agent", id, r.NodeID)
	}
	return a
}

// leaderOf returns the agent leading partition p: the one producers send
// its batches to.
func (c *crashPoints) leaderOf(p int32) *fixedAgent {
	c.t.Helper()
	id := leaders(c.t, client{}, c.seeds, cpTopic)[tp{cpTopic, p}]
	a := agentByNode(c.agents, id)
	if a == nil {
		c.t.Fatalf("the leader of %s/%d is node %d, no running agent", cpTopic, p, id)
	}
	return a
}

func (c *crashPoints) kill(a *fixedAgent, why string) {
	c.t.Helper()
	c.t.Logf("SIGKILL agent %s (node %d, %s), and start it again", a.Name, a.nodeID(), why)
	a.restart(c.t)
}

// restartDB stops PostgreSQL as a crash would and starts it again.
func (c *crashPoints) restartDB() {
	c.t.Helper()
	start := time.Now()
	if err := c.pg.Stop(context.Background(), "immediate"); err != nil {
		c.t.Fatal(err)
	}
	c.pg.start(c.t)
	c.stall.reconnect()
	c.t.Logf("PostgreSQL crashed and restarted in %v", time.Since(start).Round(time.Millisecond))
}

// checkHidden checks, while x's transaction is still ending, that no
// partition's last stable offset passed its first record there and that
// the read_committed consumer read none of it.
func (c *crashPoints) checkHidden(x *txnClient) {
	c.t.Helper()
	stable, _ := stableOffsets(c.t, c.seeds, cpTopic)
	for p, first := range x.first {
		if lso := stable[tp{cpTopic, p}]; lso > first {
			c.t.Errorf("%s/%d: last stable offset %d, past the first record (%d) of transaction %s, which has not ended", cpTopic, p, lso, first, x.label)
		}
	}
	if seen := c.tail.sawAny(x.values); len(seen) > 0 {
		c.t.Errorf("a read_committed consumer read %d records of transaction %s before it ended (%q…)", len(seen), x.label, seen[0])
	}
}

// txnClient is one franz-go transactional producer writing the records of
// one transaction, labelled, to chosen partitions.
type txnClient struct {
	t      *testing.T
	label  string
	cl     *kgo.Client
	n      int
	first  map[int32]int64 // the transaction's first offset per partition
	values []string
}

func (c *crashPoints) newTxnClient(id, label string, seeds []string) *txnClient {
	c.t.Helper()
	logs := &nemesis.OutputBuffer{}
	x := &txnClient{t: c.t, label: label, first: map[int32]int64{}}
	x.cl = client{}.newClient(c.t, seeds,
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(30*time.Second),
		kgo.DefaultProduceTopic(cpTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.MetadataMaxAge(2*time.Second),
		kgo.RetryBackoffFn(txnBackoff),
		// The proxy's Heal closes the connections a client opened while
		// it was cut, before their first answer; franz-go takes an EOF on
		// a connection's first read for a TLS or SASL misconfiguration
		// and does not retry it unless told the configuration is right.
		kgo.AlwaysRetryEOF(),
		kgo.WithLogger(kgo.BasicLogger(logs, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") + label + " " })),
	)
	c.t.Cleanup(func() {
		x.cl.Close()
		if c.t.Failed() || verbose() {
			c.t.Logf("producer %s's log:\n%s", label, logs.Tail(40))
		}
	})
	return x
}

func (x *txnClient) begin() {
	x.t.Helper()
	if err := x.cl.BeginTransaction(); err != nil {
		x.t.Fatalf("%s: begin: %v", x.label, err)
	}
}

// produce writes one record to each partition, in turn, and waits.
func (x *txnClient) produce(parts ...int32) error {
	for _, p := range parts {
		if err := <-x.produceAsync(p); err != nil {
			return err
		}
	}
	return nil
}

func (x *txnClient) mustProduce(parts ...int32) {
	x.t.Helper()
	if err := x.produce(parts...); err != nil {
		x.t.Fatalf("%s: produce: %v", x.label, err)
	}
}

// produceAsync writes one record to partition p; the channel gets the
// result.
func (x *txnClient) produceAsync(p int32) <-chan error {
	x.n++
	v := x.label + "#p" + strconv.Itoa(int(p)) + "-" + strconv.Itoa(x.n)
	x.values = append(x.values, v)
	done := make(chan error, 1)
	x.cl.Produce(context.Background(), &kgo.Record{Partition: p, Value: []byte(v)}, func(r *kgo.Record, err error) {
		if err == nil {
			if _, ok := x.first[p]; !ok {
				x.first[p] = r.Offset
			}
		}
		done <- err
	})
	return done
}

// endAsync ends the transaction; the channel gets the result.
func (x *txnClient) endAsync(commit bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		done <- x.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
	}()
	return done
}

func (x *txnClient) end(commit bool) error { return <-x.endAsync(commit) }

// mustEnd ends the transaction and records what the client was told.
func (c *crashPoints) mustEnd(x *txnClient, done <-chan error, commit bool) {
	c.t.Helper()
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatalf("%s: end (commit %v): %v", x.label, commit, err)
		}
	case <-time.After(70 * time.Second):
		c.t.Fatalf("%s: end (commit %v) did not return", x.label, commit)
	}
	c.want[x.label] = aborted
	if commit {
		c.want[x.label] = committed
	}
}

func (c *crashPoints) all() []int32 {
	out := make([]int32, cpPartitions)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// coordinatorKilledMidTxn: InitProducerId, AddPartitions and produces of
// half the partitions through one coordinator, which dies; the rest and
// EndTxn through the next.
func (c *crashPoints) coordinatorKilledMidTxn(name string) {
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(0, 1, 2)
	c.kill(c.coordinatorOf(name), "the transaction's coordinator")
	x.mustProduce(3, 4, 5)
	c.mustEnd(x, x.endAsync(true), true)
}

// controlLeaderKilled (control plane only): the control process leading
// the vcluster is SIGKILLed after the transaction's first produces, and
// started again standing by; the other process takes over and the
// transaction goes on; then the new leader is SIGKILLed as EndTxn is
// sent (its store commands may or may not have been journaled, or are
// asked during the takeover), and the commit must end committed, once,
// through the process that takes over again.
func (c *crashPoints) controlLeaderKilled(name string) {
	killLeader := func(when string) {
		leader, epoch := controlLeader(c.t, c.e.ctls, "cluster", 20*time.Second)
		c.t.Logf("%s: SIGKILL %s, leading the vcluster at epoch %d, %s; start it again", name, leader.Name, epoch, when)
		if err := leader.Kill(); err != nil {
			c.t.Fatal(err)
		}
		if err := leader.Start(context.Background()); err != nil {
			c.t.Fatalf("restart %s: %v", leader.Name, err)
		}
	}
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(0, 1, 2)
	killLeader("mid-transaction")
	x.mustProduce(3, 4, 5)
	done := x.endAsync(true)
	killLeader("as EndTxn is sent")
	c.mustEnd(x, done, true)
	_, epoch := controlLeader(c.t, c.e.ctls, "cluster", 20*time.Second)
	c.t.Logf("%s: the vcluster is led at epoch %d", name, epoch)
}

// leaderKilledInProduceCommit: the agent committing the transaction's
// first batch on partition 0 dies with its store transaction open; the
// producer's retry commits the batch elsewhere, once.
func (c *crashPoints) leaderKilledInProduceCommit(name string) {
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(1, 2, 3)
	leader := c.leaderOf(0)
	c.stall.arm("open 0")
	done := x.produceAsync(0)
	c.stall.waitStalled(15 * time.Second)
	c.kill(leader, "committing the transaction's batch of partition 0")
	c.stall.release()
	if err := <-done; err != nil {
		c.t.Fatalf("%s: produce to partition 0: %v", name, err)
	}
	x.mustProduce(4, 5)
	c.mustEnd(x, x.endAsync(true), true)
}

// coordinatorKilledInEnd: the coordinator dies inside EndTxn's store
// transaction, its markers uploaded; the retry ends the transaction
// through the next owner.
func (c *crashPoints) coordinatorKilledInEnd(name string, commit bool) {
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(c.all()...)
	coordinator := c.coordinatorOf(name)
	c.stall.arm("end " + name)
	done := x.endAsync(commit)
	c.stall.waitStalled(15 * time.Second)
	c.checkHidden(x)
	c.kill(coordinator, "inside EndTxn's store transaction")
	c.stall.release()
	c.mustEnd(x, done, commit)
}

// bothKilledInEnd: the coordinator dies inside EndTxn's store transaction
// (a commit), and the producer's application with it, so that nobody
// retries the commit; a new instance of the transactional id must find
// the transaction unfinished and abort it, everywhere.
func (c *crashPoints) bothKilledInEnd(name string) {
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(c.all()...)
	coordinator := c.coordinatorOf(name)
	c.stall.arm("end " + name)
	done := x.endAsync(true)
	c.stall.waitStalled(15 * time.Second)
	c.checkHidden(x)
	x.cl.Close() // before the kill, so that it cannot retry through a new owner
	c.t.Logf("%s: the producer is gone (its EndTxn: %v)", name, <-done)
	c.kill(coordinator, "inside EndTxn's store transaction")
	c.stall.release()
	fresh := c.newTxnClient(name, name+"-new", c.seeds)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, _, err := fresh.cl.ProducerID(ctx)
	cancel()
	if err != nil {
		c.t.Fatalf("%s: the new instance's InitProducerId: %v", name, err)
	}
	c.want[x.label] = aborted
	fresh.begin()
	fresh.mustProduce(0, 1)
	c.mustEnd(fresh, fresh.endAsync(true), true)
}

// dbRestartInEnd: PostgreSQL crashes inside EndTxn's store transaction.
func (c *crashPoints) dbRestartInEnd(name string) {
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(c.all()...)
	c.stall.arm("end " + name)
	done := x.endAsync(true)
	c.stall.waitStalled(15 * time.Second)
	c.checkHidden(x)
	c.restartDB()
	c.mustEnd(x, done, true)
}

// dbRestartInProduceCommit: PostgreSQL crashes inside the commit of the
// transaction's first batch on partition 0.
func (c *crashPoints) dbRestartInProduceCommit(name string) {
	x := c.newTxnClient(name, name, c.seeds)
	x.begin()
	x.mustProduce(1, 2, 3)
	c.stall.arm("open 0")
	done := x.produceAsync(0)
	c.stall.waitStalled(15 * time.Second)
	c.restartDB()
	if err := <-done; err != nil {
		c.t.Fatalf("%s: produce to partition 0: %v", name, err)
	}
	x.mustProduce(4, 5)
	c.mustEnd(x, x.endAsync(true), true)
}

// answerLostAfterEnd: EndTxn's store transaction commits while the client
// is cut off from the coordinator, which then dies; the client's retry,
// through the next owner, must be told the transaction committed.
func (c *crashPoints) answerLostAfterEnd(name string) {
	x := c.newTxnClient(name, name, c.proxied)
	x.begin()
	x.mustProduce(c.all()...)
	coordinator := c.coordinatorOf(name)
	c.stall.arm("end " + name)
	done := x.endAsync(true)
	c.stall.waitStalled(15 * time.Second)
	c.proxy.Cut(coordinator.addr)
	c.stall.release()
	if !waitUntil(15*time.Second, func() bool { return c.stall.txnState(name) == "CompleteCommit" }) {
		c.t.Fatalf("%s: not committed in the store 15s after the stall was released", name)
	}
	c.kill(coordinator, "after EndTxn committed, before its answer reached the client")
	c.proxy.Heal(coordinator.addr)
	c.mustEnd(x, done, true)
}

// zombieFenced: the coordinator dies mid-transaction and the producer is
// abandoned; a new instance of the transactional id fences it (aborting
// its transaction), and the old instance can no longer write or commit.
func (c *crashPoints) zombieFenced(name string) {
	zombie := c.newTxnClient(name, name+"-zombie", c.seeds)
	zombie.begin()
	zombie.mustProduce(0, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, epoch, err := zombie.cl.ProducerID(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	c.kill(c.coordinatorOf(name), "the transaction's coordinator")
	fresh := c.newTxnClient(name, name+"-new", c.seeds)
	if _, _, err := fresh.cl.ProducerID(ctx); err != nil {
		c.t.Fatalf("%s: the new instance's InitProducerId: %v", name, err)
	}
	c.checkFenced(ctx, name, pid, epoch)
	perr := zombie.produce(3)
	eerr := zombie.end(true)
	c.t.Logf("%s: the fenced instance's produce: %v; its commit: %v", name, perr, eerr)
	if eerr == nil {
		c.t.Errorf("%s: the fenced instance committed", name)
	}
	c.want[zombie.label] = aborted
	fresh.begin()
	fresh.mustProduce(3, 4, 5)
	c.mustEnd(fresh, fresh.endAsync(true), true)
}

// checkFenced sends AddPartitionsToTxn, a transactional Produce (v12+,
// transaction version 2, which adds its partition itself) and
// EndTxn(commit) for transactional id id as producer (pid, epoch), which
// a new instance has fenced: all three must be refused, whatever the
// client library would have sent.
func (c *crashPoints) checkFenced(ctx context.Context, id string, pid int64, epoch int16) {
	c.t.Helper()
	cl := client{}.newClient(c.t, c.seeds)
	defer cl.Close()
	isFenced := func(code int16) bool {
		return code == kerr.ProducerFenced.Code || code == kerr.InvalidProducerEpoch.Code
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = cpTopic, []int32{3}
	add.Topics = append(add.Topics, rt)
	// Transport errors are retried: right after a restart, an agent may
	// name a coordinator that the metadata franz-go holds does not list
	// yet.
	var addResp *kmsg.AddPartitionsToTxnResponse
	err := retryRequest(ctx, func() (err error) { addResp, err = add.RequestWith(ctx, cl); return err })
	if err != nil {
		c.t.Fatalf("AddPartitionsToTxn as the fenced producer: %v", err)
	}
	code := int16(-1)
	for _, t := range addResp.Topics {
		for _, p := range t.Partitions {
			code = p.ErrorCode
		}
	}
	for _, tx := range addResp.Transactions {
		for _, t := range tx.Topics {
			for _, p := range t.Partitions {
				code = p.ErrorCode
			}
		}
	}
	if !isFenced(code) {
		c.t.Errorf("%s: AddPartitionsToTxn as the fenced producer %d epoch %d: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", id, pid, epoch, kerr.ErrorForCode(code))
	}
	// franz-go sends the highest Produce version the agent serves, v13,
	// which names the topic by ID.
	topics, err := kadm.NewClient(cl).ListTopics(ctx, cpTopic)
	if err != nil || topics[cpTopic].Err != nil {
		c.t.Fatalf("topic ID of %s: %v %v", cpTopic, err, topics[cpTopic].Err)
	}
	prod := kmsg.NewPtrProduceRequest()
	prod.TransactionID, prod.Acks, prod.TimeoutMillis = kmsg.StringPtr(id), -1, 10_000
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: cpTopic, TopicID: topics[cpTopic].ID, Partitions: []kmsg.ProduceRequestTopicPartition{{
		Partition: 3,
		Records: recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 1000, Transactional: true},
			recordbatch.Record{Value: []byte(id + "#zombie-raw"), Timestamp: time.Now().UnixMilli()}),
	}}}}
	var prodResp *kmsg.ProduceResponse
	err = retryRequest(ctx, func() (err error) { prodResp, err = prod.RequestWith(ctx, cl); return err })
	if err != nil {
		c.t.Fatalf("Produce as the fenced producer: %v", err)
	}
	if code := prodResp.Topics[0].Partitions[0].ErrorCode; prodResp.Version < 12 || code != kerr.InvalidProducerEpoch.Code {
		c.t.Errorf("%s: Produce v%d as the fenced producer %d epoch %d: %v, want v12+ and INVALID_PRODUCER_EPOCH",
			id, prodResp.Version, pid, epoch, kerr.ErrorForCode(code))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, true
	var endResp *kmsg.EndTxnResponse
	err = retryRequest(ctx, func() (err error) { endResp, err = end.RequestWith(ctx, cl); return err })
	if err != nil {
		c.t.Fatalf("EndTxn as the fenced producer: %v", err)
	}
	if !isFenced(endResp.ErrorCode) {
		c.t.Errorf("%s: EndTxn(commit) as the fenced producer %d epoch %d: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", id, pid, epoch, kerr.ErrorForCode(endResp.ErrorCode))
	}
}

// retryRequest calls do until it returns no error or ctx ends.
func retryRequest(ctx context.Context, do func() error) error {
	for {
		err := do()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
