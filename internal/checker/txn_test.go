package checker_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

// txnSend writes a send of values to partition 0 inside transaction txn.
func (b *hb) txnSend(proc int, txn string, status history.Type, offs []int64, values ...string) int {
	b.add(history.Op{Type: history.Invoke, F: history.Send, Process: proc, Txn: txn, Records: recs(0, nil, values...)})
	c := history.Op{Type: status, F: history.Send, Process: proc, Txn: txn}
	if status == history.OK {
		c.Records = recs(0, offs, values...)
	}
	return b.add(c)
}

// end writes the end of transaction txn: history.TxnCommit or TxnAbort.
func (b *hb) end(proc int, txn string, f history.Func, status history.Type) int {
	b.add(history.Op{Type: history.Invoke, F: f, Process: proc, Txn: txn})
	return b.add(history.Op{Type: status, F: f, Process: proc, Txn: txn})
}

// assignAt assigns partition 0 at offset at, reading at isolation iso.
func (b *hb) assignAt(proc int, final bool, at int64, iso string) int {
	offs := []history.Offset{{Topic: topic, Partition: 0, Offset: at}}
	b.add(history.Op{Type: history.Invoke, F: history.Assign, Process: proc, Final: final, Offsets: offs, Isolation: iso})
	return b.add(history.Op{Type: history.OK, F: history.Assign, Process: proc, Final: final, Offsets: offs, Isolation: iso})
}

// pollIn is a poll made inside transaction txn by its own process.
func (b *hb) pollIn(proc int, txn string, rs ...read) int {
	b.add(history.Op{Type: history.Invoke, F: history.Poll, Process: proc, Txn: txn})
	c := history.Op{Type: history.OK, F: history.Poll, Process: proc, Txn: txn}
	for _, r := range rs {
		c.Records = append(c.Records, history.Record{Topic: topic, Partition: 0, Offset: r.off, Value: r.val})
	}
	return b.add(c)
}

// drainAt is the final read at isolation iso.
func (b *hb) drainAt(proc int, iso string, rs ...read) int {
	b.assignAt(proc, true, 0, iso)
	if len(rs) > 0 {
		b.poll(proc, true, rs...)
	}
	end := []history.Offset{{Topic: topic, Partition: 0, Offset: 9}}
	b.add(history.Op{Type: history.Invoke, F: history.Drain, Process: proc, Offsets: end})
	return b.add(history.Op{Type: history.OK, F: history.Drain, Process: proc, Offsets: end})
}

const rc, ru = history.ReadCommitted, history.ReadUncommitted

// cleanTxns writes a history without anomalies: a value sent outside
// any transaction (offset 0), a committed transaction (offsets 1 and 2,
// its marker at 3), an aborted one (4, marker 5); a read_committed
// consumer that reads what committed, a read_uncommitted one that reads
// everything, and the final read at read_committed.
func cleanTxns(b *hb) {
	b.send(3, history.OK, []int64{0}, "p3-0")
	b.txnSend(1, "t1", history.OK, []int64{1, 2}, "p1-0", "p1-1")
	b.end(1, "t1", history.TxnCommit, history.OK)
	b.txnSend(2, "t2", history.OK, []int64{4}, "p2-0")
	b.end(2, "t2", history.TxnAbort, history.OK)
	b.assignAt(10, false, 0, rc)
	b.poll(10, false, read{0, "p3-0"}, read{1, "p1-0"})
	b.poll(10, false, read{2, "p1-1"})
	b.assignAt(11, false, 0, ru)
	b.poll(11, false, read{0, "p3-0"}, read{1, "p1-0"}, read{2, "p1-1"}, read{4, "p2-0"})
	b.drainAt(99, rc, read{0, "p3-0"}, read{1, "p1-0"}, read{2, "p1-1"})
}

