package txncoord_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
	"github.com/floe-io/floe/internal/txncoord"
)

// endTogether starts an open transaction on both partitions of out for
// each id, ends them all at once (commit for even ids, abort for odd
// ones), and returns each end's code by id.
func endTogether(t *testing.T, c *txncoord.Coordinator, s metastore.Store, out metastore.Topic, ids []string) map[string]int16 {
	t.Helper()
	type prod struct {
		pid   int64
		epoch int16
	}
	prods := map[string]prod{}
	for _, id := range ids {
		pid, epoch := initProducer(t, c, id)
		wantCode(t, "AddPartitions "+id, addPartitions(c, t.Context(), id, pid, epoch, tp(out, 0), tp(out, 1)), 0)
		for p := range int32(2) {
			if r := produce(t, s, tp(out, p), pid, epoch, 0, 2); r.Err != nil {
				t.Fatalf("produce %s: %v", id, r.Err)
			}
		}
		prods[id] = prod{pid, epoch}
	}
	var mu sync.Mutex
	codes := map[string]int16{}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := prods[id]
			code := endTxn(c, context.Background(), id, p.pid, p.epoch, i%2 == 0).Err
			mu.Lock()
			codes[id] = code
			mu.Unlock()
		}()
	}
	wg.Wait()
	return codes
}

// markerObjects lists the objects holding the control batches of out's
// partitions, and counts the markers.
func markerObjects(t *testing.T, s metastore.Store, b *bucket, out metastore.Topic) (map[string]bool, int) {
	t.Helper()
	objects, markers := map[string]bool{}, 0
	for p := range int32(2) {
		exts, err := s.Extents(t.Context(), out.ID, p, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exts {
			data := b.get(e.Object)
			if data == nil {
				continue // a data batch of produce(), which writes no object
			}
			batch := data[e.ByteOffset : e.ByteOffset+e.ByteLength]
			h, err := recordbatch.ParseHeader(batch)
			if err != nil || !h.IsControl() {
				t.Fatalf("extent %+v in a markers object is not a control batch: %v", e, err)
			}
			objects[e.Object] = true
			markers++
		}
	}
	return objects, markers
}

// TestEndsShareMarkersObject: EndTxns that come together within
// MarkerGather upload their markers in one object (one PUT), each end
// still committing its own markers: every partition gets one marker per
// transaction, commits and aborts alike, all in that object. With
// MarkerGather negative every end uploads its own.
func TestEndsShareMarkersObject(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		gather  time.Duration
		objects int
	}{
		{time.Second, 1}, // long enough that the four ends surely meet
		{-1, 4},
	} {
		t.Run(fmt.Sprintf("gather %v", tc.gather), func(t *testing.T) {
			s, b := openStore(t), newBucket()
			reg := prometheus.NewRegistry()
			c := newCoordinator(t, s, b, nil, txncoord.Options{MarkerGather: tc.gather, Registerer: reg})
			out := createTopic(t, s, "out", 2)
			for id, code := range endTogether(t, c, s, out, ids) {
				wantCode(t, "EndTxn "+id, code, 0)
			}
			objects, markers := markerObjects(t, s, b, out)
			if len(objects) != tc.objects || markers != 2*len(ids) {
				t.Errorf("%d markers in %d objects, want %d in %d", markers, len(objects), 2*len(ids), tc.objects)
			}
			if n := len(b.keys()); n != tc.objects {
				t.Errorf("%d objects uploaded, want %d", n, tc.objects)
			}
			if got := gathered(t, reg, "floe_txn_marker_objects_total"); got != float64(tc.objects) {
				t.Errorf("floe_txn_marker_objects_total %v, want %d", got, tc.objects)
			}
			for p := range int32(2) {
				if o := offsets(t, s, tp(out, p)); o.LastStableOffset != o.HighWatermark || o.HighWatermark != int64(3*len(ids)) {
					t.Errorf("partition %d: %+v, want every transaction ended (high watermark %d)", p, o, 3*len(ids))
				}
			}
			// The shared object is a segment like any: it decodes whole.
			for key := range objects {
				seg, err := segment.Decode(b.get(key))
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, part := range seg.Partitions {
					n += len(part.Batches)
				}
				if n != 2*len(ids)/tc.objects {
					t.Errorf("object %s holds %d batches", key, n)
				}
			}
		})
	}
}

// TestSharedMarkersOneEndFails: when one end of a shared object fails in
// its store step, the others commit; its markers stay unreferenced bytes
// of the object, and its retry commits with a new object.
func TestSharedMarkersOneEndFails(t *testing.T) {
	base := openStore(t)
	s, b := &hookStore{Store: base}, newBucket()
	c := newCoordinator(t, s, b, nil, txncoord.Options{MarkerGather: time.Second})
	out := createTopic(t, base, "out", 2)
	var failing sync.Mutex
	fail := true
	s.onEnd = func(_ context.Context, e metastore.TxnEnd) error {
		failing.Lock()
		defer failing.Unlock()
		if e.Next.TransactionalID == "b" && fail {
			return errors.New("store down for b")
		}
		return nil
	}
	codes := endTogether(t, c, base, out, []string{"a", "b"})
	wantCode(t, "EndTxn a", codes["a"], 0)
	wantCode(t, "EndTxn b, store failing", codes["b"], kerr.CoordinatorNotAvailable.Code)
	if objects, markers := markerObjects(t, base, b, out); len(objects) != 1 || markers != 2 {
		t.Fatalf("after one end failed: %d markers in %v, want a's 2 in one object", markers, objects)
	}
	failing.Lock()
	fail = false
	failing.Unlock()
	d := c.Describe(t.Context(), []string{"b"})[0]
	if d.State != "Ongoing" {
		t.Fatalf("b after its failed end: %+v", d)
	}
	wantCode(t, "EndTxn b, retried", endTxn(c, t.Context(), "b", d.ProducerID, d.ProducerEpoch, false).Err, 0)
	if objects, markers := markerObjects(t, base, b, out); len(objects) != 2 || markers != 4 {
		t.Errorf("after b's retry: %d markers in %d objects, want 4 in 2", markers, len(objects))
	}
}

// gathered reads a counter from reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
