// Package jobs_test checks background jobs end to end: agents with the
// jobs role, real Kafka clients (franz-go, kadm), the bucket and the
// metadata store as they are after retention, DeleteRecords and the
// cleaner.
package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t *testing.T, adm *kadm.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopics(t.Context(), partitions, 1, configs, name)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

func ptr(s string) *string { return &s }

// produce sends n records to partition 0 of topic, each acknowledged
// before the next is sent (one segment each with a short linger), and
// returns the offset of the last.
func produce(t *testing.T, addr, topic string, n int, value string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var last int64
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "%s-%d", value, i)}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", topic, err)
		}
		last = r.Offset
	}
	return last
}

// offsetsOf returns partition 0's log start offset and high watermark.
func offsetsOf(t *testing.T, a *agenttest.Agent, topic string) metastore.PartitionOffsets {
	t.Helper()
	tp, err := a.Store.Topic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.Store.Offsets(t.Context(), tp.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// objectsOf lists the segment objects in the bucket.
func objectsOf(t *testing.T, b objstore.Bucket) []string {
	t.Helper()
	var keys []string
	if err := b.List(t.Context(), "segments/", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// referenced lists every object an extent of any topic names.
func referenced(t *testing.T, s metastore.Store) []string {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	topics, err := s.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tp := range topics {
		for p := range tp.Partitions {
			es, err := s.Extents(ctx, tp.ID, p, 0, 0)
			if err != nil {
				continue // deleted meanwhile
			}
			for _, e := range es {
				seen[e.Object] = true
			}
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkReferencedPresent fails if an object the store refers to is
// missing from the bucket.
func checkReferencedPresent(t *testing.T, s metastore.Store, b objstore.Bucket) {
	t.Helper()
	// The bucket is listed after the store is read: an object referenced
	// then and deleted since would have been deleted while referenced.
	refs := referenced(t, s)
	present := map[string]bool{}
	for _, k := range objectsOf(t, b) {
		present[k] = true
	}
	for _, k := range refs {
		if !present[k] {
			t.Errorf("referenced object %s is missing from the bucket", k)
		}
	}
}

// waitFor is testutil.WaitFor with three times the bound d: the bounds are
// what a quiet machine needs, and CI runs these under the race detector
// next to other packages' tests on 2 cores. A condition met sooner returns
// sooner.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 3*d, what, cond)
}

// consumeFrom reads partition 0 of topic from offset with a reset policy
// for out-of-range offsets, and returns the first record's offset and
// value, waiting up to 10s.
func consumeFrom(t *testing.T, addr, topic string, offset int64, reset kgo.Offset) (int64, string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}}),
		kgo.ConsumeResetOffset(reset))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record from %s@%d: %v", topic, offset, ctx.Err())
		}
		for _, e := range fs.Errors() {
			if !strings.Contains(e.Err.Error(), "OFFSET_OUT_OF_RANGE") {
				t.Logf("fetch error (retried): %v", e.Err)
			}
		}
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0].Offset, string(recs[0].Value)
		}
	}
}
