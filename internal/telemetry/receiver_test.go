package telemetry_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/telemetry/telemetrytest"
)

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newReceiver(t testing.TB, o telemetry.Options) (*telemetry.Receiver, *clock, *prometheus.Registry) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	o.Now, o.Registerer = c.now, reg
	if o.PushInterval == 0 {
		o.PushInterval = time.Second
	}
	return telemetry.New(o), c, reg
}

// subscribe subscribes a new instance.
func subscribe(t *testing.T, r *telemetry.Receiver) telemetry.Subscription {
	t.Helper()
	s, err := r.Subscribe([16]byte{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exposed lists the client series a registry exposes as
// "family{client_id,metric,attributes}=value", sorted.
func exposed(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "floe_client_metric") {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			out = append(out, fmt.Sprintf("%s{%s,%s,%s}=%g", mf.GetName(), labels["client_id"], labels["metric"], labels["attributes"], v))
		}
	}
	slices.Sort(out)
	return out
}

// counted returns a counter's value by one label value.
func counted(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if len(m.Label) == 0 || m.Label[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestSubscribe(t *testing.T) {
	r, c, reg := newReceiver(t, telemetry.Options{PushInterval: 30 * time.Second})
	s := subscribe(t, r)
	if s.InstanceID == ([16]byte{}) || s.InstanceID[6]>>4 != 4 {
		t.Fatalf("instance id %x: want a version 4 UUID", s.InstanceID)
	}
	if s.PushInterval != 30*time.Second || s.MaxBytes != 1<<20 || !s.Delta || !slices.Equal(s.Metrics, telemetry.DefaultMetrics) {
		t.Errorf("subscription %+v", s)
	}
	if !slices.Equal(s.Compression, []int8{3, 1, 2}) {
		t.Errorf("compression %v, want lz4, gzip, snappy", s.Compression)
	}
	// Asked again within the interval: throttled; after it, the same.
	if _, err := r.Subscribe(s.InstanceID); !errors.Is(err, kerr.ThrottlingQuotaExceeded) {
		t.Errorf("asked again at once: %v", err)
	}
	c.t = c.t.Add(30 * time.Second)
	again, err := r.Subscribe(s.InstanceID)
	if err != nil || again.ID != s.ID || again.InstanceID != s.InstanceID {
		t.Errorf("asked again after the interval: %+v %v, want %+v", again, err, s)
	}
	if got := counted(t, reg, "floe_client_telemetry_subscriptions_total", "throttled"); got != 1 {
		t.Errorf("%v throttled subscriptions counted", got)
	}

	// Another agent with the same options gives the instance the same
	// subscription id, and pushes are taken there at once.
	other, _, _ := newReceiver(t, telemetry.Options{PushInterval: 30 * time.Second})
	if err := other.Push(telemetry.Push{InstanceID: s.InstanceID, SubscriptionID: s.ID}); err != nil {
		t.Errorf("push to another agent: %v", err)
	}
	if s2 := subscribe(t, r); s2.ID == s.ID {
		t.Errorf("two instances with subscription id %d", s.ID)
	}
	all, _, _ := newReceiver(t, telemetry.Options{Metrics: []string{"*"}})
	if got := subscribe(t, all).Metrics; !slices.Equal(got, []string{"*"}) {
		t.Errorf("every metric asked as %v", got)
	}
}

func TestPushChecks(t *testing.T) {
	r, c, reg := newReceiver(t, telemetry.Options{PushInterval: time.Minute, MaxBytes: 64})
	s := subscribe(t, r)
	// The first push after a subscription is taken at once.
	if err := r.Push(telemetry.Push{InstanceID: s.InstanceID, SubscriptionID: s.ID}); err != nil {
		t.Fatal(err)
	}
	zero, metadataTopic := [16]byte{}, [16]byte{15: 1}
	for _, tc := range []struct {
		name     string
		after    time.Duration
		instance *[16]byte // default: s's
		push     telemetry.Push
		want     error
	}{
		{name: "again at once", push: telemetry.Push{SubscriptionID: s.ID}, want: kerr.ThrottlingQuotaExceeded},
		{name: "after the interval", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID}},
		{name: "outdated subscription", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID + 1}, want: kerr.UnknownSubscriptionID},
		{name: "zstd", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID, Compression: 4, Metrics: []byte{1}}, want: kerr.UnsupportedCompressionType},
		{name: "unknown codec", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID, Compression: 9, Metrics: []byte{1}}, want: kerr.UnsupportedCompressionType},
		{name: "too large", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID, Metrics: make([]byte, 65)}, want: kerr.TelemetryTooLarge},
		{name: "not OTLP", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID, Metrics: []byte{0xff, 0xff}}, want: kerr.InvalidRecord},
		{name: "not gzip", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID, Compression: 1, Metrics: []byte("plain")}, want: kerr.InvalidRecord},
		{name: "zero instance id", instance: &zero, push: telemetry.Push{SubscriptionID: s.ID}, want: kerr.InvalidRequest},
		{name: "the metadata topic's id", instance: &metadataTopic, push: telemetry.Push{SubscriptionID: s.ID}, want: kerr.InvalidRequest},
		// Terminating: taken within the interval, and nothing after.
		{name: "terminating", push: telemetry.Push{SubscriptionID: s.ID, Terminating: true}},
		{name: "after terminating", after: time.Minute, push: telemetry.Push{SubscriptionID: s.ID}, want: kerr.InvalidRequest},
	} {
		c.t = c.t.Add(tc.after)
		p := tc.push
		p.InstanceID = s.InstanceID
		if tc.instance != nil {
			p.InstanceID = *tc.instance
		}
		if err := r.Push(p); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := counted(t, reg, "floe_client_telemetry_pushes_total", "throttled"); got != 1 {
		t.Errorf("%v throttled pushes counted, want 1", got)
	}

	// After UNKNOWN_SUBSCRIPTION_ID the client may ask again at once.
	s2 := subscribe(t, r)
	c.t = c.t.Add(time.Second)
	_ = r.Push(telemetry.Push{InstanceID: s2.InstanceID, SubscriptionID: s2.ID})
	c.t = c.t.Add(time.Minute)
	if err := r.Push(telemetry.Push{InstanceID: s2.InstanceID, SubscriptionID: 7}); !errors.Is(err, kerr.UnknownSubscriptionID) {
		t.Fatal(err)
	}
	if _, err := r.Subscribe(s2.InstanceID); err != nil {
		t.Errorf("subscribing again after an unknown subscription: %v", err)
	}
}

