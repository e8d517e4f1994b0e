package checker_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

const topic = "t"

// hb builds a hand-written history; every helper returns the line of
// the completion it wrote.
type hb struct{ ops []history.Op }

func (b *hb) add(op history.Op) int {
	op.Index = len(b.ops)
	b.ops = append(b.ops, op)
	return op.Index + 1
}

func recs(part int32, offsets []int64, values ...string) []history.Record {
	var rs []history.Record
	for i, v := range values {
		off := int64(-1)
		if offsets != nil {
			off = offsets[i]
		}
		rs = append(rs, history.Record{Topic: topic, Partition: part, Offset: off, Value: v})
	}
	return rs
}

// send writes a send of values to partition 0; offs are the acknowledged
// offsets of an ok send.
func (b *hb) send(proc int, status history.Type, offs []int64, values ...string) int {
	b.add(history.Op{Type: history.Invoke, F: history.Send, Process: proc, Records: recs(0, nil, values...)})
	c := history.Op{Type: status, F: history.Send, Process: proc}
	if status == history.OK {
		c.Records = recs(0, offs, values...)
	}
	return b.add(c)
}

// read is a record read: offset and value on partition 0.
type read struct {
	off int64
	val string
}

func (b *hb) poll(proc int, final bool, rs ...read) int {
	b.add(history.Op{Type: history.Invoke, F: history.Poll, Process: proc, Final: final})
	c := history.Op{Type: history.OK, F: history.Poll, Process: proc, Final: final}
	for _, r := range rs {
		c.Records = append(c.Records, history.Record{Topic: topic, Partition: 0, Offset: r.off, Value: r.val})
	}
	return b.add(c)
}

func (b *hb) assign(proc int, final bool, at int64) int {
	offs := []history.Offset{{Topic: topic, Partition: 0, Offset: at}}
	b.add(history.Op{Type: history.Invoke, F: history.Assign, Process: proc, Final: final, Offsets: offs})
	return b.add(history.Op{Type: history.OK, F: history.Assign, Process: proc, Final: final, Offsets: offs})
}

func (b *hb) subscribe(proc int, group string) int {
	b.add(history.Op{Type: history.Invoke, F: history.Subscribe, Process: proc, Group: group})
	b.add(history.Op{Type: history.OK, F: history.Subscribe, Process: proc, Group: group})
	return b.add(history.Op{Type: history.OK, F: history.Rebalance, Process: proc, Group: group,
		Offsets: []history.Offset{{Topic: topic, Partition: 0, Offset: -1}}})
}

func (b *hb) commit(proc int, group string, at int64) int {
	offs := []history.Offset{{Topic: topic, Partition: 0, Offset: at}}
	b.add(history.Op{Type: history.Invoke, F: history.Commit, Process: proc, Group: group, Offsets: offs})
	return b.add(history.Op{Type: history.OK, F: history.Commit, Process: proc, Group: group, Offsets: offs})
}

func (b *hb) committed(proc int, group string, at int64) int {
	b.add(history.Op{Type: history.Invoke, F: history.Committed, Process: proc, Group: group})
	return b.add(history.Op{Type: history.OK, F: history.Committed, Process: proc, Group: group,
		Offsets: []history.Offset{{Topic: topic, Partition: 0, Offset: at}}})
}

func (b *hb) drain(proc int, status history.Type, rs ...read) int {
	b.assign(proc, true, 0)
	if len(rs) > 0 {
		b.poll(proc, true, rs...)
	}
	end := []history.Offset{{Topic: topic, Partition: 0, Offset: 3}}
	b.add(history.Op{Type: history.Invoke, F: history.Drain, Process: proc, Offsets: end})
	return b.add(history.Op{Type: status, F: history.Drain, Process: proc, Offsets: end})
}

var (
	a0, b1, c2 = read{0, "p1-0"}, read{1, "p1-1"}, read{2, "p2-0"}
)

