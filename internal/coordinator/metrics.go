package coordinator

import (
	"context"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

// Metrics are the consumer lag gauges, per group, topic and partition,
// for the groups this agent coordinates.
type Metrics struct {
	committed *prometheus.GaugeVec
	end       *prometheus.GaugeVec
	lag       *prometheus.GaugeVec
	members   *prometheus.GaugeVec
	// migrations counts groups converted between the classic and the
	// consumer protocol (KIP-848's online migration), by direction.
	migrations *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"group", "topic", "partition"}
	m := &Metrics{
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_group_committed_offset", Help: "Last committed offset of a consumer group in a partition.",
		}, labels),
		end: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_group_end_offset", Help: "High watermark of a partition a consumer group committed in, when last measured.",
		}, labels),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_group_lag", Help: "High watermark minus committed offset, per consumer group and partition.",
		}, labels),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_group_members", Help: "Members of a consumer group coordinated by this agent.",
		}, []string{"group"}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_group_migrations_total", Help: "Groups with members converted between the classic and the consumer protocol, by direction (upgrade, downgrade).",
		}, []string{"direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.committed, m.end, m.lag, m.members, m.migrations)
	}
	return m
}

// label makes a client-chosen name a valid label value: Prometheus
// panics on a label that is not UTF-8, and Kafka group names are any
// bytes a client sends.
func label(name string) string { return strings.ToValidUTF8(name, "\uFFFD") }

func (m *Metrics) set(group, topic string, partition int32, committed, end int64) {
	l := prometheus.Labels{"group": label(group), "topic": label(topic), "partition": strconv.Itoa(int(partition))}
	m.committed.With(l).Set(float64(committed))
	if end >= 0 {
		m.end.With(l).Set(float64(end))
		m.lag.With(l).Set(float64(max(end-committed, 0)))
	}
}

// committedOffset records a commit, reading the partition's high watermark.
func (m *Metrics) committedOffset(ctx context.Context, store Store, group, topic string, o metastore.CommittedOffset) {
	if topic == "" {
		return
	}
	end := int64(-1)
	if offs, err := store.Offsets(ctx, o.TopicID, o.Partition); err == nil {
		end = offs.HighWatermark
	}
	m.set(group, topic, o.Partition, o.Offset, end)
}

// forget removes every series of a group.
func (m *Metrics) forget(group string) {
	l := prometheus.Labels{"group": label(group)}
	m.committed.DeletePartialMatch(l)
	m.end.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.members.DeletePartialMatch(l)
}
