package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// A short run on an embedded store commits, reads, reports consistent
// figures and progress lines, and deletes its topic.
func TestRunMetastore(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var progress bytes.Buffer
	rep, err := RunMetastore(t.Context(), store, MetastoreConfig{
		Agents: 4, PartitionsPerCommit: 3, Partitions: 20, Readers: 2, ReadsPerSec: 200,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Progress: &progress, ProgressInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Commits == 0 || rep.Reads == 0 || rep.CommitErrors != 0 || rep.ReadErrors != 0 || rep.RejectedBatches != 0 {
		t.Fatalf("report %+v: want commits and reads, no errors or rejections", rep)
	}
	if rep.Reads > 300 { // 200/s for 0.5 s; unpaced readers make thousands
		t.Errorf("%d reads in %.2f s at 200 reads/s: the readers are not paced", rep.Reads, rep.Seconds)
	}
	if rep.ProcessCPUSeconds <= 0 || rep.OtherCPUSeconds < 0 {
		t.Errorf("CPU while measuring: this process %v s, the rest %v s", rep.ProcessCPUSeconds, rep.OtherCPUSeconds)
	}
	if rep.Commit.Count != rep.Commits || !rep.Commit.Ordered() || !rep.Read.Ordered() || rep.CommitsPerSec <= 0 {
		t.Errorf("inconsistent figures: %+v", rep)
	}
	if !strings.Contains(progress.String(), "commits/s") {
		t.Errorf("no progress line: %q", progress.String())
	}
	if topics, _ := store.Topics(context.Background()); len(topics) != 0 {
		t.Errorf("topics left: %+v", topics)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	if !strings.Contains(out.String(), "p99") {
		t.Errorf("report text: %q", out.String())
	}
}

// With segments in flight and uploads that take no time, every commit
// finds the agent's other segments ready: it commits all of them in one
// transaction where the store commits groups, one at a time with NoGroups.
// Sequences stay right either way (no batch rejected).
func TestRunMetastoreInflightGroups(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, noGroups := range []bool{false, true} {
		rep, err := RunMetastore(t.Context(), store, MetastoreConfig{
			Agents: 2, PartitionsPerCommit: 3, Partitions: 5, InflightSegments: 4, NoGroups: noGroups,
			Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Commits == 0 || rep.CommitErrors != 0 || rep.RejectedBatches != 0 {
			t.Fatalf("no groups %v: report %+v: want commits, no errors or rejections", noGroups, rep)
		}
		want := rep.Commits / 4 // segments per transaction: all four
		if noGroups {
			want = rep.Commits
		}
		if rep.Transactions != want || rep.Commits%4 != 0 && !noGroups || rep.Groups == noGroups {
			t.Errorf("no groups %v: %d segments in %d transactions (groups %v), want %d transactions", noGroups, rep.Commits, rep.Transactions, rep.Groups, want)
		}
		if !rep.Segment.Ordered() || rep.Segment.Count != rep.Commits {
			t.Errorf("no groups %v: segment latencies %+v for %d segments", noGroups, rep.Segment, rep.Commits)
		}
		var out bytes.Buffer
		rep.WriteText(&out)
		if !strings.Contains(out.String(), "4 segments in flight") || !strings.Contains(out.String(), "transactions:") {
			t.Errorf("report text: %q", out.String())
		}
	}
	if err := (&MetastoreConfig{Agents: 1, PartitionsPerCommit: 1, Partitions: 1, InflightSegments: 65, Duration: time.Second}).validate(); err == nil {
		t.Error("65 segments in flight accepted")
	}
}

// countingStore counts the commits and reads that go through it.
type countingStore struct {
	metastore.Store
	commits, reads atomic.Int64
}

func (c *countingStore) CommitSegment(ctx context.Context, sc metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	c.commits.Add(1)
	return c.Store.CommitSegment(ctx, sc)
}

func (c *countingStore) Offsets(ctx context.Context, topic metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	c.reads.Add(1)
	return c.Store.Offsets(ctx, topic, partition)
}

// With AgentStores, the agents and readers go through those stores, spread
// over all of them, and none through the store that holds the topic.
func TestRunMetastoreAgentStores(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	main := &countingStore{Store: store}
	apart := []*countingStore{{Store: store}, {Store: store}}
	rep, err := RunMetastore(t.Context(), main, MetastoreConfig{
		Agents: 4, PartitionsPerCommit: 2, Partitions: 10, Readers: 2, ReadsPerSec: 200,
		Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
		AgentStores: []metastore.Store{apart[0], apart[1]},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stores != 2 || rep.Commits == 0 || rep.CommitErrors != 0 {
		t.Fatalf("report %+v: want 2 stores, commits, no errors", rep)
	}
	if main.commits.Load() != 0 || main.reads.Load() != 0 {
		t.Errorf("the topic's store took %d commits and %d reads, want none", main.commits.Load(), main.reads.Load())
	}
	for i, s := range apart {
		if s.commits.Load() == 0 || s.reads.Load() == 0 {
			t.Errorf("agent store %d took %d commits and %d reads, want some of each", i, s.commits.Load(), s.reads.Load())
		}
	}
}

func TestMetastoreConfigBounds(t *testing.T) {
	ok := MetastoreConfig{Agents: 1, PartitionsPerCommit: 1, Partitions: 1, Duration: time.Second}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*MetastoreConfig){
		func(c *MetastoreConfig) { c.Agents = 0 },
		func(c *MetastoreConfig) { c.Agents = maxBenchAgents + 1 },
		func(c *MetastoreConfig) { c.PartitionsPerCommit = 2 }, // more than the partitions
		func(c *MetastoreConfig) { c.Partitions = maxBenchPartitions + 1 },
		func(c *MetastoreConfig) { c.Readers = -1 },
		func(c *MetastoreConfig) { c.ReadsPerSec = -1 },
		func(c *MetastoreConfig) { c.Duration = 0 },
		func(c *MetastoreConfig) { c.Warmup = -1 },
	} {
		c := ok
		bad(&c)
		if err := c.validate(); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

// machineBusyCPU counts this process's own work: a tenth of a second of
// CPU spent here moves it by about as much (in ticks of 10 ms).
func TestMachineBusyCPU(t *testing.T) {
	before := machineBusyCPU()
	if before == 0 {
		t.Skip("no /proc/stat here")
	}
	start, x := processCPU(), 0
	for deadline := time.Now().Add(5 * time.Second); processCPU()-start < 0.1 && time.Now().Before(deadline); {
		x++
	}
	spent, busy := processCPU()-start, machineBusyCPU()-before
	if spent < 0.1 || busy < spent-0.03 {
		t.Fatalf("spent %.3f s of CPU here (%d rounds), the machine counted %.3f s busy", spent, x, busy)
	}
}