// TestExposure: gauges are the latest value, delta sums add up, metrics
// not asked for and histograms are dropped, and every codec clients may
// use is read.
func TestExposure(t *testing.T) {
	r, c, reg := newReceiver(t, telemetry.Options{Metrics: []string{"org.apache.kafka.producer."}})
	s := subscribe(t, r)
	payload := func(queueAvg float64, connections int64) []byte {
		return telemetrytest.MetricsData(
			telemetrytest.Gauge("org.apache.kafka.producer.record.queue.time.avg", telemetrytest.Point(queueAvg)),
			telemetrytest.Gauge("org.apache.kafka.producer.node.request.latency.max", telemetrytest.Point(int64(12), "node.id", int64(2)), telemetrytest.Point(int64(7), "node.id", int64(1), "az", "a")),
			telemetrytest.Sum("org.apache.kafka.producer.connection.creation.total", true, true, telemetrytest.Point(connections)),
			telemetrytest.Sum("org.apache.kafka.producer.buffer.used", false, false, telemetrytest.Point(float64(-3))),
			telemetrytest.Gauge("org.apache.kafka.consumer.poll.idle.ratio.avg", telemetrytest.Point(0.5)), // not asked for
			telemetrytest.Histogram("org.apache.kafka.producer.batch.size", 3),
		)
	}
	codecs := []struct {
		codec int8
		wrap  func([]byte) []byte
	}{
		{0, func(b []byte) []byte { return b }},
		{1, gzipped},
		{2, func(b []byte) []byte { return snappy.Encode(nil, b) }},
		{3, lz4ed},
	}
	for i, codec := range codecs {
		if err := r.Push(telemetry.Push{InstanceID: s.InstanceID, SubscriptionID: s.ID, Compression: codec.codec, Metrics: codec.wrap(payload(float64(i)+0.5, 2)), ClientID: "app-1"}); err != nil {
			t.Fatalf("codec %d: %v", codec.codec, err)
		}
		c.t = c.t.Add(time.Second)
	}
	want := []string{
		"floe_client_metric_total{app-1,org.apache.kafka.producer.connection.creation.total,}=8",
		"floe_client_metric_value{app-1,org.apache.kafka.producer.buffer.used,}=-3",
		"floe_client_metric_value{app-1,org.apache.kafka.producer.node.request.latency.max,az=a,node.id=1}=7",
		"floe_client_metric_value{app-1,org.apache.kafka.producer.node.request.latency.max,node.id=2}=12",
		"floe_client_metric_value{app-1,org.apache.kafka.producer.record.queue.time.avg,}=3.5",
	}
	if got := exposed(t, reg); !slices.Equal(got, want) {
		t.Errorf("exposed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := counted(t, reg, "floe_client_telemetry_dropped_points_total", "type"); got != 12 {
		t.Errorf("%v histogram points dropped, want 12", got)
	}
	if got := counted(t, reg, "floe_client_telemetry_dropped_points_total", "unrequested"); got != 4 {
		t.Errorf("%v unrequested points dropped, want 4", got)
	}

	// A gzip bomb stops at its bound.
	bomb := gzipped(make([]byte, 8<<20))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	c.t = c.t.Add(time.Hour)
	s = subscribe(t, r)
	if err := r.Push(telemetry.Push{InstanceID: s.InstanceID, SubscriptionID: s.ID, Compression: 1, Metrics: bomb}); !errors.Is(err, kerr.InvalidRecord) {
		t.Errorf("8 MiB of zeros, gzipped: %v", err)
	}

	// Series expire three push intervals after their last update.
	if got := exposed(t, reg); len(got) != 0 {
		t.Errorf("after an hour: %v", got)
	}
}

// TestExposureBounds: client ids and series per client id are bounded,
// the rest dropped and counted, and room comes back as series expire.
func TestExposureBounds(t *testing.T) {
	r, c, reg := newReceiver(t, telemetry.Options{Metrics: []string{"*"}, MaxClients: 2, MaxSeriesPerClient: 3})
	push := func(client string, names ...string) {
		t.Helper()
		var ms [][]byte
		for _, n := range names {
			ms = append(ms, telemetrytest.Gauge(n, telemetrytest.Point(1.0)))
		}
		s := subscribe(t, r)
		if err := r.Push(telemetry.Push{InstanceID: s.InstanceID, SubscriptionID: s.ID, ClientID: client, Metrics: telemetrytest.MetricsData(ms...)}); err != nil {
			t.Fatal(err)
		}
	}
	push("a", "m1", "m2", "m3", "m4")
	push("b", "m1")
	push("c", "m1")
	if got := len(exposed(t, reg)); got != 4 {
		t.Errorf("%d series exposed, want 3 of a and 1 of b", got)
	}
	if s, cl := counted(t, reg, "floe_client_telemetry_dropped_points_total", "series"), counted(t, reg, "floe_client_telemetry_dropped_points_total", "clients"); s != 1 || cl != 1 {
		t.Errorf("dropped %v for series, %v for clients; want 1 and 1", s, cl)
	}
	c.t = c.t.Add(10 * time.Second)
	push("c", "m1")
	if got := exposed(t, reg); !slices.Equal(got, []string{"floe_client_metric_value{c,m1,}=1"}) {
		t.Errorf("after the others expired: %v", got)
	}
	// Client ids and names are label values: any bytes become valid
	// UTF-8, cut to a bound.
	push(string([]byte{0xff, 'x'})+strings.Repeat("y", 1000), "m\xfe")
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestInstancesBounded(t *testing.T) {
	r, _, reg := newReceiver(t, telemetry.Options{MaxInstances: 3})
	for range 10 {
		subscribe(t, r)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "floe_client_telemetry_instances" && mf.Metric[0].GetGauge().GetValue() != 3 {
			t.Errorf("%v instances remembered, want 3", mf.Metric[0].GetGauge().GetValue())
		}
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func lz4ed(b []byte) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// FuzzPush feeds arbitrary metrics, uncompressed, through a push: never
// a panic, and the registry always gathers.
func FuzzPush(f *testing.F) {
	f.Add(telemetrytest.MetricsData(telemetrytest.Gauge("org.apache.kafka.producer.record.queue.time.avg", telemetrytest.Point(1.5, "node.id", int64(1), "ok", true, "r", 0.5))))
	f.Add(telemetrytest.MetricsData(telemetrytest.Sum("org.apache.kafka.consumer.coordinator.commit.total", true, true, telemetrytest.Point(int64(3))), telemetrytest.Histogram("x", 2)))
	r, _, reg := newReceiver(f, telemetry.Options{Metrics: []string{"*"}})
	f.Fuzz(func(t *testing.T, metrics []byte) {
		s, err := r.Subscribe([16]byte{})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Push(telemetry.Push{InstanceID: s.InstanceID, SubscriptionID: s.ID, Metrics: metrics, ClientID: "fuzz"})
		if err != nil && !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("push: %v", err)
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	})
}
