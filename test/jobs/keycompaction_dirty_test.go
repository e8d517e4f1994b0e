package jobs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// TestKeyCompactionDirtyRatio: min.cleanable.dirty.ratio is Kafka's, the
// share of the log's bytes written since the last cleaning. After a first
// pass leaves 200 keys, 10 updates (5% of the bytes dirty) wait, however
// many passes run; 250 records of new keys on top (54% of the bytes
// dirty: the first pass left 180 emptied batches and 20 full ones) make
// the next pass rewrite the partition, dropping the 10 superseded values
// although they are only 2% of the records (the share of records to
// drop, which Floe used before, would never have reached 0.5).
func TestKeyCompactionDirtyRatio(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bucket, err := localdir.Open(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := store.CreateTopic(t.Context(), metastore.TopicSpec{Name: "changelog", Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "3600000"}})
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 500)
	var offset int64
	write := func(keys ...string) {
		t.Helper()
		var recs []recordbatch.Record
		for _, k := range keys {
			recs = append(recs, recordbatch.Record{Timestamp: time.Now().UnixMilli(), Key: []byte(k), Value: []byte(value)})
		}
		commitBatches(t, store, bucket, tp, recs, 10)
		offset += int64(len(keys))
	}
	keys := func(prefix string, n, rounds int) []string {
		var out []string
		for range rounds {
			for i := range n {
				out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
			}
		}
		return out
	}
	kc := &jobs.KeyCompaction{Store: store, Bucket: bucket}
	// run runs the job for d and returns the partition's extents and
	// record count after it.
	run := func(d time.Duration, until func([]metastore.Extent) bool) []metastore.Extent {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		sched := jobs.NewScheduler(store, []jobs.Job{kc}, jobs.Options{Holder: "test", Interval: 20 * time.Millisecond})
		done := make(chan error, 1)
		go func() { done <- sched.Run(ctx) }()
		var es []metastore.Extent
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			es, err = store.Extents(t.Context(), tp.ID, 0, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if until != nil && until(es) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		return es
	}
	one := func(es []metastore.Extent) bool { return len(es) == 1 && es[0].EndOffset == offset }
	holding := func(n int) func([]metastore.Extent) bool {
		return func(es []metastore.Extent) bool { return one(es) && countRecords(t, store, bucket, tp) == n }
	}

	write(keys("k", 200, 10)...) // 2,000 records, 1,800 superseded
	if es := run(30*time.Second, holding(200)); !one(es) {
		t.Fatalf("first pass: %d extents", len(es))
	}
	if n := countRecords(t, store, bucket, tp); n != 200 {
		t.Fatalf("after the first pass %d records, want 200", n)
	}
	write(keys("k", 10, 1)...) // 10 updates: 10 of 210 records' bytes dirty
	if es := run(500*time.Millisecond, nil); len(es) != 2 {
		t.Fatalf("5%% dirty: %d extents, want the 2 left alone", len(es))
	}
	write(keys("new", 250, 1)...) // 54% of the bytes dirty
	if es := run(30*time.Second, holding(450)); !one(es) {
		t.Fatalf("54%% dirty: %d extents, want 1", len(es))
	}
	if n := countRecords(t, store, bucket, tp); n != 450 {
		t.Fatalf("after the second pass %d records, want 450", n)
	}
}

// commitBatches writes recs to partition 0 of tp as one object of
// batches of per records, committed.
func commitBatches(t *testing.T, store metastore.Store, bucket objstore.Bucket, tp metastore.Topic, recs []recordbatch.Record, per int) {
	t.Helper()
	b := segment.NewBuilder()
	var placements []int
	var counts []int64
	for len(recs) > 0 {
		n := min(per, len(recs))
		placements = append(placements, b.Add(tp.ID, tp.Name, 0, recordbatch.Build(recordbatch.BuildOptions{}, recs[:n]...)))
		counts = append(counts, int64(n))
		recs = recs[n:]
	}
	object, pls := b.Build()
	key := segment.NewKey()
	if err := bucket.Put(t.Context(), key, object); err != nil {
		t.Fatal(err)
	}
	c := metastore.SegmentCommit{Object: key, Size: int64(len(object))}
	for i, p := range placements {
		c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: tp.ID, ByteOffset: pls[p].ByteOffset, ByteLength: pls[p].ByteLength,
			OffsetCount: counts[i], MaxTimestamp: time.Now().UnixMilli(), ProducerID: -1})
	}
	if _, err := store.CommitSegment(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

// countRecords counts the records partition 0 of tp holds.
func countRecords(t *testing.T, store metastore.Store, bucket objstore.Bucket, tp metastore.Topic) int {
	t.Helper()
	batches, err := recordbatch.Split(replay(t, store, bucket, tp)[0])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range batches {
		recs, err := recordbatch.Records(b)
		if err != nil {
			t.Fatal(err)
		}
		n += len(recs)
	}
	return n
}
