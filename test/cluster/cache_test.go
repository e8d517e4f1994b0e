package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/s3"
)

// TestFiveConsumersOneGetPerBlock checks the zone's shared read cache:
// three agents in one zone, and consumers (no group) reading every
// partition of a topic from offset 0, each bootstrapped from another
// agent. Each block of each object has one owner agent in the zone, which
// GETs it once and serves the others, so the bucket sees about one GET
// per block whatever the number of consumers.
//
// The data is written first and the agents are then replaced by fresh
// ones, so no cache holds anything (a writing agent keeps what it wrote,
// which would hide the reads). One topic is read by one consumer, another
// as big by five at once; the GETs of all agents are summed from /metrics
// before and after each read. Blocks are 1 MiB (--cache-block-bytes), so
// 24 MiB per topic make a few dozen of them.
func TestFiveConsumersOneGetPerBlock(t *testing.T) {
	requireServices(t)
	e := newEnv(t, "")
	const (
		blockBytes = 1 << 20
		topicBytes = 24 << 20
		partitions = 6
		recordSize = 16 << 10
		zone       = "z1"
	)
	// No jobs role: compaction would GET objects too, and replace the
	// ones the blocks are counted from.
	opts := agentOpts{zone: zone, extra: []string{"--cache-block-bytes", fmt.Sprint(blockBytes), "--roles", "produce,fetch"}}
	writers := []*agentProc{startAgent(t, e, "w0", opts), startAgent(t, e, "w1", opts), startAgent(t, e, "w2", opts)}
	waitForView(t, e.admin(), writers, 15*time.Second)
	bucket := openTestBucket(t, e)

	topics := []string{"replay-one", "replay-five"}
	objects := map[string][]objstore.ObjectInfo{} // topic → objects holding it
	known := map[string]bool{}
	for _, topic := range topics {
		createTopic(t, e.admin(), writers[0].addr, topic, partitions)
		produceBulk(t, addrs(writers), topic, partitions, topicBytes, recordSize)
		for _, o := range listObjects(t, bucket) {
			if !known[o.Key] {
				known[o.Key] = true
				objects[topic] = append(objects[topic], o)
			}
		}
	}
	// On PostgreSQL the writers relayed their commits' notices to each
	// other over their peer listeners (internal/peernotice), each
	// connected to both others. (On floe control the control plane sends
	// the notices.)
	if !onControlPlane() {
		if got := sumMetric(t, writers, "floe_peer_notice_peers_connected"); got != 6 {
			t.Errorf("%v notice connections among 3 agents, want 6", got)
		}
		if got := sumMetric(t, writers, "floe_peer_notice_frames_received_total"); got == 0 {
			t.Error("no commit notice was relayed between the writing agents")
		}
	}
	for _, a := range writers {
		a.stop(t)
	}
	readers := []*agentProc{startAgent(t, e, "r0", opts), startAgent(t, e, "r1", opts), startAgent(t, e, "r2", opts)}
	waitForView(t, e.admin(), readers, 15*time.Second)

	for i, topic := range topics {
		consumers := []int{1, 5}[i]
		var logBytes, blocks int64
		for _, o := range objects[topic] {
			logBytes += o.Size
			blocks += (o.Size + blockBytes - 1) / blockBytes
		}
		hwm := endOffsets(t, addrs(readers), e.admin(), topic)
		before := bucketReads(t, readers)
		start := time.Now()
		var wg sync.WaitGroup
		consumed := make([]int64, consumers)
		for c := range consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				consumed[c] = consumeAll(t, readers[c%len(readers)].addr, topic, hwm)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		after := bucketReads(t, readers)
		var total int64
		for _, n := range consumed {
			total += n
		}
		gets := after.gets - before.gets
		mib := float64(total) / (1 << 20)
		t.Logf("%d consumer(s) of %s: %d objects, %.1f MiB, %d blocks of %d KiB; consumed %.1f MiB in %v; bucket GETs %.0f (%.2f per block, %.3f per MiB consumed, %.2f per MiB of log), %.1f MiB read from the bucket (%.2f× the objects); read-cache runs: %.0f from the bucket, %.0f from the owner, %.0f owner failures",
			consumers, topic, len(objects[topic]), float64(logBytes)/(1<<20), blocks, blockBytes>>10, mib, took.Round(time.Millisecond),
			gets, gets/float64(blocks), gets/mib, gets/(float64(logBytes)/(1<<20)),
			(after.bytes-before.bytes)/(1<<20), (after.bytes-before.bytes)/float64(logBytes),
			after.fromBucket-before.fromBucket, after.fromPeer-before.fromPeer, after.fallback-before.fallback)
		if gets > 1.5*float64(blocks) {
			t.Errorf("%d consumer(s): %.0f bucket GETs for %d blocks in one zone; want at most 1.5 per block", consumers, gets, blocks)
		}
		if after.bytes-before.bytes > 1.5*float64(logBytes) {
			t.Errorf("%d consumer(s): read %.0f bytes from the bucket for %d bytes of objects; want at most 1.5×", consumers, after.bytes-before.bytes, logBytes)
		}
		if after.fallback > before.fallback {
			t.Errorf("%d consumer(s): %.0f block runs fell back to the bucket because their owner failed", consumers, after.fallback-before.fallback)
		}
	}
}

