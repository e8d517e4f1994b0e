package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// seqModel is the behaviour of the layout before seqstates, written
// plainly: one sequence.State per topic, partition and producer, checked
// and accepted batch by batch as that code's committer did.
type seqModel struct {
	states map[seqModelKey]*sequence.State
	ts     map[seqModelKey]int64
	hw     map[string][]int64 // high watermark per topic name and partition
}

type seqModelKey struct {
	topic     string
	partition int32
	pid       int64
}

// commit decides a commit's batches as the old code did.
func (m *seqModel) commit(names []string, bs []metastore.BatchCommit) []metastore.BatchResult {
	out := make([]metastore.BatchResult, len(bs))
	for i, b := range bs {
		name := names[i]
		var st *sequence.State
		k := seqModelKey{name, b.Partition, b.ProducerID}
		first, last := b.BaseSequence, sequence.Last(b.BaseSequence, b.OffsetCount)
		if b.ProducerID >= 0 {
			st = m.states[k]
			dupBase, dup, err := st.Check(b.ProducerEpoch, first, last)
			if err == nil && dup {
				out[i] = metastore.BatchResult{BaseOffset: dupBase, Duplicate: true}
				continue
			}
			if err != nil {
				out[i] = metastore.RejectedBatch(err)
				continue
			}
		}
		base := m.hw[name][b.Partition]
		m.hw[name][b.Partition] += b.OffsetCount
		if b.ProducerID >= 0 {
			m.states[k] = st.Accept(b.ProducerEpoch, first, last, base)
			m.ts[k] = b.MaxTimestamp
		}
		out[i] = metastore.BatchResult{BaseOffset: base}
	}
	return out
}

func (m *seqModel) active(name string, p int32) []metastore.ActiveProducer {
	var out []metastore.ActiveProducer
	for k, st := range m.states {
		if k.topic == name && k.partition == p {
			out = append(out, metastore.ActiveProducer{ProducerID: k.pid, ProducerEpoch: st.Epoch, LastSequence: st.LastSeq,
				LastTimestamp: m.ts[k], CurrentTxnStartOffset: -1})
		}
	}
	slices.SortFunc(out, func(a, b metastore.ActiveProducer) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

func (m *seqModel) dropTopic(name string) {
	for k := range m.states {
		if k.topic == name {
			delete(m.states, k)
			delete(m.ts, k)
		}
	}
}

// TestSequenceStateModel runs random histories of idempotent commits
// (in order, retried, with gaps, under older and newer epochs, from
// several producers), commits in a Batch that rolls back, topic deletion
// and re-creation, added partitions and reopening the file, against
// seqModel: every batch's answer and every partition's ActiveProducers
// after every step must be the old layout's.
func TestSequenceStateModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runSequenceModel(t, seed) })
	}
}