// clean writes a history without anomalies: two producers, a consumer,
// a group consumer that commits, and the final read.
func clean(b *hb) {
	b.add(history.Op{Type: history.OK, F: history.Start, Meta: &history.Meta{Workload: "test", Topic: topic, Partitions: 1}})
	b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
	b.send(2, history.OK, []int64{2}, "p2-0")
	b.assign(10, false, 0)
	b.poll(10, false, a0, b1)
	b.poll(10, false, c2)
	b.subscribe(20, "g")
	b.poll(20, false, a0)
	b.commit(20, "g", 1)
	b.poll(20, false, b1, c2)
	b.commit(20, "g", 3)
	b.drain(99, history.OK, a0, b1, c2)
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *hb)
		want  map[checker.Kind]int
		notes map[checker.Kind]int
	}{
		{"clean", clean, nil, nil},
		{"clean, no final read", func(b *hb) {
			b.send(1, history.OK, []int64{0}, "p1-0")
			b.assign(10, false, 0)
			b.poll(10, false, a0)
		}, nil, nil},
		{"lost write", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.drain(99, history.OK, a0)
		}, map[checker.Kind]int{checker.LostWrite: 1}, nil},
		{"lost write, read before the final read", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.assign(10, false, 0)
			b.poll(10, false, a0, b1)
			b.drain(99, history.OK, a0)
		}, map[checker.Kind]int{checker.LostWrite: 1}, nil},
		{"incomplete final read decides no loss", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.drain(99, history.Info, a0)
		}, map[checker.Kind]int{checker.IncompleteFinalRead: 1}, nil},
		{"duplicate", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.drain(99, history.OK, a0, b1, read{2, "p1-0"})
		}, map[checker.Kind]int{checker.Duplicate: 1}, nil},
		{"two values at one offset", func(b *hb) {
			b.send(1, history.OK, nil, "p1-0")
			b.send(2, history.OK, nil, "p2-0")
			b.assign(10, false, 0)
			b.poll(10, false, read{0, "p1-0"})
			b.drain(99, history.OK, read{0, "p2-0"}, read{1, "p1-0"})
		}, map[checker.Kind]int{checker.InconsistentOffset: 1, checker.Duplicate: 1}, nil},
		{"ack disagrees with reads", func(b *hb) {
			b.send(1, history.OK, []int64{5}, "p1-0")
			b.drain(99, history.OK, a0)
		}, map[checker.Kind]int{checker.AckOffsetMismatch: 1}, nil},
		{"reordered across sends", func(b *hb) {
			b.send(1, history.OK, nil, "p1-0")
			b.send(1, history.OK, nil, "p1-1")
			b.drain(99, history.OK, read{0, "p1-1"}, read{1, "p1-0"})
		}, map[checker.Kind]int{checker.Reordered: 1}, nil},
		{"reordered within a send", func(b *hb) {
			b.send(1, history.OK, nil, "p1-0", "p1-1")
			b.drain(99, history.OK, read{0, "p1-1"}, read{1, "p1-0"})
		}, map[checker.Kind]int{checker.Reordered: 1}, nil},
		{"two producers interleave: not reordered", func(b *hb) {
			b.send(1, history.OK, nil, "p1-0")
			b.send(2, history.OK, nil, "p2-0")
			b.send(1, history.OK, nil, "p1-1")
			b.drain(99, history.OK, read{0, "p2-0"}, read{1, "p1-0"}, read{2, "p1-1"})
		}, nil, nil},
		{"poll goes backwards", func(b *hb) {
			clean(b)
			b.poll(10, false, b1)
		}, map[checker.Kind]int{checker.NonmonotonicPoll: 1}, nil},
		{"poll repeats within a poll", func(b *hb) {
			clean(b)
			b.assign(11, false, 0)
			b.poll(11, false, a0, b1, b1)
		}, map[checker.Kind]int{checker.NonmonotonicPoll: 1}, nil},
		{"poll skips", func(b *hb) {
			clean(b)
			b.assign(11, false, 0)
			b.poll(11, false, a0)
			b.poll(11, false, c2)
		}, map[checker.Kind]int{checker.PollSkip: 1}, nil},
		{"poll skips from the assigned offset", func(b *hb) {
			clean(b)
			b.assign(11, false, 0)
			b.poll(11, false, b1)
		}, map[checker.Kind]int{checker.PollSkip: 1}, nil},
		{"poll skips an offset known only from an ack", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1, 2}, "p1-0", "p1-1", "p1-2")
			b.assign(10, false, 0)
			b.poll(10, false, a0, read{2, "p1-2"})
		}, map[checker.Kind]int{checker.PollSkip: 1}, nil},
		{"seek and rebalance reset positions", func(b *hb) {
			clean(b)
			b.assign(10, false, 0)
			b.poll(10, false, a0)
			b.add(history.Op{Type: history.OK, F: history.Rebalance, Process: 20, Group: "g",
				Offsets: []history.Offset{{Topic: topic, Partition: 0, Offset: -1}}})
			b.poll(20, false, b1)
		}, nil, nil},
		{"a rebalance while a poll is blocked comes before its records", func(b *hb) {
			clean(b)
			b.add(history.Op{Type: history.Invoke, F: history.Poll, Process: 20})
			b.add(history.Op{Type: history.OK, F: history.Rebalance, Process: 20, Group: "g",
				Offsets: []history.Offset{{Topic: topic, Partition: 0, Offset: -1}}})
			b.add(history.Op{Type: history.OK, F: history.Poll, Process: 20,
				Records: []history.Record{{Topic: topic, Partition: 0, Offset: 1, Value: "p1-1"}}})
		}, nil, nil},
		{"gaps nobody saw filled are not skips", func(b *hb) {
			b.send(1, history.OK, []int64{0, 5}, "p1-0", "p1-1")
			b.assign(10, false, 0)
			b.poll(10, false, a0, read{5, "p1-1"})
		}, nil, nil},
		{"commit regresses", func(b *hb) {
			clean(b)
			b.commit(20, "g", 2)
		}, map[checker.Kind]int{checker.CommitRegressed: 1}, nil},
		{"committed offset read back as committed", func(b *hb) {
			clean(b)
			b.committed(98, "g", 3)
		}, nil, nil},
		{"committed offset read back lower", func(b *hb) {
			clean(b)
			b.committed(98, "g", 1)
		}, map[checker.Kind]int{checker.CommitRegressed: 1}, nil},
		{"committed offset read back that nobody committed", func(b *hb) {
			clean(b)
			b.committed(98, "g", 4)
		}, map[checker.Kind]int{checker.CommitUnknown: 1}, nil},
		{"committed offset read back past unread records", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.subscribe(20, "g")
			b.poll(20, false, a0)
			b.commit(20, "g", 1)
			b.committed(98, "g", 2)
			b.drain(99, history.OK, a0, b1)
		}, map[checker.Kind]int{checker.CommitUnknown: 1, checker.CommitSkip: 1}, nil},
		{"committed offset of a commit that may have landed late", func(b *hb) {
			clean(b)
			offs := []history.Offset{{Topic: topic, Partition: 0, Offset: 2}}
			b.add(history.Op{Type: history.Invoke, F: history.Commit, Process: 21, Group: "g", Offsets: offs})
			b.add(history.Op{Type: history.Info, F: history.Commit, Process: 21, Group: "g", Offsets: offs})
			b.committed(98, "g", 2)
		}, nil, nil},
		{"commit skips unread records", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.send(2, history.OK, []int64{2}, "p2-0")
			b.subscribe(20, "g")
			b.poll(20, false, a0)
			b.commit(20, "g", 3)
			b.drain(99, history.OK, a0, b1, c2)
		}, map[checker.Kind]int{checker.CommitSkip: 1}, nil},
		{"another member's reads count for the group", func(b *hb) {
			b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.subscribe(20, "g")
			b.subscribe(21, "g")
			b.poll(21, false, a0)
			b.poll(20, false, b1)
			b.commit(20, "g", 2)
			b.drain(99, history.OK, a0, b1)
		}, nil, nil},
		{"indeterminate sends are classified", func(b *hb) {
			b.send(1, history.Info, nil, "p1-0")
			b.send(3, history.Info, nil, "p3-0")
			b.drain(99, history.OK, a0)
		}, nil, map[checker.Kind]int{checker.IndeterminateAppeared: 1, checker.IndeterminateLost: 1}},
		{"an invocation never completed is indeterminate", func(b *hb) {
			b.add(history.Op{Type: history.Invoke, F: history.Send, Process: 1, Records: recs(0, nil, "p1-0")})
			b.drain(99, history.OK, a0)
		}, nil, map[checker.Kind]int{checker.IndeterminateAppeared: 1}},
		{"a failed send appears", func(b *hb) {
			b.send(1, history.Fail, nil, "p1-0")
			b.drain(99, history.OK, a0)
		}, map[checker.Kind]int{checker.FailedAppeared: 1}, nil},
		{"a value nobody sent", func(b *hb) {
			b.drain(99, history.OK, read{0, "zz"})
		}, map[checker.Kind]int{checker.UnexpectedValue: 1}, nil},
		{"malformed: completion without invocation", func(b *hb) {
			b.add(history.Op{Type: history.OK, F: history.Poll, Process: 3})
		}, map[checker.Kind]int{checker.MalformedHistory: 1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b hb
			tc.build(&b)
			res := checker.Check(b.ops)
			want := tc.want
			if want == nil {
				want = map[checker.Kind]int{}
			}
			notes := tc.notes
			if notes == nil {
				notes = map[checker.Kind]int{}
			}
			var out strings.Builder
			res.WriteText(&out, nil)
			if !maps.Equal(res.AnomaliesByKind, want) || !maps.Equal(res.NotesByKind, notes) {
				t.Errorf("anomalies %v notes %v, want %v and %v\n%s", res.AnomaliesByKind, res.NotesByKind, want, notes, out.String())
			}
			if res.Valid != (len(want) == 0) {
				t.Errorf("valid = %v with %d anomalies", res.Valid, len(res.Anomalies))
			}
			for _, a := range res.Anomalies {
				if len(a.Lines) == 0 {
					t.Errorf("%s without evidence lines", a.Kind)
				}
				for _, l := range a.Lines {
					if l < 1 || l > len(b.ops) {
						t.Errorf("%s cites line %d of %d", a.Kind, l, len(b.ops))
					}
				}
			}
		})
	}
}

