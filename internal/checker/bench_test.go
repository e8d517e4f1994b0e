package checker_test

import (
	"fmt"
	"testing"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

// BenchmarkCheck checks a history of 100,000 acknowledged sends over 8
// partitions, read by a consumer and by the final read, with every 100th
// record missing from both: many anomalies must not make it quadratic.
func BenchmarkCheck(b *testing.B) {
	const values, parts = 100_000, 8
	var h hb
	next := make([]int64, parts)
	var reads [parts][]history.Record
	for i := range values {
		part := int32(i % parts)
		r := history.Record{Topic: topic, Partition: part, Offset: next[part], Value: fmt.Sprintf("p%d-%d", i%4, i)}
		next[part]++
		inv := r
		inv.Offset = -1
		h.add(history.Op{Type: history.Invoke, F: history.Send, Process: i % 4, Records: []history.Record{inv}})
		h.add(history.Op{Type: history.OK, F: history.Send, Process: i % 4, Records: []history.Record{r}})
		if i%100 != 0 {
			reads[part] = append(reads[part], r)
		}
	}
	for _, proc := range []int{10, 99} {
		var offs []history.Offset
		for p := range int32(parts) {
			offs = append(offs, history.Offset{Topic: topic, Partition: p, Offset: 0})
		}
		final := proc == 99
		h.add(history.Op{Type: history.Invoke, F: history.Assign, Process: proc, Offsets: offs, Final: final})
		h.add(history.Op{Type: history.OK, F: history.Assign, Process: proc, Offsets: offs, Final: final})
		for p := range parts {
			for i := 0; i < len(reads[p]); i += 500 {
				h.add(history.Op{Type: history.Invoke, F: history.Poll, Process: proc, Final: final})
				h.add(history.Op{Type: history.OK, F: history.Poll, Process: proc, Final: final, Records: reads[p][i:min(i+500, len(reads[p]))]})
			}
		}
	}
	h.add(history.Op{Type: history.Invoke, F: history.Drain, Process: 99})
	h.add(history.Op{Type: history.OK, F: history.Drain, Process: 99})
	b.ResetTimer()
	for b.Loop() {
		res := checker.Check(h.ops)
		if res.AnomaliesByKind[checker.LostWrite] != values/100 {
			b.Fatalf("%v", res.AnomaliesByKind)
		}
	}
}
