package compat

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestCompactedTopicThroughFranz produces keyed updates and tombstones to
// a cleanup.policy=compact topic through Kafka, lets the agent's key
// compaction rewrite it, and reads it back with a franz-go consumer: the
// thinned batches (offset gaps, possibly empty batches) must decode, every
// offset must still increase, and the last record of each key must be its
// latest value, as Kafka Streams and Connect rely on.
func TestCompactedTopicThroughFranz(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	configs := map[string]*string{
		"cleanup.policy":        strp("compact"),
		"min.compaction.lag.ms": strp("0"),
		"delete.retention.ms":   strp("3600000"),
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, configs, "changelog"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("changelog"),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	latest := map[string]string{} // "" for a tombstone
	const updates = 20_000
	for i := range updates {
		k := fmt.Sprintf("key-%d", rng.IntN(500))
		r := &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", i)}
		if rng.IntN(20) == 0 {
			r.Value = nil
			latest[k] = ""
		} else {
			latest[k] = string(r.Value)
		}
		prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Wait until compaction has thinned the log.
	var got map[string]string
	var count int
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, count = readCompacted(t, ctx, a.Addr(), updates)
		if count < updates/4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if count >= updates/4 {
		t.Fatalf("log still holds %d of %d records: key compaction did not run", count, updates)
	}
	for k, v := range latest {
		if got[k] != v {
			t.Fatalf("key %s: last value %q, want %q", k, got[k], v)
		}
	}
	t.Logf("%d updates over %d keys compacted to %d records, read back by franz-go", updates, len(latest), count)
}

// readCompacted consumes the whole partition (up to offset end) and
// returns each key's last value and the number of records read.
func readCompacted(t *testing.T, ctx context.Context, addr string, end int64) (map[string]string, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"changelog": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	last := map[string]string{}
	count := 0
	prev := int64(-1)
	for prev < end-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read up to offset %d of %d: %v", prev, end, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= prev {
				t.Fatalf("offset %d after %d", r.Offset, prev)
			}
			prev = r.Offset
			last[string(r.Key)] = string(r.Value)
			count++
		})
		if hwm := highWatermark(fs); hwm > 0 && prev >= hwm-1 {
			break
		}
	}
	return last, count
}

func highWatermark(fs kgo.Fetches) int64 {
	var hwm int64
	fs.EachPartition(func(p kgo.FetchTopicPartition) { hwm = p.HighWatermark })
	return hwm
}