type readCounters struct {
	gets, bytes                    float64
	fromBucket, fromPeer, fallback float64
}

// bucketReads sums the agents' bucket reads.
func bucketReads(t *testing.T, agents []*agentProc) readCounters {
	t.Helper()
	return readCounters{
		gets:       sumMetric(t, agents, "floe_objstore_requests_total", "op", "get"),
		bytes:      sumMetric(t, agents, "floe_objstore_bytes_total", "op", "get"),
		fromBucket: sumMetric(t, agents, "floe_cache_peer_requests_total", "source", "bucket"),
		fromPeer:   sumMetric(t, agents, "floe_cache_peer_requests_total", "source", "peer"),
		fallback:   sumMetric(t, agents, "floe_cache_peer_requests_total", "source", "fallback"),
	}
}

// produceBulk writes about total bytes of size-byte records to topic,
// round-robin over its partitions, with one idempotent client per seed,
// and waits for every acknowledgement.
func produceBulk(t *testing.T, seeds []string, topic string, partitions int32, total, size int) {
	t.Helper()
	n := total / size
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(seeds))
	for i, seed := range seeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				// Stored as sent: the bytes in the bucket are the bytes produced.
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			var failed error
			var mu sync.Mutex
			for j := i; j < n; j += len(seeds) {
				r := &kgo.Record{Topic: topic, Partition: int32(j) % partitions, Value: makeValue(fmt.Sprintf("b%d", i), int64(j), size)}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				errs <- err
				return
			}
			if failed != nil {
				errs <- failed
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("produce %s: %v", topic, err)
	}
}

// consumeAll reads every partition of topic from 0 to its end through
// seed and returns the bytes of the record values read. It may run in
// its own goroutine.
func consumeAll(t *testing.T, seed, topic string, hwm map[tp]int64) int64 {
	assign := map[string]map[int32]kgo.Offset{topic: {}}
	remaining := 0
	for x, h := range hwm {
		assign[topic][x.partition] = kgo.NewOffset().At(0)
		if h > 0 {
			remaining++
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumePartitions(assign), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var bytes int64
	next := map[int32]int64{}
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Errorf("consume %s through %s: %d partitions unfinished after 60s", topic, seed, remaining)
			return bytes
		}
		fs.EachError(func(_ string, p int32, err error) { t.Errorf("consume %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			h := hwm[tp{topic, r.Partition}]
			if r.Offset >= h || r.Offset < next[r.Partition] {
				return
			}
			next[r.Partition] = r.Offset + 1
			bytes += int64(len(r.Value))
			if r.Offset == h-1 {
				remaining--
			}
		})
	}
	return bytes
}

// openTestBucket opens the test's key prefix directly (not through the
// agents), to list what they wrote.
func openTestBucket(t *testing.T, e *env) *s3.Bucket {
	t.Helper()
	b, err := s3.Open(context.Background(), s3.Options{
		Bucket: e.s3.Bucket, Prefix: e.prefix + "/", Endpoint: e.s3.Endpoint, Region: "us-east-1", PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(e.s3.AccessKey, e.s3.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listObjects(t *testing.T, b *s3.Bucket) []objstore.ObjectInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []objstore.ObjectInfo
	if err := b.List(ctx, "segments/", func(o objstore.ObjectInfo) error {
		out = append(out, o)
		return nil
	}); err != nil {
		t.Fatalf("list objects: %v", err)
	}
	return out
}
