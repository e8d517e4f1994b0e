package embedded_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

func openAt(t *testing.T, path string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T) metastore.Store {
		return openAt(t, filepath.Join(t.TempDir(), "meta.db"))
	})
}

// TestContractMemory runs the contract suite on a store held in memory
// (Options.Memory, as internal/control keeps its states).
func TestContractMemory(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T) metastore.Store {
		s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{Memory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestMemoryLoadsTheFile checks that a store opened in memory starts
// from the file at its path, and never writes it.
func TestMemoryLoadsTheFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openAt(t, path)
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Extents still in the file's extent log, read the same in memory.
	for i := range 5 {
		c := metastore.SegmentCommit{Object: fmt.Sprint("segments/", i), Size: 20}
		for p := range int32(2) {
			c.Batches = append(c.Batches, metastore.BatchCommit{TopicID: topic.ID, Partition: p, ByteOffset: int64(p) * 10, ByteLength: 10, OffsetCount: 2, ProducerID: -1})
		}
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var want [][]metastore.Extent
	for p := range int32(2) {
		es, err := s.Extents(ctx, topic.ID, p, 0, 0)
		if err != nil || len(es) != 5 {
			t.Fatalf("partition %d: %d extents, %v", p, len(es), err)
		}
		want = append(want, es)
	}
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := embedded.Open(path, embedded.Options{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := m.Topic(ctx, "t")
	if err != nil || got.ID != topic.ID || got.Partitions != 2 {
		t.Fatalf("topic in memory: %+v, %v; want %+v", got, err, topic)
	}
	for p := range int32(2) {
		got, err := m.Extents(ctx, topic.ID, p, 0, 0)
		if err != nil || !reflect.DeepEqual(got, want[p]) {
			t.Errorf("partition %d in memory: %+v, %v; in the file %+v", p, got, err, want[p])
		}
	}
	if _, err := m.CreateTopic(ctx, metastore.TopicSpec{Name: "u", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !slices.Equal(before, after) {
		t.Errorf("the file changed under a store in memory (%v)", err)
	}
}

// TestContractFolding runs the contract suite with an extent log of at
// most two records and three entries, so that nearly every commit folds
// partitions into the extents bucket and reads see both halves.
func TestContractFolding(t *testing.T) {
	for _, limits := range []struct{ records, extents int }{{1, 1 << 20}, {2, 3}} {
		t.Run(fmt.Sprintf("records=%d/extents=%d", limits.records, limits.extents), func(t *testing.T) {
			metastoretest.Run(t, func(t *testing.T) metastore.Store {
				s := openAt(t, filepath.Join(t.TempDir(), "meta.db"))
				embedded.SetFoldLimits(s, limits.records, limits.extents)
				return s
			})
		})
	}
}

// TestReopen checks that everything a commit or an admin call changes is in
// the file, not in memory.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 2, Configs: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "u", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := s.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	idem := metastore.BatchCommit{
		TopicID: topic.ID, Partition: 1, ByteOffset: 10, ByteLength: 10, OffsetCount: 3,
		MaxTimestamp: 42, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 0,
	}
	commits := []metastore.SegmentCommit{
		{Object: "segments/a", Size: 20, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, Partition: 0, ByteLength: 10, OffsetCount: 5, MaxTimestamp: 7, ProducerID: -1},
			idem,
		}},
		{Object: "segments/b", Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, Partition: 0, ByteLength: 10, OffsetCount: 2, MaxTimestamp: 9, ProducerID: -1},
		}},
	}
	for _, c := range commits {
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	type snapshot struct {
		topics  []metastore.Topic
		offsets [2]metastore.PartitionOffsets
		extents [2][]metastore.Extent
		objects []string
	}
	snap := func(s *embedded.Store) snapshot {
		t.Helper()
		var sn snapshot
		var err error
		if sn.topics, err = s.Topics(ctx); err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if sn.offsets[p], err = s.Offsets(ctx, topic.ID, p); err != nil {
				t.Fatal(err)
			}
			if sn.extents[p], err = s.Extents(ctx, topic.ID, p, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		if sn.objects, err = s.Objects(ctx); err != nil {
			t.Fatal(err)
		}
		return sn
	}
	before := snap(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	after := snap(s)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed across reopen:\nbefore %+v\nafter  %+v", before, after)
	}
	if want := []string{"segments/a", "segments/b"}; !slices.Equal(after.objects, want) {
		t.Errorf("Objects = %v, want %v", after.objects, want)
	}

	// Producer state survived: a retry is still a duplicate, the epoch
	// still bumps, and ids are not handed out twice.
	results, err := s.CommitSegment(ctx, metastore.SegmentCommit{Object: "segments/c", Size: 20, Batches: []metastore.BatchCommit{idem}})
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; !r.Duplicate || r.BaseOffset != 0 {
		t.Errorf("retry after reopen: %+v, want duplicate of offset 0", r)
	}
	if _, got, err := s.InitProducerID(ctx, pid, epoch); err != nil || got != epoch+1 {
		t.Errorf("bump after reopen: epoch %d, %v; want %d", got, err, epoch+1)
	}
	if next, _, err := s.InitProducerID(ctx, -1, -1); err != nil || next <= pid {
		t.Errorf("allocate after reopen: %d, %v; want an id above %d", next, err, pid)
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	first, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	second, err := embedded.Open(path, embedded.Options{})
	if err == nil {
		second.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("second Open took %v to fail", took)
	}
	if msg := err.Error(); !strings.Contains(msg, "locked") || !strings.Contains(msg, path) {
		t.Errorf("second Open error %q does not say the file %s is locked", msg, path)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openAt(t, path) // the lock is gone with the first store
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new", "dirs", "meta.db")
	s, err := embedded.OpenURL("embedded://" + path)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("store file not created: %v", err)
	}

	for _, raw := range []string{
		"postgres://" + path,
		"embedded:relative/meta.db",
		"embedded://host/meta.db",
		"embedded:///" + strings.TrimPrefix(path, "/") + "?sync=false",
		"embedded://",
		"://",
	} {
		if s, err := embedded.OpenURL(raw); err == nil {
			s.Close()
			t.Errorf("OpenURL(%q) succeeded", raw)
		}
	}
}

// TestObjects checks that only objects holding accepted batches are listed
// as referenced.
func TestObjects(t *testing.T) {
	ctx := t.Context()
	s := openAt(t, filepath.Join(t.TempDir(), "meta.db"))
	if objs, err := s.Objects(ctx); err != nil || len(objs) != 0 {
		t.Fatalf("Objects of a new store: %v, %v", objs, err)
	}
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	commits := []metastore.SegmentCommit{
		{Object: "segments/used", Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
		}},
		{Object: "segments/rejected", Size: 10, Batches: []metastore.BatchCommit{
			{TopicID: topic.ID, Partition: 3, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
		}},
	}
	for _, c := range commits {
		if _, err := s.CommitSegment(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if objs, err := s.Objects(ctx); err != nil || !slices.Equal(objs, []string{"segments/used"}) {
		t.Errorf("Objects = %v, %v; want [segments/used]", objs, err)
	}
}

// TestCloseWhileBusy closes the store under concurrent commits: each call
// either completes or reports ErrClosed, and none hangs.
func TestCloseWhileBusy(t *testing.T) {
	ctx := t.Context()
	s := openAt(t, filepath.Join(t.TempDir(), "meta.db"))
	topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := metastore.SegmentCommit{Object: "segments/x", Size: 10, Batches: []metastore.BatchCommit{
		{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1},
	}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				_, err := s.CommitSegment(ctx, c)
				if errors.Is(err, metastore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("CommitSegment: %v", err)
					return
				}
				if _, err := s.Extents(ctx, topic.ID, 0, 0, 1); err != nil && !errors.Is(err, metastore.ErrClosed) {
					t.Errorf("Extents: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
