package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// readAll fetches a partition from offset 0 to hwm through one agent and
// returns the number of records read.
func readAll(t *testing.T, c *testutil.RawClient, topic string, partition int32, hwm int64) int64 {
	t.Helper()
	offset := int64(0)
	for offset < hwm {
		fr := kmsg.NewPtrFetchRequest()
		fr.SetVersion(11)
		fr.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = partition, offset, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		p := c.Do(fr).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("fetch %s/%d@%d: error %d", topic, partition, offset, p.ErrorCode)
		}
		batches, err := recordbatch.Split(p.RecordBatches)
		if err != nil || len(batches) == 0 {
			t.Fatalf("fetch %s/%d@%d: %d batches, %v", topic, partition, offset, len(batches), err)
		}
		for _, b := range batches {
			h, _ := recordbatch.ParseHeader(b)
			offset = h.BaseOffset + int64(h.LastOffsetDelta) + 1
		}
	}
	return offset
}

// With two reading agents in a zone, each object block is fetched from the
// bucket once, not once per agent: the agent that does not own a block
// asks the one that does.
func TestZoneReadersShareBlocks(t *testing.T) {
	t.Run("same zone", func(t *testing.T) {
		if gets := readThroughTwoAgents(t, "az-1", "az-1"); gets > segments {
			t.Fatalf("%d bucket GETs for %d single-block objects read by 2 agents of one zone: blocks were fetched more than once per zone", gets, segments)
		}
	})
	t.Run("two zones", func(t *testing.T) {
		// The control: agents of different zones do not share blocks.
		if gets := readThroughTwoAgents(t, "az-1", "az-2"); gets != 2*segments {
			t.Fatalf("%d bucket GETs, want %d: one per block per zone", gets, 2*segments)
		}
	})
}

const segments = 24

func readThroughTwoAgents(t *testing.T, zoneB, zoneC string) int {
	var counter *faulty.Bucket
	writer := agenttest.Start(t, agenttest.Options{
		Wrap: func(b objstore.Bucket) objstore.Bucket { counter = faulty.New(b); return counter },
	})
	w := testutil.Dial(t, writer.Addr())
	createTopic(t, w, "shared-reads", 4)
	for i := range segments {
		w.Do(produceRequest("shared-reads", -1, batchSpec{partition: int32(i % 4), records: 10}))
	}
	b := agenttest.StartPeer(t, writer, agenttest.Options{Config: func(cfg *agent.Config) { cfg.Zone = zoneB }})
	c := agenttest.StartPeer(t, writer, agenttest.Options{Config: func(cfg *agent.Config) { cfg.Zone = zoneC }})
	writer.Close() // its cache holds every object; take it out of the picture

	// Wait until both readers see only each other.
	for _, r := range []*agenttest.Agent{b, c} {
		rc := testutil.Dial(t, r.Addr())
		deadline := time.Now().Add(10 * time.Second)
		for {
			dc := kmsg.NewPtrDescribeClusterRequest()
			if len(rc.Do(dc).(*kmsg.DescribeClusterResponse).Brokers) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("readers never saw the writer leave")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	before := counter.Calls(faulty.Get)
	cb, cc := testutil.Dial(t, b.Addr()), testutil.Dial(t, c.Addr())
	for p := int32(0); p < 4; p++ {
		for _, rc := range []*testutil.RawClient{cb, cc} {
			if n := readAll(t, rc, "shared-reads", p, 60); n != 60 {
				t.Fatalf("partition %d: read to %d", p, n)
			}
		}
	}
	gets := counter.Calls(faulty.Get) - before
	t.Logf("%d objects read through 2 agents (zones %s, %s): %d bucket GETs", segments, zoneB, zoneC, gets)
	return gets
}
