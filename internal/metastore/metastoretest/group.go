package metastoretest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// testGroupCommit checks metastore.GroupSequencer against the store's own
// CommitSegment: the same segments committed one by one in one store and
// in groups in another must give the same answers, offsets and extents.
func testGroupCommit(t *testing.T, open func(t *testing.T) metastore.Store) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("SameAsOneByOne/seed%d", seed), func(t *testing.T) {
			groupSameAsOneByOne(t, open, seed)
		})
	}

	t.Run("InvalidGroupCommitsNothing", func(t *testing.T) {
		s := open(t)
		g := s.(metastore.GroupSequencer)
		topic := createTopic(t, s, "g", 1)
		ok := segment(batch(topic.ID, 0, 0, 10, 1))
		for name, cs := range map[string][]metastore.SegmentCommit{
			"empty":        nil,
			"object twice": {ok, segment(batch(topic.ID, 0, 0, 10, 1)), {Object: ok.Object, Size: 10, Batches: []metastore.BatchCommit{batch(topic.ID, 0, 0, 10, 1)}}},
			"bad batch":    {ok, segment(batch(topic.ID, 0, 0, 10, 0))},
		} {
			if res, err := g.CommitSegments(t.Context(), cs); err == nil {
				t.Errorf("%s: CommitSegments = %v, want an error", name, res)
			}
		}
		if o := offsets(t, s, topic.ID, 0); o.HighWatermark != 0 {
			t.Fatalf("high watermark %d after refused groups, want 0", o.HighWatermark)
		}
	})
}

// groupBatch is one batch of the generated scenario, by partition index
// (partition groupPartitions does not exist) and producer index (-1:
// none; 2: a transactional batch of a producer with no transaction).
type groupBatch struct {
	partition int32
	producer  int
	seq       int32
	count     int64
}

const groupPartitions = 4

