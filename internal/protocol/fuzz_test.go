package protocol_test

// Arbitrary frames of every registered API key and version through
// wire.ParseRequest and the real Handler (metadata store, writer, reader
// and coordinator, all in process), checking that each is answered or
// refused with an error, never a panic, and that the heap stays under a
// ceiling. FuzzHandler explores; TestHandlerMutatedRequests runs a fixed
// set of mutations of every key and version in go test.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/telemetry/telemetrytest"
	"github.com/floe-io/floe/internal/wire"
)

// heapCeiling is the most live heap the harness tolerates after an
// input: every input is at most maxFuzzFrame bytes, so an input that
// makes the handler hold far more than that has found an unbounded
// allocation.
const (
	heapCeiling  = 512 << 20
	maxFuzzFrame = 1 << 20
	// replyTimeout bounds one reply (a fetch's long poll, a join's
	// rebalance); the handler must give up when its context ends.
	replyTimeout = 50 * time.Millisecond
)

// oneAgent is a Cluster of this agent alone.
type oneAgent struct{}

func (oneAgent) Self() protocol.Broker {
	return protocol.Broker{NodeID: 0, Host: "127.0.0.1", Port: 9092}
}
func (c oneAgent) Brokers() []protocol.Broker   { return []protocol.Broker{c.Self()} }
func (c oneAgent) Owner(string) protocol.Broker { return c.Self() }
func (oneAgent) Serves(string) bool             { return true }
func (c oneAgent) For(string) protocol.Cluster  { return c }

// agents is a Cluster of n agents in which this agent is the first,
// partitions owned by rendezvous hashing as in the agent.
type agents []metastore.AgentInfo

func newAgents(n int) agents {
	var out agents
	for i := range n {
		out = append(out, metastore.AgentInfo{ID: fmt.Sprintf("agent-%d", i), NodeID: int32(i), Host: "127.0.0.1", Port: int32(9092 + i)})
	}
	return out
}

func brokerOf(a metastore.AgentInfo) protocol.Broker {
	return protocol.Broker{NodeID: a.NodeID, Host: a.Host, Port: a.Port}
}
func (c agents) Self() protocol.Broker { return brokerOf(c[0]) }
func (c agents) Brokers() []protocol.Broker {
	var out []protocol.Broker
	for _, a := range c {
		out = append(out, brokerOf(a))
	}
	return out
}
func (c agents) Owner(key string) protocol.Broker { return brokerOf(cluster.Owner(c, key)) }
func (agents) Serves(string) bool                 { return true }
func (c agents) For(string) protocol.Cluster      { return c }

// harness is a handler with its parts, built once per fuzz worker.
type harness struct {
	h       *protocol.Handler
	ctx     context.Context
	samples []metrics.Sample
}

// newHarness builds the handler; limits, if given, replace the small
// ones the fuzzing uses.
func newHarness(tb testing.TB, limits ...protocol.Limits) *harness {
	return newHarnessIn(tb, oneAgent{}, limits...)
}

