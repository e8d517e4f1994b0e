package compat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// saramaTxnConfig configures a transactional sarama producer (and a
// read_committed consumer): a transactional producer must be idempotent,
// wait for all acks and keep one request in flight.
func saramaTxnConfig(txnID string) *sarama.Config {
	cfg := saramaConfig()
	cfg.Producer.Transaction.ID = txnID
	cfg.Producer.Transaction.Timeout = 30 * time.Second
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	return cfg
}

func newSaramaTxnProducer(t *testing.T, addr, txnID string) sarama.SyncProducer {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{addr}, saramaTxnConfig(txnID))
	if err != nil {
		t.Fatalf("transactional producer %s: %v", txnID, err)
	}
	return prod
}

// TestSaramaTransactions: sarama's transactional SyncProducer commits and
// aborts transactions across two topics, some with group offsets
// (AddOffsetsToTxn), and empty ones; a read_committed sarama consumer
// reads exactly the committed records, and the group holds only the
// committed transaction's offsets.
func TestSaramaTransactions(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topics := []string{"sarama-txn-a", "sarama-txn-b"}
	const partitions, group = 2, "sarama-txn-group"
	createTopics(ctx, t, a.Addr(), partitions, topics...)

	prod := newSaramaTxnProducer(t, a.Addr(), "sarama-txn")
	defer prod.Close()
	// Transactions with nothing in them end without a record.
	for _, end := range []func() error{prod.AbortTxn, prod.CommitTxn} {
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		if err := end(); err != nil {
			t.Fatalf("end an empty transaction: %v", err)
		}
	}
	var committed, aborted []string
	for txn := range 5 {
		if err := prod.BeginTxn(); err != nil {
			t.Fatalf("begin %d: %v", txn, err)
		}
		var msgs []*sarama.ProducerMessage
		var values []string
		for i := range 8 {
			v := fmt.Sprintf("t%d-r%d", txn, i)
			values = append(values, v)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topics[i%2], Partition: int32(i/2) % partitions, Value: sarama.StringEncoder(v)})
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatalf("send in transaction %d: %v", txn, err)
		}
		commit := txn%2 == 0
		var offsets map[string][]*sarama.PartitionOffsetMetadata
		switch txn {
		case 2: // committed: the group commits a/1 at 5
			offsets = map[string][]*sarama.PartitionOffsetMetadata{topics[0]: {{Partition: 1, Offset: 5}}}
		case 3: // aborted: the group commits neither (sarama sends offsets only when it commits)
			offsets = map[string][]*sarama.PartitionOffsetMetadata{topics[0]: {{Partition: 0, Offset: 7}, {Partition: 1, Offset: 9}}}
		}
		if offsets != nil {
			if err := prod.AddOffsetsToTxn(offsets, group); err != nil {
				t.Fatalf("add offsets to transaction %d: %v", txn, err)
			}
		}
		end := prod.AbortTxn
		if commit {
			end = prod.CommitTxn
			committed = append(committed, values...)
		} else {
			aborted = append(aborted, values...)
		}
		if err := end(); err != nil {
			t.Fatalf("end transaction %d (commit %v): %v", txn, commit, err)
		}
	}

	got := saramaReadCommitted(t, ctx, a.Addr(), topics, partitions)
	checkTxnRead(t, "sarama read_committed", got, committed)
	checkGroupOffsets(t, ctx, a.Addr(), group, topics[0], map[int32]int64{1: 5})
	checkWritten(ctx, t, a.Addr(), topics, append(slices.Clone(committed), aborted...), aborted)
	// sarama knows no transaction version 2: it stays on version 1 when
	// the agent finalizes 2.
	checkTxnVersions(t, a.Registry(), 1, true, 0)
}

