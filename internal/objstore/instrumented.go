package objstore

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation label values.
const (
	opPut    = "put"
	opGet    = "get"
	opDelete = "delete"
	opList   = "list"
)

// Metrics holds the object-store metrics. Build it once per registry with
// NewMetrics and share it between all the buckets instrumented with it.
type Metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the object-store metrics and registers them with reg.
// A nil reg leaves them unregistered, which is handy in tests.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_objstore_requests_total",
			Help: "Object-store requests, by operation and result (ok or error).",
		}, []string{"op", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_objstore_bytes_total",
			Help: "Object bytes written by successful puts and read by successful gets.",
		}, []string{"op"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "floe_objstore_request_duration_seconds",
			Help: "Object-store request latency; for list it includes the caller's callback.",
			// 1 ms to ~33 s: PUTs take tens of milliseconds, slow tails seconds.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"op"}),
	}
	// Create every series up front so that rates start from zero.
	for _, op := range []string{opPut, opGet, opDelete, opList} {
		m.requests.WithLabelValues(op, "ok")
		m.requests.WithLabelValues(op, "error")
		m.duration.WithLabelValues(op)
	}
	m.bytes.WithLabelValues(opPut)
	m.bytes.WithLabelValues(opGet)
	if reg != nil {
		reg.MustRegister(m.requests, m.bytes, m.duration)
	}
	return m
}

func (m *Metrics) observe(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.requests.WithLabelValues(op, result).Inc()
}

// Instrument returns a Bucket that records every request to b in m.
// Errors are passed through unchanged.
func Instrument(b Bucket, m *Metrics) Bucket {
	return &instrumented{b: b, m: m}
}

type instrumented struct {
	b Bucket
	m *Metrics
}

var _ Bucket = (*instrumented)(nil)

func (i *instrumented) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := i.b.Put(ctx, key, data)
	i.m.observe(opPut, start, err)
	if err == nil {
		i.m.bytes.WithLabelValues(opPut).Add(float64(len(data)))
	}
	return err
}

func (i *instrumented) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	start := time.Now()
	data, err := i.b.GetRange(ctx, key, offset, length)
	i.m.observe(opGet, start, err)
	if err == nil {
		i.m.bytes.WithLabelValues(opGet).Add(float64(len(data)))
	}
	return data, err
}

func (i *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := i.b.Delete(ctx, key)
	i.m.observe(opDelete, start, err)
	return err
}

func (i *instrumented) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := time.Now()
	err := i.b.List(ctx, prefix, fn)
	i.m.observe(opList, start, err)
	return err
}