func newHarnessIn(tb testing.TB, c protocol.Cluster, limits ...protocol.Limits) *harness {
	tb.Helper()
	dir := tb.TempDir()
	store, err := embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	bucket, err := localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		tb.Fatal(err)
	}
	blocks := cache.New(bucket, cache.Options{Capacity: 16 << 20}, nil)
	writer := produce.NewWriter(bucket, store, produce.Options{Linger: time.Millisecond})
	tb.Cleanup(writer.Close)
	groups := coordinator.New(store, coordinator.Options{MaxGroups: 1000})
	tb.Cleanup(groups.Close)
	// Small limits keep the store small however many inputs create
	// topics.
	lim := protocol.Limits{MaxPartitionsPerTopic: 64, MaxPartitions: 4096, MaxTopics: 256, FetchMaxBytes: 1 << 20}
	if len(limits) > 0 {
		lim = limits[0]
	}
	aborted, _ := any(store).(fetch.AbortedIndex) // as the agent wires it
	h := protocol.NewHandler(protocol.Config{
		ClusterID:        "fuzz",
		Cluster:          c,
		AutoCreateTopics: true,
		Groups:           groups,
		Shares:           sharecoord.New(store, sharecoord.Options{MaxGroups: 100, MaxSessions: 100}),
		Limits:           lim,
	}, store, writer, fetch.NewReader(store, aborted, blocks), fetch.NewNotifier(nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return &harness{h: h, ctx: ctx, samples: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

// run feeds one frame (without its size prefix) through the handler.
func (hs *harness) run(t testing.TB, frame []byte) {
	if len(frame) > maxFuzzFrame {
		return
	}
	req, err := wire.ParseRequest(frame)
	if err != nil {
		return // the connection would be closed
	}
	req.ClientHost, req.Principal = "/127.0.0.1", wire.AnonymousPrincipal
	ctx, cancel := context.WithTimeout(hs.ctx, replyTimeout)
	defer cancel()
	reply, err := hs.h.Handle(ctx, req)
	if err != nil {
		return // the connection would be closed
	}
	if reply == nil {
		t.Fatalf("%s v%d: no error and no reply", kmsg.NameForKey(req.Key), req.Version)
	}
	start := time.Now()
	resp := reply(ctx)
	if took := time.Since(start); took > replyTimeout+2*time.Second {
		t.Fatalf("%s v%d: reply took %v after its context ended", kmsg.NameForKey(req.Key), req.Version, took)
	}
	if resp != nil {
		_ = wire.AppendResponse(nil, req.CorrelationID, resp)
	}
	metrics.Read(hs.samples)
	if heap := hs.samples[0].Value.Uint64(); heap > heapCeiling {
		runtime.GC()
		metrics.Read(hs.samples)
		if heap = hs.samples[0].Value.Uint64(); heap > heapCeiling {
			t.Fatalf("%s v%d: heap %d MiB after a %d-byte frame", kmsg.NameForKey(req.Key), req.Version, heap>>20, len(frame))
		}
	}
}

// do sends a request through the handler and returns its response.
func (hs *harness) do(t testing.TB, req kmsg.Request) kmsg.Response {
	t.Helper()
	parsed, err := wire.ParseRequest(wire.AppendRequest(nil, 1, "test", req)[4:])
	if err != nil {
		t.Fatal(err)
	}
	parsed.Principal = wire.AnonymousPrincipal
	reply, err := hs.h.Handle(hs.ctx, parsed)
	if err != nil {
		t.Fatal(err)
	}
	return reply(hs.ctx)
}

// seeds returns a valid frame of every registered key and version, with
// kmsg's defaults and one element in each top-level array, and for the
// APIs that read with an isolation level, that frame at read_committed.
func seeds() [][]byte {
	var out [][]byte
	for _, api := range protocol.Supported() {
		for v := api.MinVersion; v <= api.MaxVersion; v++ {
			req := kmsg.RequestForKey(api.ApiKey)
			req.SetVersion(v)
			out = append(out, wire.AppendRequest(nil, 1, "fuzz", req)[4:])
			req = kmsg.RequestForKey(api.ApiKey)
			req.SetVersion(v)
			fillOne(req)
			out = append(out, wire.AppendRequest(nil, 2, "fuzz", req)[4:])
			if readCommitted(req) {
				out = append(out, wire.AppendRequest(nil, 3, "fuzz", req)[4:])
			}
		}
	}
	return out
}

// readCommitted sets read_committed on a Fetch (v4+) or ListOffsets
// (v2+) request and reports whether it did.
func readCommitted(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		r.IsolationLevel = 1
		return r.Version >= 4
	case *kmsg.ListOffsetsRequest:
		r.IsolationLevel = 1
		return r.Version >= 2
	}
	return false
}

// fillOne gives a request a topic named "t", a group "g" and one
// partition 0 where it has such fields, via kmsg's common shapes.
func fillOne(req kmsg.Request) {
	name := "t"
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		r.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	case *kmsg.CreateTopicsRequest:
		r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: 2, ReplicationFactor: -1}}
	case *kmsg.CreatePartitionsRequest:
		r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: name, Count: 3}}
	case *kmsg.DeleteTopicsRequest:
		r.TopicNames = []string{name}
		r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
	case *kmsg.FetchRequest:
		r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 10, 1, 1<<20
		r.Topics = []kmsg.FetchRequestTopic{{Topic: name, Partitions: []kmsg.FetchRequestTopicPartition{{PartitionMaxBytes: 1 << 20}}}}
	case *kmsg.ListOffsetsRequest:
		r.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: name, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Timestamp: -1}}}}
	case *kmsg.OffsetCommitRequest:
		r.Group = "g"
		r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: name, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
	case *kmsg.OffsetFetchRequest:
		r.Group = "g"
	case *kmsg.JoinGroupRequest:
		r.Group, r.ProtocolType, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	case *kmsg.FindCoordinatorRequest:
		r.CoordinatorKey, r.CoordinatorKeys = "g", []string{"g"}
	case *kmsg.DescribeGroupsRequest:
		r.Groups = []string{"g"}
	case *kmsg.DeleteGroupsRequest:
		r.Groups = []string{"g"}
	case *kmsg.DescribeConfigsRequest:
		r.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name}}
	case *kmsg.DeleteRecordsRequest:
		r.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: name, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Offset: 0}}}}
	case *kmsg.ConsumerGroupHeartbeatRequest:
		r.Group, r.MemberEpoch, r.RebalanceTimeoutMillis = "cg", 0, 10000
		r.SubscribedTopicNames = []string{name}
	case *kmsg.DescribeTopicPartitionsRequest:
		r.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: name}}
		r.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: name, Partition: 1}
	case *kmsg.DescribeLogDirsRequest:
		r.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: name, Partitions: []int32{0, 1}}}
	case *kmsg.AlterReplicaLogDirsRequest:
		r.Dirs = []kmsg.AlterReplicaLogDirsRequestDir{{Dir: "bucket://fuzz", Topics: []kmsg.AlterReplicaLogDirsRequestDirTopic{{Topic: name, Partitions: []int32{0}}}}}
	case *kmsg.ElectLeadersRequest:
		r.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: name, Partitions: []int32{0, 5}}}
	case *kmsg.AlterPartitionAssignmentsRequest:
		r.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: name, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Replicas: []int32{0, 0, 1}}, {Partition: 1}}}}
	case *kmsg.ListPartitionReassignmentsRequest:
		r.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: name, Partitions: []int32{0}}}
	case *kmsg.PushTelemetryRequest:
		r.ClientInstanceID = [16]byte{0: 1}
		r.Metrics = telemetrytest.MetricsData(telemetrytest.Gauge("org.apache.kafka.producer.record.queue.time.avg", telemetrytest.Point(1.5, "node.id", int64(0))))
	case *kmsg.ListConfigResourcesRequest:
		r.ResourceTypes = []int8{2, 4}
	case *kmsg.ProduceRequest:
		r.Acks, r.TimeoutMillis = -1, 1000
		r.Topics = []kmsg.ProduceRequestTopic{{Topic: name, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: []byte{0}}}}}
	}
}