func groupSameAsOneByOne(t *testing.T, open func(t *testing.T) metastore.Store, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	// The scenario: 14 segments whose bytes follow each other from one
	// object to the next (so that a run merged across objects would
	// show), of idempotent batches with retries and gaps, batches
	// without a producer, an unknown partition and a transactional batch
	// refused for want of a transaction.
	type spec struct {
		at      int64 // the first batch's byte offset in its object
		batches []groupBatch
	}
	var (
		specs []spec
		next  = map[[2]int]int32{}      // next sequence by (producer, partition)
		last  = map[[2]int]groupBatch{} // last batch sent, for retries
		bytes int64
	)
	for range 14 {
		sp := spec{at: bytes}
		for range 1 + rng.IntN(5) {
			b := groupBatch{partition: int32(rng.IntN(groupPartitions)), producer: rng.IntN(3) - 1, count: 1 + rng.Int64N(3)}
			switch r := rng.IntN(40); {
			case r == 0:
				b.partition = groupPartitions
			case r == 1:
				b.producer = 2
			}
			key := [2]int{b.producer, int(b.partition)}
			if b.producer == 0 || b.producer == 1 {
				prev, sent := last[key]
				switch r := rng.IntN(10); {
				case r < 2 && sent:
					b = prev // a retry: a duplicate
				case r == 2:
					b.seq = next[key] + 5 // a gap: out of order
				default:
					b.seq = next[key]
					next[key] += int32(b.count)
					last[key] = b
				}
			}
			sp.batches = append(sp.batches, b)
		}
		bytes += int64(len(sp.batches)) * 10
		specs = append(specs, sp)
	}
	var groups []int // sizes, 1 to 4
	for n := len(specs); n > 0; {
		k := min(n, 1+rng.IntN(4))
		groups = append(groups, k)
		n -= k
	}

	// One store commits one segment at a time, the other in groups.
	type side struct {
		s         metastore.Store
		topic     metastore.Topic
		producers [3]struct {
			id    int64
			epoch int16
		}
	}
	sides := [2]*side{{s: open(t)}, {s: open(t)}}
	for _, sd := range sides {
		sd.topic = createTopic(t, sd.s, "g", groupPartitions)
		for i := range sd.producers {
			id, epoch, err := sd.s.InitProducerID(t.Context(), -1, 0)
			if err != nil {
				t.Fatal(err)
			}
			sd.producers[i].id, sd.producers[i].epoch = id, epoch
		}
	}
	commitOf := func(sd *side, i int) metastore.SegmentCommit {
		sp := specs[i]
		c := metastore.SegmentCommit{Object: fmt.Sprintf("segments/group-%d", i)}
		for j, gb := range sp.batches {
			b := batch(sd.topic.ID, gb.partition, sp.at+int64(j)*10, 10, gb.count)
			if gb.producer >= 0 {
				p := sd.producers[gb.producer]
				b.ProducerID, b.ProducerEpoch, b.BaseSequence = p.id, p.epoch, gb.seq
				b.Transactional = gb.producer == 2
			}
			c.Batches = append(c.Batches, b)
		}
		c.Size = sp.at + int64(len(sp.batches))*10
		return c
	}

	var want, got [][]metastore.BatchResult
	for i := range specs {
		want = append(want, commit(t, sides[0].s, commitOf(sides[0], i)))
	}
	g := sides[1].s.(metastore.GroupSequencer)
	for i, n := 0, 0; n < len(groups); i, n = i+groups[n], n+1 {
		var cs []metastore.SegmentCommit
		for k := i; k < i+groups[n]; k++ {
			cs = append(cs, commitOf(sides[1], k))
		}
		res, err := g.CommitSegments(t.Context(), cs)
		if err != nil {
			t.Fatalf("CommitSegments(segments %d to %d): %v", i, i+groups[n]-1, err)
		}
		if len(res) != len(cs) {
			t.Fatalf("CommitSegments: %d results for %d segments", len(res), len(cs))
		}
		for k, r := range res {
			if len(r) != len(cs[k].Batches) {
				t.Fatalf("CommitSegments segment %d: %d results for %d batches", i+k, len(r), len(cs[k].Batches))
			}
		}
		got = append(got, res...)
	}

	accepted, refused, dups := 0, 0, 0
	for i := range specs {
		for j := range want[i] {
			w, g := want[i][j], got[i][j]
			if w.BaseOffset != g.BaseOffset || w.Duplicate != g.Duplicate || w.LogStartOffset != g.LogStartOffset ||
				(w.Err == nil) != (g.Err == nil) || (w.Err != nil && !errors.Is(g.Err, unwrapAll(w.Err))) {
				t.Errorf("segment %d batch %d %+v: grouped %+v, one by one %+v", i, j, specs[i].batches[j], g, w)
			}
			switch {
			case w.Err != nil:
				refused++
			case w.Duplicate:
				dups++
			default:
				accepted++
			}
		}
	}
	if accepted == 0 || refused == 0 || dups == 0 {
		t.Fatalf("the scenario is too tame: %d accepted, %d refused, %d duplicates", accepted, refused, dups)
	}
	for p := range int32(groupPartitions) {
		wo, gotO := offsets(t, sides[0].s, sides[0].topic.ID, p), offsets(t, sides[1].s, sides[1].topic.ID, p)
		if wo != gotO {
			t.Errorf("partition %d: grouped offsets %+v, one by one %+v", p, gotO, wo)
		}
		we, ge := extents(t, sides[0].s, sides[0].topic.ID, p, 0, 0), extents(t, sides[1].s, sides[1].topic.ID, p, 0, 0)
		if len(we) != len(ge) {
			t.Fatalf("partition %d: grouped %d extents, one by one %d:\n%+v\n%+v", p, len(ge), len(we), ge, we)
		}
		for k := range we {
			a, b := we[k], ge[k]
			a.TopicID, b.TopicID = metastore.TopicID{}, metastore.TopicID{}
			a.CommittedAt, b.CommittedAt = time.Time{}, time.Time{}
			if a != b {
				t.Errorf("partition %d extent %d: grouped %+v, one by one %+v", p, k, b, a)
			}
		}
	}
	for i := range specs {
		key := fmt.Sprintf("segments/group-%d", i)
		ws, wk, err := sides[0].s.ObjectSize(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		gs, gk, err := sides[1].s.ObjectSize(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if ws != gs || wk != gk {
			t.Errorf("object %s: grouped size %d known %v, one by one %d known %v", key, gs, gk, ws, wk)
		}
	}
}

// unwrapAll is the innermost error of err's chain, the sentinel a
// backend wraps.
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
