package jobs_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// TestKeyCompaction writes 100,000 updates over 1,000 keys, with
// tombstones, to a cleanup.policy=compact topic (straight through the
// bucket and the store, 200 segments of 10 batches in every codec), runs
// key compaction, and checks the partition against a model: exactly the
// latest record of every key at its original offset, tombstones while
// delete.retention.ms lasts, none after.
func TestKeyCompaction(t *testing.T) {
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
	type latest struct {
		offset int64
		value  string // "" for a tombstone
	}
	model := map[string]latest{}
	codecs := []recordbatch.Codec{recordbatch.None, recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd}
	rng := rand.New(rand.NewPCG(1, 2))
	var offset int64
	tombstones := 0
	for s := range 200 {
		b := segment.NewBuilder()
		var placements []int
		for bi := range 10 {
			var recs []recordbatch.Record
			for range 50 {
				k := fmt.Sprintf("key-%d", rng.IntN(1000))
				r := recordbatch.Record{Timestamp: time.Now().UnixMilli(), Key: []byte(k), Value: fmt.Appendf(nil, "v%d", offset)}
				if rng.IntN(20) == 0 {
					r.Value = nil
					tombstones++
					model[k] = latest{offset, ""}
				} else {
					model[k] = latest{offset, string(r.Value)}
				}
				recs = append(recs, r)
				offset++
			}
			placements = append(placements, b.Add(tp.ID, tp.Name, 0,
				recordbatch.Build(recordbatch.BuildOptions{Codec: codecs[(s+bi)%len(codecs)]}, recs...)))
		}
		object, pls := b.Build()
		key := segment.NewKey()
		if err := bucket.Put(t.Context(), key, object); err != nil {
			t.Fatal(err)
		}
		c := metastore.SegmentCommit{Object: key, Size: int64(len(object))}
		for _, i := range placements {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: tp.ID, ByteOffset: pls[i].ByteOffset, ByteLength: pls[i].ByteLength,
				OffsetCount: 50, MaxTimestamp: time.Now().UnixMilli(), ProducerID: -1})
		}
		if _, err := store.CommitSegment(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}

	compact := func() {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		sched := jobs.NewScheduler(store, []jobs.Job{&jobs.KeyCompaction{Store: store, Bucket: bucket}},
			jobs.Options{Holder: "test", Interval: 50 * time.Millisecond})
		done := make(chan error, 1)
		go func() { done <- sched.Run(ctx) }()
		waitFor(t, 90*time.Second, "key compaction", func() bool {
			es, err := store.Extents(t.Context(), tp.ID, 0, 0, 0)
			return err == nil && len(es) == 1 && es[0].EndOffset == offset
		})
		cancel()
		<-done
	}
	check := func(withTombstones bool) {
		t.Helper()
		data := replay(t, store, bucket, tp)[0]
		batches, err := recordbatch.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]latest{}
		n := 0
		next := int64(0)
		for _, b := range batches {
			h, _ := recordbatch.ParseHeader(b)
			if h.BaseOffset < next {
				t.Fatalf("batch at %d overlaps the previous one (ends at %d)", h.BaseOffset, next)
			}
			next = h.BaseOffset + int64(h.LastOffsetDelta) + 1
			// Thinned batches have fewer records than offsets (Validate
			// checks produce input and rejects that); the CRC must hold.
			if crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) != h.CRC {
				t.Fatalf("batch at %d: bad CRC", h.BaseOffset)
			}
			recs, err := recordbatch.Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if _, dup := got[string(r.Key)]; dup {
					t.Fatalf("key %s twice (offset %d)", r.Key, r.Offset)
				}
				got[string(r.Key)] = latest{r.Offset, string(r.Value)}
				n++
			}
		}
		if next != offset {
			t.Errorf("batches end at offset %d, want %d", next, offset)
		}
		live, dead := 0, 0
		for k, want := range model {
			g, ok := got[k]
			switch {
			case want.value == "" && !withTombstones:
				dead++
				if ok {
					t.Errorf("key %s: tombstone past delete.retention.ms still there", k)
				}
			case !ok:
				t.Errorf("key %s: missing, want %+v", k, want)
			case g != want:
				t.Errorf("key %s: got %+v, want %+v", k, g, want)
			default:
				live++
			}
		}
		if len(got) > len(model) {
			t.Errorf("%d keys, the model has %d", len(got), len(model))
		}
		t.Logf("%d updates (%d tombstones) over %d keys -> %d records (%d batches, %d bytes)", offset, tombstones, len(model), n, len(batches), len(data))
	}
	compact()
	check(true)

	// Tombstones go once delete.retention.ms has passed.
	if _, err := store.AlterTopicConfigs(t.Context(), "changelog", []metastore.ConfigChange{{Name: "delete.retention.ms", Value: ptr("0")}, {Name: "min.cleanable.dirty.ratio", Value: ptr("0.01")}}); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Extents(t.Context(), tp.ID, 0, 0, 0)
	// One pass decodes the whole log; under the race detector on a loaded
	// machine it can take seconds, so the scheduler runs for the whole
	// wait rather than in short slices that might each be cut off.
	ctx, cancel := context.WithCancel(t.Context())
	sched := jobs.NewScheduler(store, []jobs.Job{&jobs.KeyCompaction{Store: store, Bucket: bucket}},
		jobs.Options{Holder: "test", Interval: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	waitFor(t, 90*time.Second, "tombstones to go", func() bool {
		es, err := store.Extents(t.Context(), tp.ID, 0, 0, 0)
		return err == nil && len(es) == 1 && es[0].Object != before[0].Object
	})
	cancel()
	<-done
	check(false)
}