func TestEvidenceLines(t *testing.T) {
	var b hb
	b.send(1, history.OK, []int64{0, 1}, "p1-0", "p1-1") // lines 1, 2
	b.drain(99, history.OK, a0)                          // assign 3-4, poll 5-6, drain 7-8
	res := checker.Check(b.ops)
	if len(res.Anomalies) != 1 {
		t.Fatalf("anomalies: %+v", res.Anomalies)
	}
	a := res.Anomalies[0]
	if a.Kind != checker.LostWrite || a.Value != "p1-1" || a.Offset != 1 || a.Partition != "t/0" {
		t.Errorf("anomaly %+v", a)
	}
	if got, want := a.Lines, []int{1, 2, 7, 8}; !equalInts(got, want) {
		t.Errorf("lines %v, want %v", got, want)
	}
	if res.Operations != 4 || res.Acknowledged != 2 || res.Sent != 2 || res.Read != 1 || !res.FinalRead {
		t.Errorf("counts %+v", res)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRoundTrip writes a history through history.Writer, reads it back and
// checks it: line numbers in the evidence are those of the file.
func TestRoundTrip(t *testing.T) {
	var b hb
	clean(&b)
	b.poll(10, false, b1) // nonmonotonic
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	for _, op := range b.ops {
		if _, err := w.Write(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	ops, err := history.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	res := checker.Check(ops)
	if res.AnomaliesByKind[checker.NonmonotonicPoll] != 1 || len(res.Anomalies) != 1 {
		t.Fatalf("anomalies %v", res.AnomaliesByKind)
	}
	if got := res.Anomalies[0].Lines; got[len(got)-1] != len(ops) {
		t.Errorf("evidence %v, want the last line %d", got, len(ops))
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"operations"`, `"acknowledged"`, `"anomalies_by_kind":{"nonmonotonic-poll":1}`, `"unchecked"`} {
		if !bytes.Contains(js, []byte(field)) {
			t.Errorf("JSON lacks %s: %s", field, js)
		}
	}
}