func FuzzHandler(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	hs := newHarness(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		hs.run(t, frame)
	})
}

// TestHandlerMutatedRequests runs, for every registered key and version,
// a fixed set of mutations of its seed frames through the handler:
// random bytes overwritten, counts and lengths set to their largest
// values, bodies cut short and extended.
func TestHandlerMutatedRequests(t *testing.T) {
	hs := newHarness(t)
	rng := rand.New(rand.NewPCG(10, 599))
	perSeed := 12
	if testing.Short() {
		perSeed = 3
	}
	start := time.Now()
	n := 0
	for _, seed := range seeds() {
		hs.run(t, seed)
		for range perSeed {
			hs.run(t, mutate(rng, seed))
			n++
		}
	}
	t.Logf("%d mutated frames in %v", n, time.Since(start))
}

// mutate returns a changed copy of a frame; the 8-byte key, version and
// correlation id are kept, so that every key and version is reached.
func mutate(rng *rand.Rand, seed []byte) []byte {
	b := append([]byte(nil), seed...)
	if len(b) <= 8 {
		return b
	}
	body := len(b) - 8
	switch rng.IntN(5) {
	case 0: // random bytes
		for range 1 + rng.IntN(4) {
			b[8+rng.IntN(body)] = byte(rng.Uint32())
		}
	case 1: // a huge int32 count or length
		if body >= 4 {
			i := 8 + rng.IntN(body-3)
			binary.BigEndian.PutUint32(b[i:], 0x7fffffff-uint32(rng.IntN(3)))
		}
	case 2: // a huge uvarint (compact count or tag count)
		i := 8 + rng.IntN(body)
		b = append(b[:i], append([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, b[i:]...)...)
	case 3: // cut short
		b = b[:8+rng.IntN(body)]
	case 4: // extended with random bytes
		extra := make([]byte, 1+rng.IntN(64))
		for i := range extra {
			extra[i] = byte(rng.Uint32())
		}
		b = append(b, extra...)
	}
	return b
}