// TestSaramaTransactionFencing: a second sarama producer with the same
// transactional id fences the first, whose open transaction is aborted:
// the first one's next send fails, its abort is fenced, and only the
// second one's records are read_committed.
func TestSaramaTransactionFencing(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "sarama-fence"
	createTopics(ctx, t, a.Addr(), 1, topic)
	send := func(p sarama.SyncProducer, v string) error {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)})
		return err
	}

	zombie := newSaramaTxnProducer(t, a.Addr(), "sarama-fenced")
	defer zombie.Close()
	if err := zombie.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if err := send(zombie, "zombie"); err != nil {
		t.Fatal(err)
	}

	fresh := newSaramaTxnProducer(t, a.Addr(), "sarama-fenced")
	defer fresh.Close()
	if err := fresh.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if err := send(fresh, "fresh"); err != nil {
		t.Fatalf("fresh producer: %v", err)
	}
	if err := fresh.CommitTxn(); err != nil {
		t.Fatalf("fresh producer: %v", err)
	}

	// A produce with the old epoch is INVALID_PRODUCER_EPOCH, which sarama
	// takes as abortable (KIP-588), as against Kafka; the abort that
	// follows is PRODUCER_FENCED, which is fatal.
	if err := send(zombie, "zombie-2"); !errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		t.Errorf("zombie's send after fencing: %v, want %v", err, sarama.ErrInvalidProducerEpoch)
	}
	if err := zombie.AbortTxn(); !errors.Is(err, sarama.ErrProducerFenced) {
		t.Errorf("zombie's abort: %v, want PRODUCER_FENCED (%d)", err, sarama.ErrProducerFenced)
	}
	if s := zombie.TxnStatus(); s&sarama.ProducerTxnFlagFatalError == 0 {
		t.Errorf("zombie's transaction status %v, want a fatal error", s)
	}
	checkTxnRead(t, "sarama read_committed", saramaReadCommitted(t, ctx, a.Addr(), []string{topic}, 1), []string{"fresh"})
}

// TestSaramaTransactionalCopy copies a topic in a consume-transform-produce
// loop: a sarama ConsumerGroup (read_committed, no auto commit) hands each
// record to a transactional producer, which writes its copy and the
// record's offset (AddMessageToTxnWithGroupMetadata, with the session's
// member and generation) in one transaction. The first member aborts its
// eleventh transaction and leaves; a second member with a new producer of
// the same transactional id resumes from the group's committed offsets.
// The copy holds every record exactly once, read_committed.
func TestSaramaTransactionalCopy(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const in, out, group, partitions, total = "sarama-eos-in", "sarama-eos-out", "sarama-eos-group", 2, 40
	createTopics(ctx, t, a.Addr(), partitions, in, out)
	plain := newSaramaIdempotentProducer(t, a.Addr())
	var msgs []*sarama.ProducerMessage
	for i := range total {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: in, Partition: int32(i % partitions), Value: sarama.StringEncoder(fmt.Sprintf("v%03d", i))})
	}
	if err := plain.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}

	copier := &saramaCopier{group: group, out: out}
	for _, abortAt := range []int{11, 0} {
		copier.run(t, ctx, a.Addr(), in, abortAt, total)
	}
	if len(copier.aborted) != 1 {
		t.Fatalf("aborted %d transactions, want 1", len(copier.aborted))
	}

	var want []string
	for i := range total {
		want = append(want, fmt.Sprintf("out-v%03d", i))
	}
	got := saramaReadCommitted(t, ctx, a.Addr(), []string{out}, partitions)
	checkTxnRead(t, "sarama read_committed of the copy", got, want)
	checkGroupOffsets(t, ctx, a.Addr(), group, in, map[int32]int64{0: total / 2, 1: total / 2})
	checkWritten(ctx, t, a.Addr(), []string{out}, append(want, copier.aborted...), copier.aborted)
}

// saramaCopier is the consume-transform-produce loop of
// TestSaramaTransactionalCopy, one transaction per record. Its claims run
// concurrently (one per partition) and share the producer, so a mutex
// keeps their transactions apart.
type saramaCopier struct {
	group, out string

	mu      sync.Mutex
	prod    sarama.SyncProducer
	txns    int // transactions begun in this run
	abortAt int // the transaction of this run to abort (then stop); 0: none
	stop    context.CancelFunc
	copied  int      // committed copies, across runs
	aborted []string // values written by aborted transactions
}

