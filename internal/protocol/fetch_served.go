package protocol

import (
	"encoding/binary"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/fetchsession"
)

// OtherTopics is the topic label of what FetchServed counts beyond its
// limit of topics. '~' is not allowed in a Kafka topic name, so no topic
// is called that.
const OtherTopics = "~other"

// DefaultServedTopics is how many topics FetchServed labels by name.
const DefaultServedTopics = 1000

// FetchServed counts the records and bytes Fetch answered, per topic
// (floe_fetch_records_total, floe_fetch_bytes_total), for the console's
// fetch rates and the dashboards. Topic names come from clients'
// requests only after they were found in the store, and at most max of
// them get series of their own: the rest are counted under OtherTopics,
// so a cluster with many topics cannot grow the agent's metrics without
// bound.
type FetchServed struct {
	records, bytes *prometheus.CounterVec
	max            int

	mu    sync.Mutex
	named map[string]bool
}

// NewFetchServed registers the counters with reg (nil: not registered);
// maxTopics <= 0 takes DefaultServedTopics.
func NewFetchServed(reg prometheus.Registerer, maxTopics int) *FetchServed {
	if maxTopics <= 0 {
		maxTopics = DefaultServedTopics
	}
	m := &FetchServed{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_fetch_records_total", Help: "Records in the batches Fetch responses carried, per topic (control batches not counted; topics beyond the limit as topic=\"" + OtherTopics + "\").",
		}, []string{"topic"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_fetch_bytes_total", Help: "Record batch bytes Fetch responses carried, per topic (topics beyond the limit as topic=\"" + OtherTopics + "\").",
		}, []string{"topic"}),
		max: maxTopics, named: map[string]bool{},
	}
	if reg != nil {
		reg.MustRegister(m.records, m.bytes)
	}
	return m
}

// Add counts records and bytes served for topic.
func (m *FetchServed) Add(topic string, records, bytes int) {
	if m == nil || topic == "" || (records == 0 && bytes == 0) {
		return
	}
	label := m.label(topic)
	m.records.WithLabelValues(label).Add(float64(records))
	m.bytes.WithLabelValues(label).Add(float64(bytes))
}

func (m *FetchServed) label(topic string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.named[topic] {
		return topic
	}
	if len(m.named) >= m.max {
		return OtherTopics
	}
	m.named[topic] = true
	return topic
}

// Forget drops a deleted topic's series, making room for another.
func (m *FetchServed) Forget(topic string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.named[topic] {
		delete(m.named, topic)
		m.records.DeleteLabelValues(topic)
		m.bytes.DeleteLabelValues(topic)
	}
}

// countServed counts what a fetch response carries: the partitions the
// session included, with the topic names read found.
func (h *Handler) countServed(f *fetchsession.Fetch, include []bool, read fetched) {
	if h.cfg.FetchServed == nil {
		return
	}
	for i := range f.Partitions {
		if (include != nil && !include[i]) || i >= len(read.parts) || i >= len(read.names) {
			continue
		}
		if b := read.parts[i].RecordBatches; len(b) > 0 {
			h.cfg.FetchServed.Add(read.names[i], batchRecords(b), len(b))
		}
	}
}

// batchRecords counts the records of the whole v2 data batches in b; a
// partial batch at the end (a fetch cut by its size) and control
// batches are not counted, nor are older message formats.
func batchRecords(b []byte) int {
	const (
		headerLen   = 61 // through recordCount
		attrsAt     = 21
		countAt     = 57
		magicAt     = 16
		controlFlag = 0x20
	)
	n := 0
	for len(b) >= 12 {
		size := int(int32(binary.BigEndian.Uint32(b[8:12])))
		if size < headerLen-12 || size > len(b)-12 {
			break
		}
		batch := b[:12+size]
		b = b[12+size:]
		if batch[magicAt] != 2 || binary.BigEndian.Uint16(batch[attrsAt:])&controlFlag != 0 {
			continue
		}
		if c := int32(binary.BigEndian.Uint32(batch[countAt:])); c > 0 {
			n += int(c)
		}
	}
	return n
}
