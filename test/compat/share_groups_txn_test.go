package compat

// Share groups over transactional data (share.isolation.level).

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestShareGroupReadCommitted: a franz-go transactional producer commits
// and aborts transactions on two partitions. A share group set to
// share.isolation.level=read_committed by IncrementalAlterConfigs on its
// GROUP resource (the agent's default is read_uncommitted, as Kafka's)
// receives exactly the committed records, each once, never an aborted
// one; while a transaction is open it receives nothing of it nor
// anything produced after it (the share partition ends at the last
// stable offset), and the commit releases both. A group left at the
// default receives the aborted records too.
func TestShareGroupReadCommitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
		c.Shares.Partition = sharepart.Config{LockDuration: 30 * time.Second, DeliveryCountLimit: 5}
		c.Shares.Group.HeartbeatInterval = time.Second
	}})
	const topic, partitions = "share-txn", 2
	createTopic(t, ctx, a.Addr(), topic, partitions)
	alterGroupConfig(t, ctx, a.Addr(), "sg-rc", "share.isolation.level", "read_committed")

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

	checkOnly := func(what string, d *shareDeliveries, want []string) {
		t.Helper()
		d.mu.Lock()
		defer d.mu.Unlock()
		var got []string
		for v, c := range d.counts {
			got = append(got, v)
			if c != 1 {
				t.Errorf("%s: record %s delivered %d times", what, v, c)
			}
		}
		if slices.Sort(got); !slices.Equal(got, sorted(want)) {
			t.Fatalf("%s: received %d records %v, want %d: %v", what, len(got), got, len(want), sorted(want))
		}
	}
	d := newShareDeliveries()
	cl := shareConsumer(t, a.Addr(), "sg-rc", topic)
	for i := 0; i < 30 && d.distinct() < len(committed) && ctx.Err() == nil; i++ {
		pollShare(t, ctx, cl, d, kgo.AckAccept)
	}
	checkOnly("read_committed", d, committed)

	// The group at the agent's default reads uncommitted: the aborted
	// records too.
	all := append(slices.Clone(committed), aborted...)
	ru := newShareDeliveries()
	clRU := shareConsumer(t, a.Addr(), "sg-ru", topic)
	for i := 0; i < 30 && ru.distinct() < len(all) && ctx.Err() == nil; i++ {
		pollShare(t, ctx, clRU, ru, kgo.AckAccept)
	}
	checkOnly("read_uncommitted", ru, all)

	// An open transaction, then plain records after it: nothing of the
	// transaction, nor what follows it, is handed out until it commits.
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
	plain := newClient(t, a.Addr(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var after []string
	for i := range 4 {
		v := fmt.Sprintf("p-%d", i)
		after = append(after, v)
		if err := plain.ProduceSync(ctx, &kgo.Record{Partition: int32(i % partitions), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		pollShare(t, ctx, cl, d, kgo.AckAccept)
	}
	checkOnly("read_committed, a transaction open", d, committed)
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed = append(append(committed, open...), after...)
	for i := 0; i < 30 && d.distinct() < len(committed) && ctx.Err() == nil; i++ {
		pollShare(t, ctx, cl, d, kgo.AckAccept)
	}
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatalf("FlushAcks: %v", err)
	}
	checkOnly("read_committed, after the commit", d, committed)
}

// alterGroupConfig sets one config of a group through
// IncrementalAlterConfigs on its GROUP resource (kadm has no helper for
// group configs).
func alterGroupConfig(t *testing.T, ctx context.Context, addr, group, name, value string) {
	t.Helper()
	cl := newClient(t, addr)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value, c.Op = name, kmsg.StringPtr(value), kmsg.IncrementalAlterConfigOpSet
	rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeGroupConfig, group, []kmsg.IncrementalAlterConfigsRequestResourceConfig{c}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs %s %s=%s: %+v, %v", group, name, value, resp, err)
	}
}
