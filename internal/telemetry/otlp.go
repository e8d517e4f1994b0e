package telemetry

// A decoder for the part of OTLP's MetricsData (opentelemetry-proto
// metrics/v1, protobuf) that clients push and Floe exposes: the number
// data points of gauges and sums, with their attributes. It reads the
// protobuf wire format directly (protowire), skipping every other field,
// so that no generated OTLP package is needed. Histograms, exponential
// histograms and summaries are counted, not decoded; resource and scope
// attributes are skipped.
//
// The input is hostile: every length is checked by protowire before it
// is used, nesting is fixed by the schema (no recursion on input
// depth), attributes are bounded in number and length, and the caller
// bounds the points read.

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// errMalformed reports a push whose metrics are not a MetricsData.
var errMalformed = errors.New("malformed OTLP metrics")

// errStop ends a walk early, without an error for the caller.
var errStop = errors.New("stop")

// Field numbers of opentelemetry-proto's metrics/v1 and common/v1.
const (
	fieldResourceMetrics = 1 // MetricsData.resource_metrics
	fieldScopeMetrics    = 2 // ResourceMetrics.scope_metrics
	fieldMetrics         = 2 // ScopeMetrics.metrics

	fieldMetricName         = 1
	fieldMetricGauge        = 5
	fieldMetricSum          = 7
	fieldMetricHistogram    = 9
	fieldMetricExpHistogram = 10
	fieldMetricSummary      = 11

	fieldDataPoints        = 1 // Gauge, Sum, Histogram, … .data_points
	fieldSumTemporality    = 2
	fieldSumMonotonic      = 3
	temporalityDelta       = 1
	fieldPointAttributes   = 7 // NumberDataPoint.attributes
	fieldPointAsDouble     = 4
	fieldPointAsInt        = 6
	fieldPointFlags        = 8
	flagNoRecordedValue    = 1
	fieldKeyValueKey       = 1
	fieldKeyValueValue     = 2
	fieldAnyString         = 1
	fieldAnyBool           = 2
	fieldAnyInt            = 3
	fieldAnyDouble         = 4
	maxMetricNameBytes     = 256
	maxAttributes          = 16
	maxAttributeKeyBytes   = 64
	maxAttributeValueBytes = 128
)

// kind is how a data point is exposed.
type kind uint8

const (
	gauge   kind = iota // the latest value
	counter             // a monotonic sum
	updown              // a sum that may go down: exposed as a gauge
)

// point is one number data point of a pushed gauge or sum.
type point struct {
	metric string
	// attrs are the data point's attributes, "key=value" sorted by key
	// and joined by ",".
	attrs string
	value float64
	kind  kind
	// delta: a sum's value is its change since the previous push, not
	// its total.
	delta bool
}

