package metastoretest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/floe-io/floe/internal/metastore"
)

// testModel runs random interleavings of commits, retention, extent
// replacements (some of them planned on stale reads) and forgetting
// objects against a simple in-memory model of extents and objects, and
// compares the store with the model after every step.
func testModel(t *testing.T, open func(t *testing.T) metastore.Store) {
	s := open(t)
	iteration := 0
	rapid.Check(t, func(rt *rapid.T) {
		iteration++
		m := &model{
			t: rt, s: s, parts: make([]modelPartition, 2),
			refs: map[string]int{}, unref: map[string]bool{},
		}
		m.topic = createTopicR(rt, s, fmt.Sprintf("model-%d", iteration), int32(len(m.parts)))
		rt.Repeat(map[string]func(*rapid.T){
			"commit":  m.commit,
			"retain":  m.retain,
			"replace": m.replace,
			"forget":  m.forget,
			"":        m.check,
		})
	})
}

func createTopicR(rt *rapid.T, s metastore.TopicStore, name string, partitions int32) metastore.Topic {
	topic, err := s.CreateTopic(rt.Context(), metastore.TopicSpec{Name: name, Partitions: partitions})
	if err != nil {
		rt.Fatalf("CreateTopic: %v", err)
	}
	return topic
}

type modelExtent struct {
	base, end int64
	object    string
}

type modelPartition struct {
	logStart, hwm int64
	extents       []modelExtent
	// history holds every extent the partition ever had, for
	// replacements planned on stale reads.
	history []modelExtent
}

type model struct {
	t     *rapid.T
	s     metastore.Store
	topic metastore.Topic
	parts []modelPartition
	refs  map[string]int  // extents per object, for objects ever referenced and not forgotten
	unref map[string]bool // objects with no extent left, not forgotten
}

func (m *model) ref(object string, delta int) {
	m.refs[object] += delta
	if m.refs[object] == 0 {
		m.unref[object] = true
	} else {
		delete(m.unref, object)
	}
}

func (m *model) commit(rt *rapid.T) {
	obj := "segments/" + uuid.NewString()
	parts := rapid.SliceOfNDistinct(rapid.Int32Range(0, int32(len(m.parts)-1)), 1, len(m.parts), rapid.ID[int32]).Draw(rt, "partitions")
	c := metastore.SegmentCommit{Object: obj}
	for i, p := range parts {
		n := rapid.Int64Range(1, 5).Draw(rt, "count")
		c.Batches = append(c.Batches, batch(m.topic.ID, p, int64(i)*100, 100, n))
		c.Size += 100
	}
	results, err := m.s.CommitSegment(rt.Context(), c)
	if err != nil {
		rt.Fatalf("commit: %v", err)
	}
	for i, b := range c.Batches {
		mp := &m.parts[b.Partition]
		if results[i].Err != nil || results[i].BaseOffset != mp.hwm {
			rt.Fatalf("commit batch %d: %+v, want base %d", i, results[i], mp.hwm)
		}
		e := modelExtent{mp.hwm, mp.hwm + b.OffsetCount, obj}
		mp.extents = append(mp.extents, e)
		mp.history = append(mp.history, e)
		mp.hwm = e.end
		m.ref(obj, 1)
	}
}

func (m *model) retain(rt *rapid.T) {
	p := rapid.IntRange(0, len(m.parts)-1).Draw(rt, "partition")
	mp := &m.parts[p]
	to := rapid.Int64Range(-2, mp.hwm+2).Draw(rt, "offset")
	o, err := m.s.AdvanceLogStart(rt.Context(), m.topic.ID, int32(p), to)
	if to == metastore.LogStartHighWatermark {
		to = mp.hwm
	}
	if to < 0 || to > mp.hwm {
		if !errors.Is(err, metastore.ErrOffsetOutOfRange) {
			rt.Fatalf("AdvanceLogStart(%d) with hwm %d: %v, want ErrOffsetOutOfRange", to, mp.hwm, err)
		}
		return
	}
	if err != nil {
		rt.Fatalf("AdvanceLogStart(%d): %v", to, err)
	}
	if to > mp.logStart {
		mp.logStart = to
		for len(mp.extents) > 0 && mp.extents[0].end <= to {
			m.ref(mp.extents[0].object, -1)
			mp.extents = mp.extents[1:]
		}
	}
	if o.LogStartOffset != mp.logStart || o.HighWatermark != mp.hwm {
		rt.Fatalf("AdvanceLogStart(%d) = %+v, model %d..%d", to, o, mp.logStart, mp.hwm)
	}
}

