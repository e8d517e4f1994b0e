package remote

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// FuzzCommitSegmentsOp runs the CommitSegments op as the control plane
// does, decoding hostile arguments and applying them to an embedded store
// holding a topic of two partitions: nothing may panic, and a group the
// store accepts must answer every batch of every segment.
func FuzzCommitSegmentsOp(f *testing.F) {
	store, err := embedded.Open(filepath.Join(f.TempDir(), "meta.db"), embedded.Options{Memory: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	topic, err := store.CreateTopic(context.Background(), metastore.TopicSpec{Name: "t", Partitions: 2})
	if err != nil {
		f.Fatal(err)
	}
	seed := func(cs []metastore.SegmentCommit) {
		raw, err := Marshal(cs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(raw))
	}
	b := metastore.BatchCommit{TopicID: topic.ID, ByteLength: 10, OffsetCount: 2, ProducerID: -1}
	seed([]metastore.SegmentCommit{{Object: "a", Size: 10, Batches: []metastore.BatchCommit{b}}, {Object: "b", Size: 20, Batches: []metastore.BatchCommit{b, b}}})
	seed([]metastore.SegmentCommit{{Object: "a", Size: 10}, {Object: "a", Size: 10}})
	seed(nil)
	o, _ := Lookup("CommitSegments")
	f.Fuzz(func(t *testing.T, raw []byte) {
		args, err := o.Decode(raw)
		if err != nil {
			return
		}
		res, err := o.Apply(context.Background(), store, args)
		if err != nil {
			return
		}
		var out [][]batchResult
		if err := Unmarshal(res, &out); err != nil {
			t.Fatalf("result does not decode: %v", err)
		}
		cs := args.([]metastore.SegmentCommit)
		if len(out) != len(cs) {
			t.Fatalf("%d results for %d segments", len(out), len(cs))
		}
		for k := range cs {
			if len(out[k]) != len(cs[k].Batches) {
				t.Fatalf("segment %d: %d results for %d batches", k, len(out[k]), len(cs[k].Batches))
			}
		}
	})
}
