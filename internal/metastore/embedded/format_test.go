package embedded

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// testdata/format1.db is a file written by the code before the packed
// partition states (per-partition keys in the partitions bucket), and
// testdata/format1.json what that code read from it (formatDump).
// testdata/format2.db and format2.json are the same for the code before
// seqstates (partition states per topic, a key per partition and
// producer for sequence state, partitions format 2), and
// testdata/format3.db and format3.json for the code before sequence
// states per span of partitions (a value per topic and producer,
// partitions format 3). With
// FLOE_WRITE_FORMAT_TESTDATA=testdata/formatN TestOldFormatFile writes
// formatN.db and formatN.json again with the code of the day instead of
// checking the files: only do that at a commit whose layout the file is
// meant to keep.
const (
	formatFile = "testdata/format1.db"
	formatDump = "testdata/format1.json"
)

// formatFiles are the old files TestOldFormatFile opens.
var formatFiles = []string{"testdata/format1", "testdata/format2", "testdata/format3"}

// formatClock is a deterministic clock and random source, so that the
// written file does not depend on the day.
type formatClock struct{ t time.Time }

func (c *formatClock) now() time.Time {
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

type counterReader struct{ n byte }

func (r *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

var _ io.Reader = (*counterReader)(nil)

// writeFormatFile builds a store with topics of several sizes, plain and
// idempotent commits, an added partition, an advanced log start and a
// deleted topic.
func writeFormatFile(t *testing.T, path string) {
	t.Helper()
	ctx := t.Context()
	clock := &formatClock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	s, err := Open(path, Options{Now: clock.now, Rand: &counterReader{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "a", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "b", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "gone", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	pid, _, err := s.InitProducerID(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	seq := map[partitionKey]int32{}
	batch := func(id metastore.TopicID, p int32, at, count int64, idem bool) metastore.BatchCommit {
		bc := metastore.BatchCommit{TopicID: id, Partition: p, ByteOffset: at, ByteLength: 10, OffsetCount: count, MaxTimestamp: clock.t.UnixMilli(), ProducerID: -1}
		if idem {
			pk := partitionKey{id: id, partition: p}
			bc.ProducerID, bc.BaseSequence = pid, seq[pk]
			seq[pk] += int32(count)
		}
		return bc
	}
	for i := range 8 {
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/%02d", i), Size: 100}
		for p := range int32(3) {
			c.Batches = append(c.Batches, batch(a.ID, p, int64(p)*10, int64(i+1), i%2 == 0))
		}
		c.Batches = append(c.Batches, batch(b.ID, int32(i%2), 30, 2, true), batch(gone.ID, 0, 40, 1, false))
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if _, err := s.CreatePartitions(ctx, "b", 4); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := metastore.SegmentCommit{Object: "segments/late", Size: 20, Batches: []metastore.BatchCommit{batch(b.ID, 3, 0, 5, true), batch(b.ID, 3, 10, 1, false)}}
	if _, err := s.CommitSegment(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceLogStart(ctx, a.ID, 1, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
}

// dumpState reads everything a file's per-partition state answers, as
// JSON.
func dumpState(t *testing.T, s *Store) []byte {
	t.Helper()
	ctx := t.Context()
	type partition struct {
		Partition int32
		Offsets   metastore.PartitionOffsets
		Extents   []metastore.Extent
		Producers []metastore.ActiveProducer
		MaxTS     metastore.Extent
	}
	type topic struct {
		Topic      metastore.Topic
		Partitions []partition
		Usage      []metastore.PartitionUsage
	}
	var out struct {
		Topics  []topic
		Objects metastore.ObjectUsage
		Unref   []metastore.UnreferencedObject
	}
	topics, err := s.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		tt := topic{Topic: tp}
		for p := range tp.Partitions {
			var pp partition
			pp.Partition = p
			if pp.Offsets, err = s.Offsets(ctx, tp.ID, p); err != nil {
				t.Fatal(err)
			}
			if pp.Extents, err = s.Extents(ctx, tp.ID, p, 0, 0); err != nil {
				t.Fatal(err)
			}
			if pp.Producers, err = s.ActiveProducers(ctx, tp.ID, p); err != nil {
				t.Fatal(err)
			}
			if pp.MaxTS, _, err = s.ExtentWithMaxTimestamp(ctx, tp.ID, p); err != nil {
				t.Fatal(err)
			}
			tt.Partitions = append(tt.Partitions, pp)
		}
		if tt.Usage, err = s.PartitionUsage(ctx, tp.ID); err != nil {
			t.Fatal(err)
		}
		out.Topics = append(out.Topics, tt)
	}
	if out.Objects, err = s.ObjectUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if out.Unref, err = s.ListDeletable(ctx, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 0); err != nil {
		t.Fatal(err)
	}
	v, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return append(v, '\n')
}

// TestOldFormatFile opens a copy of a file written by the code before the
// packed partition states: it reads exactly what that code read, and
// keeps working (a duplicate is still recognised from the old sequence
// state, a new commit continues the offsets).
func TestOldFormatFile(t *testing.T) {
	if prefix := os.Getenv("FLOE_WRITE_FORMAT_TESTDATA"); prefix != "" {
		os.Remove(prefix + ".db")
		writeFormatFile(t, prefix+".db")
		s, err := Open(prefix+".db", Options{})
		if err != nil {
			t.Fatal(err)
		}
		dump := dumpState(t, s)
		s.Close()
		if err := os.WriteFile(prefix+".json", dump, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, prefix := range formatFiles {
		t.Run(filepath.Base(prefix), func(t *testing.T) { checkOldFormatFile(t, prefix) })
	}
}

func checkOldFormatFile(t *testing.T, prefix string) {
	want, err := os.ReadFile(prefix + ".json")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(prefix + ".db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := dumpState(t, s); !bytes.Equal(got, want) {
		t.Fatalf("reads of the old file differ:\n%s\nwant:\n%s", got, want)
	}
	// Opened again (already converted): the same reads.
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := dumpState(t, s); !bytes.Equal(got, want) {
		t.Fatalf("reads of the file opened twice differ:\n%s\nwant:\n%s", got, want)
	}
	checkConverted(t, s)
	checkOldFileStillCommits(t, s)
}

// checkConverted checks a converted file's layout: nothing left in the
// old sequences bucket, and the partitions format that a binary of the
// layout before refuses (it reads format 2 only, and fails Open on any
// other: upgradePartitions of that code).
func checkConverted(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx kv.Tx) error {
		if n := tx.Bucket([]byte(bucketSequences)).KeyN(); n != 0 {
			t.Errorf("%d keys left in the sequences bucket", n)
		}
		if n := tx.Bucket([]byte(bucketSeqStates)).KeyN(); n == 0 {
			t.Error("no producer's sequence states converted")
		}
		f, err := decodeInt64(tx.Bucket([]byte(bucketMeta)).Get([]byte(keyPartitionsFormat)), "partitions format")
		if err != nil || f != partitionsFormat || f == partitionsFormatV2 {
			t.Errorf("partitions format %d, %v; want %d", f, err, partitionsFormat)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkOldFileStillCommits commits to the converted file: topic b's
// partition 3 got offsets 0..5 from the producer's sequences 0..4, then a
// plain batch at 5; a retry of sequences 0..4 is a duplicate at 0, and a
// new batch goes at 6.
func checkOldFileStillCommits(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	b, err := s.Topic(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	active, err := s.ActiveProducers(ctx, b.ID, 3)
	if err != nil || len(active) != 1 {
		t.Fatalf("active producers of b/3: %+v, %v", active, err)
	}
	pid := active[0].ProducerID
	res, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/after", Size: 20, Batches: []metastore.BatchCommit{
		{TopicID: b.ID, Partition: 3, ByteOffset: 0, ByteLength: 10, OffsetCount: 5, ProducerID: pid, BaseSequence: 0},
		{TopicID: b.ID, Partition: 3, ByteOffset: 10, ByteLength: 10, OffsetCount: 2, ProducerID: pid, BaseSequence: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[0].BaseOffset != 0 || res[1].Err != nil || res[1].BaseOffset != 6 {
		t.Fatalf("commit after opening the old file: %+v, want a duplicate at 0 and a batch at 6", res)
	}
	o, err := s.Offsets(ctx, b.ID, 3)
	if err != nil || o.HighWatermark != 8 {
		t.Fatalf("offsets of b/3: %+v, %v; want high watermark 8", o, err)
	}
}
