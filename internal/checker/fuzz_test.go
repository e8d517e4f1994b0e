package checker_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

// FuzzCheck: any history the reader accepts is checked without a panic,
// and every line an anomaly cites exists.
func FuzzCheck(f *testing.F) {
	var b hb
	clean(&b)
	b.poll(10, false, b1)
	b.committed(98, "g", 1)
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	for _, op := range b.ops {
		w.Write(op)
	}
	w.Flush()
	f.Add(buf.Bytes())
	var tb hb
	cleanTxns(&tb)
	tb.poll(10, false, read{4, "p2-0"})
	tb.pollIn(1, "t1", read{1, "p1-0"})
	buf.Reset()
	w = history.NewWriter(&buf)
	for _, op := range tb.ops {
		w.Write(op)
	}
	w.Flush()
	f.Add(buf.Bytes())
	f.Add([]byte(`{"type":"ok","f":"poll","process":1,"records":[{"topic":"t","partition":0,"offset":-5,"value":"x"}]}`))
	f.Add([]byte("{\"type\":\"invoke\",\"f\":\"rebalance\",\"process\":1}\n{\"type\":\"ok\",\"f\":\"rebalance\",\"process\":1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := history.Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		res := checker.Check(ops)
		res.WriteText(io.Discard, func(int) string { return "" })
		max := 0
		if len(ops) > 0 {
			max = ops[len(ops)-1].Line()
		}
		for _, a := range append(res.Anomalies, res.Notes...) {
			for _, l := range a.Lines {
				if l < 1 || l > max {
					t.Fatalf("%s cites line %d of %d", a.Kind, l, max)
				}
			}
		}
	})
}
