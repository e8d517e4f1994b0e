// Package telemetrytest encodes OTLP metrics (opentelemetry-proto
// metrics/v1) as clients push them, for tests: the fields Floe reads,
// and a few it must skip.
package telemetrytest

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// kv is an attribute: a key and a string, int64, float64 or bool value.
type kv struct {
	Key   string
	Value any
}

func anyValue(v any) []byte {
	switch v := v.(type) {
	case string:
		return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), v)
	case bool:
		return protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), protowire.EncodeBool(v))
	case int64:
		return protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(v))
	case float64:
		return protowire.AppendFixed64(protowire.AppendTag(nil, 4, protowire.Fixed64Type), math.Float64bits(v))
	}
	panic(fmt.Sprintf("attribute value %T", v))
}

func keyValue(a kv) []byte {
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), a.Key)
	return protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), anyValue(a.Value))
}

// Point is a NumberDataPoint with an int64 or float64 value and
// attributes given as key, value, key, value, ….
func Point(value any, attrs ...any) []byte {
	var b []byte
	b = protowire.AppendFixed64(protowire.AppendTag(b, 3, protowire.Fixed64Type), 1_700_000_000_000_000_000) // time, skipped
	switch v := value.(type) {
	case int64:
		b = protowire.AppendFixed64(protowire.AppendTag(b, 6, protowire.Fixed64Type), uint64(v))
	case float64:
		b = protowire.AppendFixed64(protowire.AppendTag(b, 4, protowire.Fixed64Type), math.Float64bits(v))
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), keyValue(kv{attrs[i].(string), attrs[i+1]}))
	}
	return b
}

func points(field protowire.Number, pts ...[]byte) []byte {
	var b []byte
	for _, p := range pts {
		b = protowire.AppendBytes(protowire.AppendTag(b, field, protowire.BytesType), p)
	}
	return b
}

// Gauge is a gauge Metric of data points.
func Gauge(name string, pts ...[]byte) []byte {
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
	b = protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), "a description, skipped")
	return protowire.AppendBytes(protowire.AppendTag(b, 5, protowire.BytesType), points(1, pts...))
}

// Sum is a sum Metric of data points, with delta or cumulative
// temporality; its name comes last, as fields may come in any order.
func Sum(name string, delta, monotonic bool, pts ...[]byte) []byte {
	temporality := uint64(2)
	if delta {
		temporality = 1
	}
	sum := points(1, pts...)
	sum = protowire.AppendVarint(protowire.AppendTag(sum, 2, protowire.VarintType), temporality)
	sum = protowire.AppendVarint(protowire.AppendTag(sum, 3, protowire.VarintType), protowire.EncodeBool(monotonic))
	b := protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), sum)
	return protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), name)
}

// Histogram is a histogram Metric of n data points, which Floe does not
// expose.
func Histogram(name string, n int) []byte {
	var pts [][]byte
	for range n {
		pts = append(pts, protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 3)) // count
	}
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
	return protowire.AppendBytes(protowire.AppendTag(b, 9, protowire.BytesType), points(1, pts...))
}

// MetricsData wraps metrics in one ResourceMetrics (with a resource
// attribute, skipped) and one ScopeMetrics.
func MetricsData(metrics ...[]byte) []byte {
	scope := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "librdkafka"))
	scope = append(scope, points(2, metrics...)...)
	resource := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), keyValue(kv{"client_rack", "az-1"}))
	rm := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), resource)
	rm = protowire.AppendBytes(protowire.AppendTag(rm, 2, protowire.BytesType), scope)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rm)
}
