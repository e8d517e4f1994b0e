package compat

// Share groups over transactional data (share.isolation.level).

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestShareGroupReadCommitted: a franz-go transactional producer commits
// and aborts transactions on two partitions; a read_committed share group
// receives exactly the committed records, each once, never an aborted
// one; while a transaction is open it receives nothing past it, and its
// commit releases it.
func TestShareGroupReadCommitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
		c.Shares.Partition = sharepart.Config{LockDuration: 30 * time.Second, DeliveryCountLimit: 5}
		c.Shares.Group.HeartbeatInterval = time.Second
		c.Shares.ReadCommitted = true
	}})
	const topic, partitions = "share-txn", 2
	createTopic(t, ctx, a.Addr(), topic, partitions)

	prod := newClient(t, a.Addr(), kgo.TransactionalID("share-txn"), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(30*time.Second))
	produceTxn := func(prefix string, n int, end kgo.TransactionEndTry) []string {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var values []string
		for i := range n {
			v := fmt.Sprintf("%s-%d", prefix, i)
			values = append(values, v)
			if err := prod.ProduceSync(ctx, &kgo.Record{Partition: int32(i % partitions), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
		if err := prod.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end transaction %s: %v", prefix, err)
		}
		return values
	}
	var committed, aborted []string
	for txn := range 6 {
		if txn%2 == 1 {
			aborted = append(aborted, produceTxn(fmt.Sprintf("a%d", txn), 20, kgo.TryAbort)...)
		} else {
			committed = append(committed, produceTxn(fmt.Sprintf("c%d", txn), 20, kgo.TryCommit)...)
		}
	}

	d := newShareDeliveries()
	cl := shareConsumer(t, a.Addr(), "sg-rc", topic)
	for i := 0; i < 30 && d.distinct() < len(committed) && ctx.Err() == nil; i++ {
		pollShare(t, ctx, cl, d, kgo.AckAccept)
	}
	checkOnly := func(want []string) {
		t.Helper()
		var got []string
		for v, c := range d.counts {
			got = append(got, v)
			if c != 1 {
				t.Errorf("record %s delivered %d times", v, c)
			}
		}
		if slices.Sort(got); !slices.Equal(got, sorted(want)) {
			t.Fatalf("received %d records %v, want the %d committed ones %v", len(got), got, len(want), sorted(want))
		}
	}
	checkOnly(committed)

	// An open transaction: nothing of it, nor what follows it, is handed
	// out until it commits.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var open []string
	for i := range 10 {
		v := fmt.Sprintf("o-%d", i)
		open = append(open, v)
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: int32(i % partitions), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		pollShare(t, ctx, cl, d, kgo.AckAccept)
	}
	checkOnly(committed)
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed = append(committed, open...)
	for i := 0; i < 30 && d.distinct() < len(committed) && ctx.Err() == nil; i++ {
		pollShare(t, ctx, cl, d, kgo.AckAccept)
	}
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatalf("FlushAcks: %v", err)
	}
	checkOnly(committed)

}
