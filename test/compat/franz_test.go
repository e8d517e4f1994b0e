package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestFranzRoundTrip produces 100,000 records across 3 topics × 8
// partitions with an idempotent franz-go producer and reads them back:
// every record once, byte for byte, in order, offsets contiguous from 0.
func TestFranzRoundTrip(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	admin := newAdmin(t, a.Addr())
	topics := []string{"rt-a", "rt-b", "rt-c"}
	resp, err := admin.CreateTopics(ctx, 8, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}

	const total = 100_000
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := map[string][][]byte{} // "topic/partition" → values in order
	results := make(chan error, total)
	for i := range total {
		topic := topics[i%len(topics)]
		p := int32(i/len(topics)) % 8
		value := fmt.Appendf(nil, "record-%06d-%s", i, topic)
		key := fmt.Appendf(nil, "key-%d", i%97)
		want[fmt.Sprintf("%s/%d", topic, p)] = append(want[fmt.Sprintf("%s/%d", topic, p)], value)
		prod.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Key: key, Value: value}, func(_ *kgo.Record, err error) { results <- err })
	}
	for range total {
		if err := <-results; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string][][]byte{}
	n := 0
	for n < total {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", n, total, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if want := int64(len(got[k])); r.Offset != want {
				t.Fatalf("%s: offset %d, want %d", k, r.Offset, want)
			}
			got[k] = append(got[k], r.Value)
			n++
		})
	}
	for k, vs := range want {
		if len(got[k]) != len(vs) {
			t.Fatalf("%s: got %d records, want %d", k, len(got[k]), len(vs))
		}
		for i := range vs {
			if string(got[k][i]) != string(vs[i]) {
				t.Fatalf("%s offset %d: got %q, want %q", k, i, got[k][i], vs[i])
			}
		}
	}
	t.Logf("round trip of %d records over %d partitions", n, len(want))
}

func newAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}
