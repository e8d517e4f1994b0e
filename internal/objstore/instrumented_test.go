package objstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func openLocal(t *testing.T) objstore.Bucket {
	t.Helper()
	b, err := localdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInstrumentedContract(t *testing.T) {
	m := objstore.NewMetrics(nil)
	objstoretest.Run(t, func(t *testing.T) objstore.Bucket {
		return objstore.Instrument(openLocal(t), m)
	})
}

// metric returns the value of the counter or histogram sample count named
// name whose labels include labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestInstrumentedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := objstore.NewMetrics(reg)
	// One Metrics may serve several buckets.
	b1 := objstore.Instrument(openLocal(t), m)
	b2 := objstore.Instrument(openLocal(t), m)
	ctx := context.Background()

	for _, b := range []objstore.Bucket{b1, b2} {
		if err := b.Put(ctx, "k", make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b1.GetRange(ctx, "k", 10, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.GetRange(ctx, "missing", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("get missing = %v, want ErrNotFound passed through", err)
	}
	if err := b1.Put(ctx, "../bad", []byte("x")); err == nil {
		t.Fatal("put of a bad key succeeded")
	}
	if err := b2.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := b2.List(ctx, "", func(objstore.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"floe_objstore_requests_total", map[string]string{"op": "put", "result": "ok"}, 2},
		{"floe_objstore_requests_total", map[string]string{"op": "put", "result": "error"}, 1},
		{"floe_objstore_requests_total", map[string]string{"op": "get", "result": "ok"}, 1},
		{"floe_objstore_requests_total", map[string]string{"op": "get", "result": "error"}, 1},
		{"floe_objstore_requests_total", map[string]string{"op": "delete", "result": "ok"}, 1},
		{"floe_objstore_requests_total", map[string]string{"op": "list", "result": "ok"}, 1},
		{"floe_objstore_requests_total", map[string]string{"op": "list", "result": "error"}, 0},
		{"floe_objstore_bytes_total", map[string]string{"op": "put"}, 200},
		{"floe_objstore_bytes_total", map[string]string{"op": "get"}, 30},
		{"floe_objstore_request_duration_seconds", map[string]string{"op": "put"}, 3},
		{"floe_objstore_request_duration_seconds", map[string]string{"op": "get"}, 2},
		{"floe_objstore_request_duration_seconds", map[string]string{"op": "delete"}, 1},
		{"floe_objstore_request_duration_seconds", map[string]string{"op": "list"}, 1},
	}
	for _, tt := range tests {
		if got := metric(t, reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}
