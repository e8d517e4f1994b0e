package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
