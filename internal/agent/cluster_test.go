package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// Two agents on one metadata store and bucket form one cluster: both are
// listed, partitions spread over them, a record produced through one is
// fetched through the other, and a fetch waiting on one is woken by a
// commit made through the other.
func TestTwoAgentsServeOneCluster(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Linger: 20 * time.Millisecond})
	b := agenttest.StartPeer(t, a, agenttest.Options{Linger: 20 * time.Millisecond})
	ca, cb := testutil.Dial(t, a.Addr()), testutil.Dial(t, b.Addr())
	createTopic(t, ca, "shared", 16)

	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	topic := "shared"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	var resp *kmsg.MetadataResponse
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Ask a, which joined first: it sees b after its next heartbeat.
		resp = ca.Do(md).(*kmsg.MetadataResponse)
		if len(resp.Brokers) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(resp.Brokers) != 2 {
		t.Fatalf("metadata lists %d brokers, want 2", len(resp.Brokers))
	}
	leaders := map[int32]int{}
	for _, p := range resp.Topics[0].Partitions {
		leaders[p.Leader]++
	}
	if len(leaders) != 2 {
		t.Fatalf("16 partitions led by %v: not spread over both agents", leaders)
	}

	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(11)
	fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes = 10000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "shared"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes = 3, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	// Warm b's extent cache for the partition at offset 0 (empty).
	fr.MaxWaitMillis = 0
	cb.Do(fr)
	fr.MaxWaitMillis = 10000
	start := time.Now()
	corr := cb.Send(fr)
	producer := testutil.Dial(t, a.Addr())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		time.Sleep(100 * time.Millisecond)
		producer.Send(produceRequest("shared", -1, batchSpec{partition: 3, records: 5}))
	}()
	defer func() { <-produced }()
	fresp := kmsg.NewPtrFetchResponse()
	fresp.SetVersion(11)
	cb.Receive(corr, fresp)
	p := fresp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 5 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch through b: error %d hwm %d bytes %d", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("fetch on b answered after %v: not woken by a's commit", d)
	}
	t.Logf("fetch on agent b woken %v after it started by a commit through agent a", time.Since(start))

	// Stopping b: a's view drops it (deregistered on shutdown).
	b.Close()
	resp = ca.Do(md).(*kmsg.MetadataResponse)
	deadline = time.Now().Add(5 * time.Second)
	for len(resp.Brokers) != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		resp = ca.Do(md).(*kmsg.MetadataResponse)
	}
	if len(resp.Brokers) != 1 {
		t.Fatalf("after b stopped, metadata lists %d brokers", len(resp.Brokers))
	}
}

func TestZoneHintAndRolePools(t *testing.T) {
	zoned := func(zone string, roles ...string) agenttest.Options {
		return agenttest.Options{Config: func(c *agent.Config) { c.Zone, c.Roles = zone, roles }}
	}
	a := agenttest.Start(t, zoned("az-1"))
	b := agenttest.StartPeer(t, a, zoned("az-2"))
	reader := agenttest.StartPeer(t, a, zoned("az-1", "fetch"))
	createTopic(t, testutil.Dial(t, a.Addr()), "zoned", 4)

	brokers := func(addr, clientID string) map[int32]bool {
		c := testutil.Dial(t, addr)
		c.ClientID = clientID
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(9)
		out := map[int32]bool{}
		for _, br := range c.Do(md).(*kmsg.MetadataResponse).Brokers {
			out[br.NodeID] = true
		}
		return out
	}
	// b joined last, so its view holds every agent at once.
	for name, tc := range map[string]struct {
		addr, clientID string
		want           []int32
	}{
		"no hint":           {b.Addr(), "app", []int32{a.NodeID(), b.NodeID()}},
		"zone 1":            {b.Addr(), "app,floe_az=az-1", []int32{a.NodeID()}},
		"zone 2":            {b.Addr(), "floe_az=az-2;other", []int32{b.NodeID()}},
		"unknown zone":      {b.Addr(), "floe_az=az-9", []int32{a.NodeID(), b.NodeID()}},
		"reader pool":       {reader.Addr(), "app", []int32{reader.NodeID()}},
		"reader pool, zone": {reader.Addr(), "floe_az=az-1", []int32{reader.NodeID()}},
	} {
		got := brokers(tc.addr, tc.clientID)
		if len(got) != len(tc.want) {
			t.Errorf("%s: brokers %v, want %v", name, got, tc.want)
			continue
		}
		for _, id := range tc.want {
			if !got[id] {
				t.Errorf("%s: brokers %v, want %v", name, got, tc.want)
			}
		}
	}

	// The reader pool refuses produce requests with a retriable error.
	r := partitionResults(testutil.Dial(t, reader.Addr()).Do(produceRequest("zoned", -1, batchSpec{records: 1})).(*kmsg.ProduceResponse))[0]
	if r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to a reader-only agent: error %d, want NOT_LEADER_OR_FOLLOWER", r.ErrorCode)
	}
}
