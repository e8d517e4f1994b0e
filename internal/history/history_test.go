package history_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/history"
)

func TestWriteRead(t *testing.T) {
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	w.Write(history.Op{Type: history.OK, F: history.Start, Meta: &history.Meta{Workload: "w", Seed: 7, Topic: "t", Partitions: 2}})
	w.Write(history.Op{Type: history.Invoke, F: history.Send, Process: 1,
		Records: []history.Record{{Topic: "t", Partition: 1, Offset: -1, Key: "k", Value: "p1-0"}}})
	op, err := w.Write(history.Op{Type: history.OK, F: history.Send, Process: 1,
		Records: []history.Record{{Topic: "t", Partition: 1, Offset: 0, Key: "k", Value: "p1-0"}}})
	if err != nil || op.Index != 2 || op.Line() != 3 {
		t.Fatalf("op %+v, err %v", op, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("%d lines:\n%s", n, buf.String())
	}
	// A blank line keeps the numbering of the lines after it.
	text := strings.Replace(buf.String(), "\n", "\n\n", 1)
	ops, err := history.Read(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 || ops[0].Meta.Seed != 7 || ops[2].Line() != 4 || ops[2].Records[0].Offset != 0 || ops[2].Records[0].TP().String() != "t/1" {
		t.Fatalf("read back %+v", ops)
	}
}

func TestReadReportsTheBadLine(t *testing.T) {
	_, err := history.Read(strings.NewReader("{\"type\":\"ok\"}\n{nope\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v", err)
	}
}
