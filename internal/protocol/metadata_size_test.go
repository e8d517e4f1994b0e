package protocol_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/wire"
)

// TestMetadataLargeTopicCost measures one Metadata answer for a topic of
// 100,000 partitions (ten times the default limit per topic) led by ten
// agents, each partition's leader chosen by rendezvous hashing.
func TestMetadataLargeTopicCost(t *testing.T) {
	const partitions = 100_000
	hs := newHarnessIn(t, newAgents(10), protocol.Limits{MaxPartitionsPerTopic: partitions, MaxPartitions: partitions})
	create := kmsg.NewPtrCreateTopicsRequest()
	create.SetVersion(7)
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "big", NumPartitions: partitions, ReplicationFactor: -1}}
	resp := hs.do(t, create).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %d %v", resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	name := "big"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	mresp := hs.do(t, md).(*kmsg.MetadataResponse)
	frame := wire.AppendResponse(nil, 1, mresp)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if n := len(mresp.Topics[0].Partitions); n != partitions {
		t.Fatalf("%d partitions", n)
	}
	t.Logf("Metadata of %d partitions: %v, %d MiB allocated, %d KiB response", partitions, took, (after.TotalAlloc-before.TotalAlloc)>>20, len(frame)>>10)
	// Measured: 154 ms and 73 MiB before the answer was built in one
	// allocation with shared replica lists, 58 ms and 27 MiB after.
	if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 64 {
		t.Fatalf("Metadata of %d partitions allocated %d MiB", partitions, mib)
	}
}