// run joins the group with a new consumer and a new producer and copies
// until it aborted its abortAt'th transaction or until total records are
// copied.
func (c *saramaCopier) run(t *testing.T, ctx context.Context, addr, in string, abortAt, total int) {
	t.Helper()
	cfg := saramaTxnConfig("sarama-eos")
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{addr}, c.group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	prod := newSaramaTxnProducer(t, addr, "sarama-eos")
	defer prod.Close()

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	c.mu.Lock()
	c.prod, c.txns, c.abortAt, c.stop = prod, 0, abortAt, stop
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{in}, c); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	what := fmt.Sprintf("transaction %d aborted", abortAt)
	if abortAt == 0 {
		what = fmt.Sprintf("%d records copied", total)
	}
	testutil.WaitFor(t, 30*time.Second, what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return (abortAt > 0 && len(c.aborted) > 0) || (abortAt == 0 && c.copied >= total) || ctx.Err() != nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("consume: %v", err)
	}
}

func (*saramaCopier) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*saramaCopier) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (c *saramaCopier) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		if err := c.copy(s, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *saramaCopier) copy(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.abortAt > 0 && c.txns >= c.abortAt {
		return nil // stopping: this record is the next member's
	}
	c.txns++
	abort := c.txns == c.abortAt
	if err := c.prod.BeginTxn(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	v := "out-" + string(m.Value)
	if abort {
		v = "aborted-" + string(m.Value)
	}
	if _, _, err := c.prod.SendMessage(&sarama.ProducerMessage{Topic: c.out, Partition: m.Partition, Value: sarama.StringEncoder(v)}); err != nil {
		return fmt.Errorf("send %s: %w", v, err)
	}
	meta := sarama.NewConsumerGroupMetadataFromSession(s, c.group, nil)
	if err := c.prod.AddMessageToTxnWithGroupMetadata(m, meta, nil); err != nil {
		return fmt.Errorf("add offset %d of %s/%d: %w", m.Offset, m.Topic, m.Partition, err)
	}
	if abort {
		if err := c.prod.AbortTxn(); err != nil {
			return fmt.Errorf("abort: %w", err)
		}
		c.aborted = append(c.aborted, v)
		c.stop()
		return nil
	}
	if err := c.prod.CommitTxn(); err != nil {
		return fmt.Errorf("commit %s: %w", v, err)
	}
	c.copied++
	return nil
}

func newSaramaPlainProducer(t *testing.T, addr string) sarama.SyncProducer {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return prod
}

// newSaramaIdempotentProducer returns a sync producer writing outside any
// transaction, idempotently: sarama retries a request whose connection it
// closed itself after sending it (a race in its broker registration, seen
// on loaded machines), and without idempotence the retry writes the
// records twice, as it would against Kafka. Tests that count records
// write with it.
func newSaramaIdempotentProducer(t *testing.T, addr string) sarama.SyncProducer {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return prod
}

// endRecord is the value of the record writeEndRecords writes at the end
// of each partition, outside any transaction.
const endRecord = "end-of-partition"

// writeEndRecords writes a record outside any transaction at the end of
// every partition of topics. Once all transactions on them have ended, a
// read_committed consumer that reaches it has read or skipped everything
// before it: what it read is exactly what read_committed returns, with no
// wait for records that might not come.
func writeEndRecords(t *testing.T, addr string, topics []string, partitions int32) {
	t.Helper()
	plain := newSaramaIdempotentProducer(t, addr)
	var ends []*sarama.ProducerMessage
	for _, topic := range topics {
		for p := range partitions {
			ends = append(ends, &sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder(endRecord)})
		}
	}
	if err := plain.SendMessages(ends); err != nil {
		t.Fatalf("end records: %v", err)
	}
}

// saramaReadCommitted writes end records (writeEndRecords) and reads up to
// them with saramaReadToEnd.
func saramaReadCommitted(t *testing.T, ctx context.Context, addr string, topics []string, partitions int32) []txnRead {
	t.Helper()
	writeEndRecords(t, addr, topics, partitions)
	return saramaReadToEnd(t, ctx, addr, topics, partitions)
}