// decodeMetrics walks a MetricsData message. For every gauge and sum
// whose name want accepts it calls onPoint with each data point that has
// a value, and for every other metric onOther with its number of data
// points (onOther's name argument is empty when want refused the name);
// a false from onPoint stops the walk without an error.
func decodeMetrics(b []byte, want func(name string) bool, onPoint func(point) bool, onOther func(name string, points int)) error {
	err := each(b, func(num protowire.Number, v field) error {
		if num != fieldResourceMetrics || v.typ != protowire.BytesType {
			return nil
		}
		return each(v.bytes, func(num protowire.Number, v field) error {
			if num != fieldScopeMetrics || v.typ != protowire.BytesType {
				return nil
			}
			return each(v.bytes, func(num protowire.Number, v field) error {
				if num != fieldMetrics || v.typ != protowire.BytesType {
					return nil
				}
				return decodeMetric(v.bytes, want, onPoint, onOther)
			})
		})
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// decodeMetric decodes one Metric. Its name may follow its data, so the
// fields are read first and the data decoded after.
func decodeMetric(b []byte, want func(string) bool, onPoint func(point) bool, onOther func(string, int)) error {
	var name string
	var data []byte
	var dataField protowire.Number
	err := each(b, func(num protowire.Number, v field) error {
		if v.typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldMetricName:
			name = clip(string(v.bytes), maxMetricNameBytes)
		case fieldMetricGauge, fieldMetricSum, fieldMetricHistogram, fieldMetricExpHistogram, fieldMetricSummary:
			data, dataField = v.bytes, num
		}
		return nil
	})
	if err != nil {
		return err
	}
	if data == nil {
		return nil
	}
	if !want(name) {
		n, err := countPoints(data)
		if err == nil {
			onOther("", n)
		}
		return err
	}
	p := point{metric: name}
	switch dataField {
	case fieldMetricGauge:
		p.kind = gauge
	case fieldMetricSum:
		p.kind = updown
		err := each(data, func(num protowire.Number, v field) error {
			switch {
			case num == fieldSumTemporality && v.typ == protowire.VarintType:
				p.delta = v.u == temporalityDelta
			case num == fieldSumMonotonic && v.typ == protowire.VarintType && protowire.DecodeBool(v.u):
				p.kind = counter
			}
			return nil
		})
		if err != nil {
			return err
		}
	default:
		n, err := countPoints(data)
		if err == nil {
			onOther(name, n)
		}
		return err
	}
	return each(data, func(num protowire.Number, v field) error {
		if num != fieldDataPoints || v.typ != protowire.BytesType {
			return nil
		}
		q, ok, err := decodePoint(v.bytes, p)
		if err != nil || !ok {
			return err
		}
		if !onPoint(q) {
			return errStop
		}
		return nil
	})
}

// countPoints counts the data points of a metric's data message.
func countPoints(data []byte) (int, error) {
	n := 0
	err := each(data, func(num protowire.Number, v field) error {
		if num == fieldDataPoints && v.typ == protowire.BytesType {
			n++
		}
		return nil
	})
	return n, err
}

// decodePoint decodes a NumberDataPoint into a copy of p; ok is false
// for a point without a value.
func decodePoint(b []byte, p point) (point, bool, error) {
	var attrs []string
	hasValue, noValue := false, false
	err := each(b, func(num protowire.Number, v field) error {
		switch {
		case num == fieldPointAsDouble && v.typ == protowire.Fixed64Type:
			p.value, hasValue = math.Float64frombits(v.u), true
		case num == fieldPointAsInt && v.typ == protowire.Fixed64Type:
			p.value, hasValue = float64(int64(v.u)), true
		case num == fieldPointFlags && v.typ == protowire.VarintType:
			noValue = v.u&flagNoRecordedValue != 0
		case num == fieldPointAttributes && v.typ == protowire.BytesType && len(attrs) < maxAttributes:
			if kv, ok := decodeAttribute(v.bytes); ok {
				attrs = append(attrs, kv)
			}
		}
		return nil
	})
	if err != nil || !hasValue || noValue {
		return p, false, err
	}
	slices.Sort(attrs)
	p.attrs = strings.Join(attrs, ",")
	return p, true, nil
}

// decodeAttribute formats a KeyValue as "key=value", for string, bool,
// integer and double values; other values (arrays, maps, bytes) are
// left out.
func decodeAttribute(b []byte) (string, bool) {
	var key, value string
	hasKey, hasValue := false, false
	err := each(b, func(num protowire.Number, v field) error {
		switch {
		case num == fieldKeyValueKey && v.typ == protowire.BytesType:
			key, hasKey = clip(string(v.bytes), maxAttributeKeyBytes), true
		case num == fieldKeyValueValue && v.typ == protowire.BytesType:
			return each(v.bytes, func(num protowire.Number, v field) error {
				switch {
				case num == fieldAnyString && v.typ == protowire.BytesType:
					value, hasValue = clip(string(v.bytes), maxAttributeValueBytes), true
				case num == fieldAnyBool && v.typ == protowire.VarintType:
					value, hasValue = strconv.FormatBool(protowire.DecodeBool(v.u)), true
				case num == fieldAnyInt && v.typ == protowire.VarintType:
					value, hasValue = strconv.FormatInt(int64(v.u), 10), true
				case num == fieldAnyDouble && v.typ == protowire.Fixed64Type:
					value, hasValue = strconv.FormatFloat(math.Float64frombits(v.u), 'g', -1, 64), true
				}
				return nil
			})
		}
		return nil
	})
	if err != nil || !hasKey || !hasValue {
		return "", false
	}
	return key + "=" + value, true
}

// clip cuts s to at most n bytes, valid UTF-8 (a Prometheus label value
// must be).
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// field is one field's value: bytes for length-delimited fields, u for
// varints and fixed-width numbers.
type field struct {
	typ   protowire.Type
	bytes []byte
	u     uint64
}

// each calls fn with every field of message b, in order, stopping at the
// first error; a malformed message is errMalformed. Groups, which OTLP
// does not use, are skipped whole.
func each(b []byte, fn func(num protowire.Number, v field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		v := field{typ: typ}
		switch typ {
		case protowire.BytesType:
			v.bytes, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			v.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v.u, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var u32 uint32
			u32, n = protowire.ConsumeFixed32(b)
			v.u = uint64(u32)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}