// replace swaps a run of extents for one or two new ones in a fresh
// object, in one or both partitions. The run comes from the partition's
// history, so it may be stale: the model says whether the store must
// accept it.
func (m *model) replace(rt *rapid.T) {
	obj := "compacted/" + uuid.NewString()
	var (
		rs     []metastore.PartitionReplacement
		valid  = true
		plans  = map[int][]modelExtent{}
		starts = map[int]int{}
	)
	parts := rapid.SliceOfNDistinct(rapid.IntRange(0, len(m.parts)-1), 1, len(m.parts), rapid.ID[int]).Draw(rt, "partitions")
	for _, p := range parts {
		mp := &m.parts[p]
		if len(mp.history) == 0 {
			continue
		}
		// A run of consecutive extents as they were at some point.
		i := rapid.IntRange(0, len(mp.history)-1).Draw(rt, "from")
		run := []modelExtent{mp.history[i]}
		for j := i + 1; j < len(mp.history) && len(run) < 3 && mp.history[j].base == run[len(run)-1].end && rapid.Bool().Draw(rt, "longer"); j++ {
			run = append(run, mp.history[j])
		}
		base, end := run[0].base, run[len(run)-1].end
		r := metastore.PartitionReplacement{TopicID: m.topic.ID, Partition: int32(p)}
		for _, e := range run {
			r.Old = append(r.Old, metastore.ExtentRef{BaseOffset: e.base, Object: e.object})
		}
		cut := end
		if end-base > 1 && rapid.Bool().Draw(rt, "split") {
			cut = rapid.Int64Range(base+1, end-1).Draw(rt, "cut")
		}
		r.New = append(r.New, newExtent(obj, 1000, int64(p)*500, 100, base, cut))
		if cut < end {
			r.New = append(r.New, newExtent(obj, 1000, int64(p)*500+100, 100, cut, end))
		}
		rs = append(rs, r)
		// Accepted only if the run is exactly what the partition holds.
		k := slices.IndexFunc(mp.extents, func(e modelExtent) bool { return e.base == base })
		if k < 0 || k+len(run) > len(mp.extents) || !slices.Equal(mp.extents[k:k+len(run)], run) {
			valid = false
		}
		starts[p] = k
		plans[p] = nil
		for _, e := range r.New {
			if e.EndOffset > mp.logStart { // the store drops the rest at once
				plans[p] = append(plans[p], modelExtent{e.BaseOffset, e.EndOffset, obj})
			}
		}
	}
	if len(rs) == 0 {
		return
	}
	err := m.s.ReplaceExtents(rt.Context(), rs)
	if !valid {
		if !errors.Is(err, metastore.ErrExtentsChanged) {
			rt.Fatalf("stale replacement %+v: %v, want ErrExtentsChanged", rs, err)
		}
		return
	}
	if err != nil {
		rt.Fatalf("replacement %+v: %v", rs, err)
	}
	for _, r := range rs {
		p := int(r.Partition)
		mp := &m.parts[p]
		k := starts[p]
		for _, e := range mp.extents[k : k+len(r.Old)] {
			m.ref(e.object, -1)
		}
		mp.extents = slices.Concat(mp.extents[:k], plans[p], mp.extents[k+len(r.Old):])
		for _, e := range r.New {
			mp.history = append(mp.history, modelExtent{e.BaseOffset, e.EndOffset, obj})
		}
		for range plans[p] {
			m.ref(obj, 1)
		}
	}
}

func (m *model) forget(rt *rapid.T) {
	if len(m.unref) == 0 {
		return
	}
	keys := slices.Sorted(maps.Keys(m.unref))
	k := rapid.SampledFrom(keys).Draw(rt, "object")
	if err := m.s.ForgetObject(rt.Context(), k); err != nil {
		rt.Fatalf("ForgetObject(%s): %v", k, err)
	}
	delete(m.unref, k)
	delete(m.refs, k)
}

func (m *model) check(rt *rapid.T) {
	ctx := rt.Context()
	for p := range m.parts {
		mp := &m.parts[p]
		o, err := m.s.Offsets(ctx, m.topic.ID, int32(p))
		if err != nil || o.LogStartOffset != mp.logStart || o.HighWatermark != mp.hwm {
			rt.Fatalf("partition %d offsets %+v, %v; model %d..%d", p, o, err, mp.logStart, mp.hwm)
		}
		es, err := m.s.Extents(ctx, m.topic.ID, int32(p), 0, 0)
		if err != nil {
			rt.Fatal(err)
		}
		got := make([]modelExtent, len(es))
		for i, e := range es {
			got[i] = modelExtent{e.BaseOffset, e.EndOffset, e.Object}
		}
		if !slices.Equal(got, mp.extents) {
			rt.Fatalf("partition %d extents %v, model %v", p, got, mp.extents)
		}
		// No gap, no overlap, from the log start to the high watermark.
		for i := 1; i < len(got); i++ {
			if got[i].base != got[i-1].end {
				rt.Fatalf("partition %d: extents %v are not contiguous", p, got)
			}
		}
		if len(got) > 0 && (got[0].base > mp.logStart || got[0].end <= mp.logStart || got[len(got)-1].end != mp.hwm) {
			rt.Fatalf("partition %d: extents %v do not cover %d..%d", p, got, mp.logStart, mp.hwm)
		}
	}
	keys := slices.Sorted(maps.Keys(m.refs))
	known, err := m.s.KnownObjects(ctx, keys)
	if err != nil {
		rt.Fatal(err)
	}
	if len(known) != len(keys) {
		rt.Fatalf("KnownObjects: %d of %d", len(known), len(keys))
	}
	del, err := m.s.ListDeletable(ctx, time.Now().Add(clockSlack), 0)
	if err != nil {
		rt.Fatal(err)
	}
	gotUnref := map[string]bool{}
	for _, o := range del {
		if _, ours := m.refs[o.Key]; ours {
			gotUnref[o.Key] = true
		}
	}
	if !maps.Equal(gotUnref, m.unref) {
		rt.Fatalf("deletable %v, model %v", slices.Sorted(maps.Keys(gotUnref)), slices.Sorted(maps.Keys(m.unref)))
	}
}