func runSequenceModel(t *testing.T, seed uint64) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(seed, 11))
	path := filepath.Join(t.TempDir(), "meta.db")
	open := func() *Store {
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		s.setFold(foldLimits{records: 1 + int(seed), extents: 1 << 20})
		return s
	}
	s := open()
	defer func() { s.Close() }()
	names := []string{"a", "b"}
	ids := map[string]metastore.TopicID{}
	m := &seqModel{states: map[seqModelKey]*sequence.State{}, ts: map[seqModelKey]int64{}, hw: map[string][]int64{}}
	create := func(name string, n int32) {
		topic, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: n})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = topic.ID
		m.hw[name] = make([]int64, n)
	}
	for _, name := range names {
		create(name, 1+rng.Int32N(4))
	}
	pids := []int64{1000, 1001, 1002, 1003}
	epochs := map[int64]int16{}
	randomCommit := func(obj string) (metastore.SegmentCommit, []string) {
		c := metastore.SegmentCommit{Object: obj, Size: 1000}
		var bnames []string
		for i := range 1 + rng.IntN(8) {
			name := names[rng.IntN(len(names))]
			b := metastore.BatchCommit{TopicID: ids[name], Partition: rng.Int32N(int32(len(m.hw[name]))), ByteOffset: int64(i) * 10,
				ByteLength: 10, OffsetCount: 1 + rng.Int64N(4), MaxTimestamp: rng.Int64N(1 << 41), ProducerID: -1}
			if rng.IntN(8) > 0 {
				pid := pids[rng.IntN(len(pids))]
				b.ProducerID, b.ProducerEpoch = pid, epochs[pid]
				st := m.states[seqModelKey{name, b.Partition, pid}]
				switch r := rng.IntN(10); {
				case st == nil || r < 5: // the next batch (any sequence without state)
					if st != nil {
						b.BaseSequence = sequence.Next(st.LastSeq)
					}
				case r < 7 && len(st.Recent) > 0: // a retry
					old := st.Recent[rng.IntN(len(st.Recent))]
					b.BaseSequence, b.OffsetCount = old.FirstSeq, int64(old.LastSeq-old.FirstSeq)+1
					b.ProducerEpoch = st.Epoch
				case r < 8: // a gap
					b.BaseSequence = st.LastSeq + 2
				case r < 9: // a new epoch
					epochs[pid]++
					b.ProducerEpoch, b.BaseSequence = epochs[pid], 0
				default: // an older epoch
					b.ProducerEpoch = st.Epoch - 1
				}
			}
			c.Batches = append(c.Batches, b)
			bnames = append(bnames, name)
		}
		return c, bnames
	}
	check := func(step int, what string, got, want []metastore.BatchResult) {
		t.Helper()
		for i := range want {
			g, w := got[i], want[i]
			if g.Duplicate != w.Duplicate || (w.Err == nil && g.BaseOffset != w.BaseOffset) || (w.Err == nil) != (g.Err == nil) || (w.Err != nil && !errors.Is(g.Err, w.Err)) {
				t.Fatalf("step %d, %s, batch %d: %+v, want %+v", step, what, i, g, w)
			}
		}
	}
	for step := range 250 {
		switch op := rng.IntN(20); {
		case op < 14:
			c, bnames := randomCommit(fmt.Sprint("segments/", step))
			res, err := s.CommitSegment(ctx, c)
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			check(step, "commit", res, m.commit(bnames, c.Batches))
		case op < 16: // a batch whose last call fails: nothing of it stays
			c, _ := randomCommit(fmt.Sprint("segments/rolled-back-", step))
			err := s.Batch(func(bctx context.Context) error {
				if _, err := s.CommitSegment(bctx, c); err != nil {
					return err
				}
				_, err := s.DeleteTopic(bctx, "no-such-topic")
				return err
			})
			if !errors.Is(err, ErrBatchFailed) {
				t.Fatalf("step %d: batch: %v, want ErrBatchFailed", step, err)
			}
		case op < 17: // two commits in one batch that commits
			c1, n1 := randomCommit(fmt.Sprint("segments/batch-a-", step))
			c2, n2 := randomCommit(fmt.Sprint("segments/batch-b-", step))
			var r1, r2 []metastore.BatchResult
			err := s.Batch(func(bctx context.Context) error {
				var err error
				if r1, err = s.CommitSegment(bctx, c1); err != nil {
					return err
				}
				r2, err = s.CommitSegment(bctx, c2)
				return err
			})
			if err != nil {
				t.Fatalf("step %d: batch: %v", step, err)
			}
			check(step, "first commit of a batch", r1, m.commit(n1, c1.Batches))
			check(step, "second commit of a batch", r2, m.commit(n2, c2.Batches))
		case op < 18:
			name := names[rng.IntN(len(names))]
			if _, err := s.DeleteTopic(ctx, name); err != nil {
				t.Fatal(err)
			}
			m.dropTopic(name)
			create(name, 1+rng.Int32N(4))
		case op < 19:
			name := names[rng.IntN(len(names))]
			n := int32(len(m.hw[name])) + 1 + rng.Int32N(2)
			if _, err := s.CreatePartitions(ctx, name, n); err != nil {
				t.Fatal(err)
			}
			m.hw[name] = append(m.hw[name], make([]int64, int(n)-len(m.hw[name]))...)
		default:
			s.Close()
			s = open()
		}
		for _, name := range names {
			for p := range int32(len(m.hw[name])) {
				got, err := s.ActiveProducers(ctx, ids[name], p)
				if err != nil {
					t.Fatal(err)
				}
				if want := m.active(name, p); !slices.Equal(got, want) {
					t.Fatalf("step %d: active producers of %s/%d: %+v, want %+v", step, name, p, got, want)
				}
			}
		}
	}
}
