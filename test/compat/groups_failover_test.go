package compat

// Coordinator loss: the agent coordinating a group stops while the group
// consumes; another agent on the same metadata store takes the group over
// from its stored state, and no committed offset is lost.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

func TestGroupCoordinatorFailover(t *testing.T) {
	opts := groupAgentOptions()
	first := agenttest.Start(t, opts)
	second := agenttest.StartPeer(t, first, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const topic, partitions = "failover", 8
	createTopic(t, ctx, first.Addr(), topic, partitions)
	seeds := kgo.SeedBrokers(first.Addr(), second.Addr())
	adminClient, err := kgo.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer adminClient.Close()
	admin := kadm.NewClient(adminClient)

	// A group coordinated by the first agent, once each agent sees both
	// (a fresh client each time: franz-go caches metadata).
	testutil.WaitFor(t, 10*time.Second, "both agents live", func() bool {
		for _, addr := range []string{first.Addr(), second.Addr()} {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			cl.Close()
			if err != nil || len(resp.Brokers) != 2 {
				return false
			}
		}
		return true
	})
	var group string
	for i := 0; group == "" && i < 1000; i++ {
		name := fmt.Sprintf("failover-%d", i)
		resp := admin.FindGroupCoordinators(ctx, name)
		if c := resp[name]; c.Err == nil && c.NodeID == first.NodeID() {
			group = name
		}
	}
	t.Logf("group %s coordinated by node %d; node %d takes over", group, first.NodeID(), second.NodeID())

	// Records keep coming through both agents.
	prod, err := kgo.NewClient(seeds, kgo.ProducerLinger(5*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const total = 6000
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for b := range total / 200 {
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Add(1)
				prod.Produce(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "r%d", b*200+i)}, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			wg.Wait()
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// acked is, per partition, the highest committed offset a member saw
	// acknowledged.
	var mu sync.Mutex
	acked := map[int32]int64{}
	log := newConsumedLog()
	var wg sync.WaitGroup
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for range 2 {
		cl, err := kgo.NewClient(seeds, kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
			kgo.FetchMaxWait(200*time.Millisecond), kgo.RetryTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for cctx.Err() == nil {
				cl.PollFetches(cctx).EachRecord(log.add)
				if err := cl.CommitUncommittedOffsets(cctx); err != nil {
					continue
				}
				mu.Lock()
				for _, ps := range cl.CommittedOffsets() {
					for p, o := range ps {
						acked[p] = max(acked[p], o.Offset)
					}
				}
				mu.Unlock()
			}
		}()
	}
	testutil.WaitFor(t, 30*time.Second, "consumption under way", func() bool { return log.distinct() > total/4 })
	mu.Lock()
	before := map[int32]int64{}
	for p, o := range acked {
		before[p] = o
	}
	mu.Unlock()
	stopped := time.Now()
	first.Close()
	t.Logf("coordinator %s stopped after %d records consumed; %s remains", first.Addr(), log.distinct(), second.Addr())

	// The new coordinator answers with every acknowledged commit.
	// The surviving agent names itself coordinator once its view of the
	// live agents drops the stopped one (one membership heartbeat).
	testutil.WaitFor(t, 10*time.Second, "the surviving agent coordinating the group", func() bool {
		cl, err := kgo.NewClient(kgo.SeedBrokers(second.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = group
		resp, err := fc.RequestWith(ctx, cl)
		return err == nil && resp.NodeID == second.NodeID()
	})
	t.Logf("group coordinated by node %d %v after the stop", second.NodeID(), time.Since(stopped).Round(time.Millisecond))
	// A new admin client: franz-go keeps a coordinator it cannot dial cached.
	admin = newAdmin(t, second.Addr())
	var lastErr error
	testutil.WaitFor(t, 30*time.Second, "the group answered by the surviving agent", func() bool {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		offs, err := admin.FetchOffsets(fctx, group)
		if err != nil {
			if lastErr == nil || err.Error() != lastErr.Error() {
				t.Logf("fetch offsets: %v", err)
			}
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			return false
		}
		for p, o := range before {
			got, ok := offs.Lookup(topic, p)
			if !ok || got.At < o {
				t.Fatalf("partition %d: committed %d after failover, %d acknowledged before", p, got.At, o)
			}
		}
		return true
	})
	<-produced
	testutil.WaitFor(t, 60*time.Second, "every record consumed", func() bool { return log.distinct() == total })
	t.Logf("all %d records consumed %v after the coordinator stopped (%d consumed twice)", total,
		time.Since(stopped).Round(time.Millisecond), log.dups)
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "offsets committed at the end", func() bool {
		offs, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, found := offs.Lookup(topic, e.Partition); !found || o.At != e.Offset {
				ok = false
			}
		})
		return ok
	})
	d := describeGroup(t, ctx, admin, group)
	if d.Coordinator.NodeID != second.NodeID() || d.State != "Stable" || len(d.Members) != 2 {
		t.Errorf("after failover: coordinator %d, %s, %d members", d.Coordinator.NodeID, d.State, len(d.Members))
	}
	stop()
	wg.Wait()
}