// saramaReadToEnd reads each partition of topics with a read_committed
// sarama consumer from the oldest offset up to the first end record,
// which it leaves out.
func saramaReadToEnd(t *testing.T, ctx context.Context, addr string, topics []string, partitions int32) []txnRead {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cons, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []txnRead
	for _, topic := range topics {
		for p := range partitions {
			pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			}
			for done := false; !done; {
				select {
				case m := <-pc.Messages():
					if string(m.Value) == endRecord {
						done = true
						break
					}
					got = append(got, txnRead{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Value: string(m.Value)})
				case err := <-pc.Errors():
					t.Fatalf("consume %s/%d: %v", topic, p, err)
				case <-ctx.Done():
					t.Fatalf("consume %s/%d: %d records read, no end record: %v", topic, p, len(got), ctx.Err())
				}
			}
			pc.Close()
		}
	}
	return got
}

// TestSaramaTransactionAdmin: sarama's KIP-664 admin calls describe a
// transaction while it is open and after it commits: DescribeTransactions
// (state, producer, partitions), ListTransactions filtered by state, and
// DescribeProducers (the open transaction's first offset).
func TestSaramaTransactionAdmin(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, txnID = "sarama-txn-admin", "sarama-admin-txn"
	createTopics(ctx, t, a.Addr(), 2, topic)
	plain := newSaramaPlainProducer(t, a.Addr())
	if _, _, err := plain.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 1, Value: sarama.StringEncoder("plain")}); err != nil {
		t.Fatal(err)
	}

	prod := newSaramaTxnProducer(t, a.Addr(), txnID)
	defer prod.Close()
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if err := prod.SendMessages([]*sarama.ProducerMessage{
		{Topic: topic, Partition: 0, Value: sarama.StringEncoder("t0")},
		{Topic: topic, Partition: 1, Value: sarama.StringEncoder("t1")},
	}); err != nil {
		t.Fatal(err)
	}

	ca, err := sarama.NewClusterAdmin([]string{a.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	admin := ca.(sarama.TransactionClusterAdmin)
	describe := func() sarama.TransactionState {
		t.Helper()
		states, err := admin.DescribeTransactions([]string{txnID})
		if err != nil {
			t.Fatalf("DescribeTransactions: %v", err)
		}
		s, ok := states[txnID]
		if !ok || s.ErrorCode != sarama.ErrNoError {
			t.Fatalf("DescribeTransactions: %+v", states)
		}
		return s
	}
	listed := func(state string) []sarama.ListTransactionsResponseTransactionState {
		t.Helper()
		l, err := admin.ListTransactions([]string{state}, nil, -1)
		if err != nil {
			t.Fatalf("ListTransactions(%s): %v", state, err)
		}
		return l
	}
	txnStart := func(p int32) int64 {
		t.Helper()
		ps, err := admin.DescribeProducers(map[string][]int32{topic: {p}})
		if err != nil {
			t.Fatalf("DescribeProducers: %v", err)
		}
		part := ps[topic][p]
		if part.ErrorCode != sarama.ErrNoError || len(part.ActiveProducers) != 1 {
			t.Fatalf("DescribeProducers %s/%d: %+v", topic, p, part)
		}
		return part.ActiveProducers[0].CurrentTxnStartOffset
	}

	s := describe()
	if s.TransactionState != "Ongoing" || s.TransactionTimeout != 30*time.Second || s.TransactionStartTime <= 0 ||
		fmt.Sprint(s.Topics) != fmt.Sprintf("[{%s [0 1]}]", topic) {
		t.Errorf("open transaction described as %+v", s)
	}
	if l := listed("Ongoing"); len(l) != 1 || l[0].TransactionalID != txnID || l[0].ProducerID != s.ProducerID {
		t.Errorf("ongoing transactions listed: %+v, want %s (producer %d)", l, txnID, s.ProducerID)
	}
	if o := txnStart(1); o != 1 {
		t.Errorf("open transaction starts at offset %d of partition 1, want 1", o)
	}

	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	after := describe()
	if after.TransactionState != "CompleteCommit" || len(after.Topics) != 0 || after.ProducerID != s.ProducerID {
		t.Errorf("committed transaction described as %+v", after)
	}
	if l := listed("Ongoing"); len(l) != 0 {
		t.Errorf("ongoing transactions listed after the commit: %+v", l)
	}
	if l := listed("CompleteCommit"); len(l) != 1 || l[0].TransactionalID != txnID {
		t.Errorf("committed transactions listed: %+v", l)
	}
	if o := txnStart(1); o != -1 {
		t.Errorf("after the commit, a transaction starts at offset %d of partition 1, want -1", o)
	}
}