func TestCheckTransactions(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *hb)
		want  map[checker.Kind]int
		notes map[checker.Kind]int
	}{
		{"clean", cleanTxns, nil, nil},
		{"read_committed reads an aborted transaction's value", func(b *hb) {
			cleanTxns(b)
			b.poll(10, false, read{4, "p2-0"})
		}, map[checker.Kind]int{checker.AbortedRead: 1}, nil},
		{"read_committed reads a value whose commit failed", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.end(1, "t1", history.TxnCommit, history.Fail)
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p1-0"})
		}, map[checker.Kind]int{checker.AbortedRead: 1}, nil},
		{"read_committed reads a transaction that never asked to commit", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p1-0"})
			b.drainAt(99, rc)
		}, map[checker.Kind]int{checker.AbortedRead: 1}, nil},
		{"read_committed reads before the commit was asked for", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p1-0"}, read{1, "p1-1"})
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.drainAt(99, rc, read{0, "p1-0"}, read{1, "p1-1"})
		}, map[checker.Kind]int{checker.AbortedRead: 2}, nil},
		{"a read that returns after the commit was asked for may see it", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.assignAt(10, false, 0, rc)
			b.add(history.Op{Type: history.Invoke, F: history.Poll, Process: 10})
			b.add(history.Op{Type: history.Invoke, F: history.TxnCommit, Process: 1, Txn: "t1"})
			b.add(history.Op{Type: history.OK, F: history.Poll, Process: 10, Records: recs(0, []int64{0}, "p1-0")})
			b.add(history.Op{Type: history.OK, F: history.TxnCommit, Process: 1, Txn: "t1"})
			b.drainAt(99, rc, read{0, "p1-0"})
		}, nil, nil},
		{"read_uncommitted may read what did not commit", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.assignAt(10, false, 0, ru)
			b.poll(10, false, read{0, "p1-0"})
			b.end(1, "t1", history.TxnAbort, history.OK)
			b.drainAt(99, rc)
		}, nil, nil},
		{"a transactional process reads its own value", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.assignAt(1, false, 0, rc)
			b.pollIn(1, "t1", read{0, "p1-0"})
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.drainAt(99, rc, read{0, "p1-0"})
		}, map[checker.Kind]int{checker.OwnUncommittedRead: 1}, nil},
		{"a transactional process's own read finds nothing", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.assignAt(1, false, 0, rc)
			b.pollIn(1, "t1")
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.drainAt(99, rc, read{0, "p1-0"})
		}, nil, nil},
		{"read_committed reads past an open transaction", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.send(3, history.OK, []int64{1}, "p3-0")
			b.assignAt(10, false, 1, rc)
			b.poll(10, false, read{1, "p3-0"})
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.drainAt(99, rc, read{0, "p1-0"}, read{1, "p3-0"})
		}, map[checker.Kind]int{checker.ReadPastOpenTransaction: 1}, nil},
		{"reading past a transaction that later aborted proves nothing", func(b *hb) {
			// The coordinator may have aborted it (a timeout) before the read.
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.send(3, history.OK, []int64{1}, "p3-0")
			b.assignAt(10, false, 1, rc)
			b.poll(10, false, read{1, "p3-0"})
			b.end(1, "t1", history.TxnAbort, history.OK)
			b.drainAt(99, rc, read{1, "p3-0"})
		}, nil, nil},
		{"the final read has part of a committed transaction", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.drainAt(99, rc, read{0, "p1-0"})
		}, map[checker.Kind]int{checker.TornTransaction: 1, checker.LostWrite: 1}, nil},
		{"the final read has part of a transaction whose commit was indeterminate", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.txnSend(1, "t1", history.OK, []int64{1}, "p1-1")
			b.end(1, "t1", history.TxnCommit, history.Info)
			b.drainAt(99, rc, read{0, "p1-0"})
		}, map[checker.Kind]int{checker.TornTransaction: 1},
			map[checker.Kind]int{checker.IndeterminateAppeared: 1, checker.IndeterminateLost: 1}},
		{"a reader sees part of a committed transaction in a range it read", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.send(3, history.OK, nil, "p3-0")
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p1-0"}, read{1, "p3-0"})
		}, map[checker.Kind]int{checker.TornTransaction: 1}, nil},
		{"a reader that starts inside a transaction sees the rest of it", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.end(1, "t1", history.TxnCommit, history.OK)
			b.assignAt(10, false, 1, rc)
			b.poll(10, false, read{1, "p1-1"})
		}, nil, nil},
		{"read_committed steps over an aborted transaction", func(b *hb) {
			b.send(3, history.OK, []int64{0}, "p3-0")
			b.txnSend(2, "t2", history.OK, []int64{1}, "p2-0")
			b.end(2, "t2", history.TxnAbort, history.OK)
			b.send(3, history.OK, []int64{3}, "p3-1")
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p3-0"}, read{3, "p3-1"})
		}, nil, nil},
		{"read_uncommitted must not step over an aborted transaction", func(b *hb) {
			b.send(3, history.OK, []int64{0}, "p3-0")
			b.txnSend(2, "t2", history.OK, []int64{1}, "p2-0")
			b.end(2, "t2", history.TxnAbort, history.OK)
			b.send(3, history.OK, []int64{3}, "p3-1")
			b.assignAt(10, false, 0, ru)
			b.poll(10, false, read{0, "p3-0"}, read{3, "p3-1"})
		}, map[checker.Kind]int{checker.PollSkip: 1}, nil},
		{"read_committed must not step over a committed transaction", func(b *hb) {
			b.send(3, history.OK, []int64{0}, "p3-0")
			b.txnSend(2, "t2", history.OK, []int64{1}, "p2-0")
			b.end(2, "t2", history.TxnCommit, history.OK)
			b.send(3, history.OK, []int64{3}, "p3-1")
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p3-0"}, read{3, "p3-1"})
		}, map[checker.Kind]int{checker.PollSkip: 1}, nil},
		{"an indeterminate commit is classified, not counted as loss", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.end(1, "t1", history.TxnCommit, history.Info)
			b.drainAt(99, rc)
		}, nil, map[checker.Kind]int{checker.IndeterminateLost: 2}},
		{"an indeterminate commit a read showed, then lost", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0, 1}, "p1-0", "p1-1")
			b.end(1, "t1", history.TxnCommit, history.Info)
			b.assignAt(10, false, 0, rc)
			b.poll(10, false, read{0, "p1-0"})
			b.drainAt(99, rc)
		}, map[checker.Kind]int{checker.LostWrite: 1},
			map[checker.Kind]int{checker.IndeterminateAppeared: 1, checker.IndeterminateLost: 1}},
		{"a read_uncommitted read shows no commit", func(b *hb) {
			b.txnSend(1, "t1", history.OK, []int64{0}, "p1-0")
			b.end(1, "t1", history.TxnCommit, history.Info)
			b.assignAt(10, false, 0, ru)
			b.poll(10, false, read{0, "p1-0"})
			b.drainAt(99, rc)
		}, nil, map[checker.Kind]int{checker.IndeterminateLost: 1}},
		{"an indeterminate send read, then lost", func(b *hb) {
			b.send(1, history.Info, nil, "p1-0")
			b.assign(10, false, 0)
			b.poll(10, false, a0)
			b.drain(99, history.OK)
		}, map[checker.Kind]int{checker.LostWrite: 1}, map[checker.Kind]int{checker.IndeterminateAppeared: 1}},
		{"a failed send of an aborted transaction appears", func(b *hb) {
			b.txnSend(1, "t1", history.Fail, nil, "p1-0")
			b.end(1, "t1", history.TxnAbort, history.OK)
			b.assignAt(10, false, 0, ru)
			b.poll(10, false, read{0, "p1-0"})
		}, map[checker.Kind]int{checker.FailedAppeared: 1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b hb
			tc.build(&b)
			res := checker.Check(b.ops)
			want, notes := tc.want, tc.notes
			if want == nil {
				want = map[checker.Kind]int{}
			}
			if notes == nil {
				notes = map[checker.Kind]int{}
			}
			var out strings.Builder
			res.WriteText(&out, nil)
			if !maps.Equal(res.AnomaliesByKind, want) || !maps.Equal(res.NotesByKind, notes) {
				t.Errorf("anomalies %v notes %v, want %v and %v\n%s", res.AnomaliesByKind, res.NotesByKind, want, notes, out.String())
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

func TestTransactionCounts(t *testing.T) {
	var b hb
	cleanTxns(&b)
	b.txnSend(4, "t3", history.OK, []int64{6}, "p4-0")
	b.end(4, "t3", history.TxnCommit, history.Info)
	b.txnSend(5, "t4", history.Info, nil, "p5-0")
	res := checker.Check(b.ops)
	want := checker.TxnCounts{Committed: 1, Aborted: 2, Indeterminate: 1}
	if res.Transactions != want {
		t.Errorf("transactions %+v, want %+v", res.Transactions, want)
	}
	// p3-0, p1-0 and p1-1 acknowledged; p2-0 and p5-0 aborted (t4 never
	// asked to commit); p4-0 indeterminate.
	if res.Sent != 6 || res.Acknowledged != 3 || res.Aborted != 2 || res.Indeterminate != 1 || res.Failed != 0 {
		t.Errorf("counts %+v", res)
	}
	if len(res.Unchecked) != 0 {
		t.Errorf("unchecked %v, want none", res.Unchecked)
	}
}

// TestTxnEvidence: an aborted read cites the send, the abort and the
// read.
func TestTxnEvidence(t *testing.T) {
	var b hb
	send := b.txnSend(2, "t2", history.OK, []int64{0}, "p2-0") // lines 1, 2
	abort := b.end(2, "t2", history.TxnAbort, history.OK)      // 3, 4
	b.assignAt(10, false, 0, rc)                               // 5, 6
	poll := b.poll(10, false, read{0, "p2-0"})                 // 7, 8
	res := checker.Check(b.ops)
	if len(res.Anomalies) != 1 {
		t.Fatalf("anomalies %+v", res.Anomalies)
	}
	a := res.Anomalies[0]
	if a.Kind != checker.AbortedRead || a.Value != "p2-0" || a.Offset != 0 || !strings.Contains(a.Detail, "t2 was aborted") {
		t.Errorf("anomaly %+v", a)
	}
	if got, want := a.Lines, []int{send - 1, send, abort - 1, abort, poll}; !equalInts(got, want) {
		t.Errorf("lines %v, want %v", got, want)
	}
}
