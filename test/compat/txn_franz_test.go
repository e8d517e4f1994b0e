package compat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestFranzTransactions: a franz-go transactional producer commits and
// aborts transactions across two topics; a read_committed consumer sees
// exactly the committed records, in order, and a read_uncommitted one
// sees every record, the aborted ones included. While a transaction is
// open, read_committed stops at its first offset. Under transaction
// version 2 (the default) franz-go adds partitions through Produce v12
// and ends with EndTxn v5; pinned to version 1 it sends
// AddPartitionsToTxn and EndTxn v4.
func TestFranzTransactions(t *testing.T) {
	for _, tv := range []int{2, 1} {
		t.Run(fmt.Sprintf("tv%d", tv), func(t *testing.T) { testFranzTransactions(t, tv) })
	}
}

func testFranzTransactions(t *testing.T, tv int) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.TransactionVersion = int16(tv) }})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topics := []string{"txn-a", "txn-b"}
	createTopics(ctx, t, a.Addr(), 3, topics...)

	prod := newClient(t, a.Addr(), kgo.TransactionalID("txn-franz"), kgo.DefaultProduceTopic(topics[0]),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(30*time.Second))
	var committed, aborted []string
	for txn := range 10 {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var values []string
		for i := range 6 {
			v := fmt.Sprintf("t%d-r%d", txn, i)
			values = append(values, v)
			r := &kgo.Record{Topic: topics[i%2], Partition: int32(i % 3), Value: []byte(v)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
		commit := txn%3 != 1
		end := kgo.TryAbort
		if commit {
			end = kgo.TryCommit
			committed = append(committed, values...)
		} else {
			aborted = append(aborted, values...)
		}
		if err := prod.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end transaction %d (commit %v): %v", txn, commit, err)
		}
	}

	readCommitted := consumeValues(ctx, t, a.Addr(), topics, len(committed), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if got, want := sorted(readCommitted), sorted(committed); !slices.Equal(got, want) {
		t.Errorf("read_committed got %d records %v, want %d %v", len(got), got, len(want), want)
	}
	all := consumeValues(ctx, t, a.Addr(), topics, len(committed)+len(aborted), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if got, want := sorted(all), sorted(append(slices.Clone(committed), aborted...)); !slices.Equal(got, want) {
		t.Errorf("read_uncommitted got %d records, want %d", len(got), len(want))
	}

	// An open transaction holds read_committed consumers back at its
	// first offset; its commit releases them.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topics[0], Partition: 0, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, a.Addr())
	stable, err := adm.ListCommittedOffsets(ctx, topics[0])
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, topics[0])
	if err != nil {
		t.Fatal(err)
	}
	lso, _ := stable.Lookup(topics[0], 0)
	hwm, _ := end.Lookup(topics[0], 0)
	if lso.Offset != hwm.Offset-1 {
		t.Errorf("with a transaction open: last stable offset %d, high watermark %d; want the LSO at the open record", lso.Offset, hwm.Offset)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	stable, err = adm.ListCommittedOffsets(ctx, topics[0])
	if err != nil {
		t.Fatal(err)
	}
	lso, _ = stable.Lookup(topics[0], 0)
	if lso.Offset != hwm.Offset+1 {
		t.Errorf("after commit: last stable offset %d, want %d (past the marker)", lso.Offset, hwm.Offset+1)
	}
	checkTxnVersions(t, a.Registry(), tv, false, 1)
}

// TestFranzTransactionFencing: a second producer with the same
// transactional id fences the first, whose open transaction is aborted:
// its next produce or commit fails fatally, and none of its records is
// ever read_committed.
func TestFranzTransactionFencing(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopics(ctx, t, a.Addr(), 1, "fence")

	opts := []kgo.Opt{kgo.TransactionalID("fenced-id"), kgo.DefaultProduceTopic("fence"), kgo.TransactionTimeout(30 * time.Second)}
	zombie := newClient(t, a.Addr(), opts...)
	// Talking to the agent first lets franz-go see transaction version 2
	// finalized before its first transaction begins.
	if err := zombie.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	fresh := newClient(t, a.Addr(), opts...)
	if err := fresh.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.ProduceSync(ctx, kgo.StringRecord("fresh")).FirstErr(); err != nil {
		t.Fatalf("fresh producer: %v", err)
	}
	if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie-2")).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidTxnState) {
		t.Errorf("zombie after fencing: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	got := consumeValues(ctx, t, a.Addr(), []string{"fence"}, 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if !slices.Equal(got, []string{"fresh"}) {
		t.Errorf("read_committed %v, want [fresh]", got)
	}
	checkTxnVersions(t, a.Registry(), 2, false, 0)
}

// TestFranzGroupTransactSession copies an input topic to an output topic
// with franz-go's GroupTransactSession (consume, transform, produce and
// commit offsets in one transaction), with two members and a rebalance
// in the middle: the output read_committed holds every input record
// exactly once, and the group's committed offsets are the input's ends.
func TestFranzGroupTransactSession(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createTopics(ctx, t, a.Addr(), 4, "eos-in", "eos-out")

	const total = 2000
	in := newClient(t, a.Addr(), kgo.DefaultProduceTopic("eos-in"))
	for i := range total {
		in.Produce(ctx, kgo.StringRecord(fmt.Sprintf("v%05d", i)), nil)
	}
	if err := in.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	copied := make(chan int, 2)
	// committed counts the records of transactions that committed, over
	// both members: exactly once, it reaches total when the copy is done.
	var committed atomic.Int64
	run := func(member string, stopAfter int) {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(a.Addr()),
			kgo.TransactionalID("eos-"+member),
			kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup("eos-group"),
			kgo.ConsumeTopics("eos-in"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.DefaultProduceTopic("eos-out"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if err != nil {
			t.Error(err)
			copied <- 0
			return
		}
		defer sess.Close()
		n := 0
		for ctx.Err() == nil && (stopAfter == 0 || n < stopAfter) && committed.Load() < total {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			fs := sess.PollRecords(pctx, 100)
			pcancel()
			if err := sess.Begin(); err != nil {
				t.Errorf("%s begin: %v", member, err)
				break
			}
			var batch int
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, nil)
				batch++
			})
			ok, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				t.Errorf("%s end: %v", member, err)
				break
			}
			if ok {
				n += batch
				committed.Add(int64(batch))
			}
		}
		copied <- n
	}
	go run("one", 600) // leaves after 600 records: a rebalance mid-copy
	go run("two", 0)
	n1, n2 := <-copied, <-copied
	t.Logf("members copied %d and %d records (commits that succeeded)", n1, n2)

	got := consumeValues(ctx, t, a.Addr(), []string{"eos-out"}, total, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for i := range total {
		v := fmt.Sprintf("out-v%05d", i)
		if seen[v] != 1 {
			t.Errorf("%s copied %d times", v, seen[v])
		}
	}
	adm := newAdmin(t, a.Addr())
	offs, err := adm.FetchOffsets(ctx, "eos-group")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "eos-in")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		o, _ := offs.Lookup("eos-in", e.Partition)
		if o.At != e.Offset {
			t.Errorf("eos-in/%d: committed %d, end %d", e.Partition, o.At, e.Offset)
		}
	})
	checkTxnVersions(t, a.Registry(), 2, true, 0)
}

func createTopics(ctx context.Context, t *testing.T, addr string, partitions int32, topics ...string) {
	t.Helper()
	resp, err := newAdmin(t, addr).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeValues reads topics from the start until it has want records and
// then 500 ms more (to catch extras), returning the values.
func consumeValues(ctx context.Context, t *testing.T, addr string, topics []string, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	var got []string
	deadline := time.Now().Add(60 * time.Second)
	var extra time.Time
	for time.Now().Before(deadline) {
		if len(got) >= want && extra.IsZero() {
			extra = time.Now().Add(500 * time.Millisecond)
		}
		if !extra.IsZero() && time.Now().After(extra) {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) < want {
		t.Fatalf("read %d records of %v, want %d", len(got), topics, want)
	}
	return got
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
