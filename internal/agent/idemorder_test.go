package agent_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// idemAck is one record an idempotent producer had acknowledged.
type idemAck struct {
	producer, seq int
	partition     int32
	offset        int64
}

// produceSequences runs producers idempotent franz-go producers against
// addr, each sending perProd records "p-seq" to partition seq % partitions
// (franz-go's 5 requests in flight), pausing pause after every every
// records. It returns the acknowledged records and how many failed.
func produceSequences(t *testing.T, ctx context.Context, addr, topic string, partitions, producers, perProd, every int, pause time.Duration) (acked []idemAck, failed int) {
	t.Helper()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(
				kgo.SeedBrokers(addr),
				kgo.ProducerLinger(2*time.Millisecond),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.RecordDeliveryTimeout(60*time.Second),
				// Retry soon: a failed segment otherwise stalls the
				// client for its 5 s metadata refresh.
				kgo.MetadataMinAge(50*time.Millisecond),
				kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
			)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			var pw sync.WaitGroup
			for seq := range perProd {
				r := &kgo.Record{Topic: topic, Partition: int32(seq % partitions), Value: fmt.Appendf(nil, "%d-%d", p, seq)}
				pw.Add(1)
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					defer pw.Done()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed++
						return
					}
					acked = append(acked, idemAck{producer: p, seq: seq, partition: r.Partition, offset: r.Offset})
				})
				if seq%every == every-1 {
					time.Sleep(pause)
				}
			}
			pw.Wait()
		}()
	}
	wg.Wait()
	return acked, failed
}

// readBackExactlyOnce reads topic from the start and fails the test unless
// every acknowledged record is there once, at the offset it was
// acknowledged with, and each producer's records in each partition are in
// the order sent. It returns how many records it read.
func readBackExactlyOnce(t *testing.T, ctx context.Context, addr, topic string, acked []idemAck) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type key struct {
		producer  int
		partition int32
	}
	last := map[key]int{}
	seen := map[[2]int]int64{} // producer, seq → offset
	deadline := time.Now().Add(60 * time.Second)
	total := 0
	for time.Now().Before(deadline) && len(seen) < len(acked) {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			total++
			ps, ss, _ := strings.Cut(string(r.Value), "-")
			p, _ := strconv.Atoi(ps)
			s, _ := strconv.Atoi(ss)
			if off, dup := seen[[2]int{p, s}]; dup {
				t.Errorf("record %s at offsets %d and %d: duplicated", r.Value, off, r.Offset)
			}
			seen[[2]int{p, s}] = r.Offset
			k := key{p, r.Partition}
			if prev, ok := last[k]; ok && s <= prev {
				t.Errorf("producer %d partition %d: seq %d after %d: reordered", p, r.Partition, s, prev)
			}
			last[k] = s
		})
	}
	for _, ak := range acked {
		off, ok := seen[[2]int{ak.producer, ak.seq}]
		if !ok {
			t.Errorf("acknowledged record %d-%d (partition %d offset %d) lost", ak.producer, ak.seq, ak.partition, ak.offset)
			continue
		}
		if off != ak.offset {
			t.Errorf("record %d-%d acknowledged at offset %d, read at %d", ak.producer, ak.seq, ak.offset, off)
		}
	}
	return total
}
