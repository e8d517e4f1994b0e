package checker

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/floe-io/floe/internal/history"
)

// txnState is what the history says about one transaction: the sends
// that name it and the ends its process asked for.
type txnState struct {
	name   string
	sends  []pair
	values []string // in the order they were sent
	// ends are its TxnCommit and TxnAbort operations, in order; end is
	// the first (the transaction was open at least until it was
	// invoked), commit the first commit that may have taken effect
	// (ended ok or info).
	ends    []pair
	end     *pair
	commit  *pair
	outcome txnOutcome
	// provenLine is the line of a read_committed read of one of its
	// values, made after its commit was asked for, that shows an
	// indeterminate commit took effect (0: none).
	provenLine int
}

type txnOutcome int

const (
	// txnAborted: never committed. Its process aborted it, its commit
	// failed definitely, or it never asked to commit (the coordinator
	// aborts it when it times out).
	txnAborted txnOutcome = iota
	txnCommitted
	// txnUnknown: a commit ended info (or never completed).
	txnUnknown
)

// committedOrProven says whether a read_committed reader must see the
// transaction's values: its commit was acknowledged, or a read shows an
// indeterminate one took effect.
func (t *txnState) committedOrProven() bool {
	return t.outcome == txnCommitted || t.provenLine > 0
}

// why says in words why an aborted transaction did not commit.
func (t *txnState) why() string {
	for _, e := range t.ends {
		if e.inv.F == history.TxnCommit && e.status() == history.Fail {
			return fmt.Sprintf("transaction %s's commit failed", t.name)
		}
	}
	if t.end == nil {
		return fmt.Sprintf("transaction %s never asked to commit", t.name)
	}
	return fmt.Sprintf("transaction %s was aborted", t.name)
}

func (t *txnState) endLines() []int {
	if t.end == nil {
		return nil
	}
	return t.end.lines()
}

// valueClass is how a value's send ended, its transaction included.
type valueClass int

const (
	acknowledged  valueClass = iota // the send, and its transaction's commit, were acknowledged
	failed                          // the send failed definitely: the value is in no log
	aborted                         // sent in a transaction that did not commit
	indeterminate                   // the send's or the commit's outcome is unknown
)

// class decides a value's class. A send in a transaction is acknowledged
// when the commit is; in an aborted one it counts as aborted (unless the
// send itself failed definitely); with a commit of unknown outcome, it is
// indeterminate.
func (s *state) class(v *sent) valueClass {
	send := v.op.status()
	if send == history.Fail {
		return failed
	}
	if v.txn != nil {
		switch v.txn.outcome {
		case txnAborted:
			return aborted
		case txnUnknown:
			return indeterminate
		}
	}
	if send == history.OK {
		return acknowledged
	}
	return indeterminate
}

// isolation marks the polls made at read_committed: a process reads at
// the isolation level of its last assign or subscribe.
func (s *state) isolation() {
	committed := map[int]bool{}
	for i := range s.pairs {
		p := &s.pairs[i]
		switch p.inv.F {
		case history.Assign, history.Subscribe:
			committed[p.inv.Process] = p.inv.Isolation == history.ReadCommitted
		case history.Poll:
			p.committed = committed[p.inv.Process]
		}
	}
}

// collectTxns indexes transactions by name and decides how each ended.
func (s *state) collectTxns() {
	get := func(name string) *txnState {
		t := s.txns[name]
		if t == nil {
			t = &txnState{name: name}
			s.txns[name] = t
			s.txnNames = append(s.txnNames, name)
		}
		return t
	}
	for _, p := range s.pairs {
		if p.inv.Txn == "" {
			continue
		}
		switch p.inv.F {
		case history.Send:
			t := get(p.inv.Txn)
			t.sends = append(t.sends, p)
		case history.TxnCommit, history.TxnAbort:
			t := get(p.inv.Txn)
			t.ends = append(t.ends, p)
		}
	}
	slices.Sort(s.txnNames)
	for _, t := range s.txns {
		t.outcome = txnAborted
		for i := range t.ends {
			e := &t.ends[i]
			if t.end == nil {
				t.end = e
			}
			if e.inv.F != history.TxnCommit {
				continue
			}
			switch e.status() {
			case history.OK:
				t.outcome = txnCommitted
			case history.Info:
				if t.outcome != txnCommitted {
					t.outcome = txnUnknown
				}
			default:
				continue
			}
			if t.commit == nil {
				t.commit = e
			}
		}
		switch t.outcome {
		case txnCommitted:
			s.res.Transactions.Committed++
		case txnUnknown:
			s.res.Transactions.Indeterminate++
		default:
			s.res.Transactions.Aborted++
		}
	}
}

// committedRead says whether a read_committed poll's read of a value of
// t shows t committed: t may have (its commit ended ok or info), the
// poll was made outside t, and it returned after the commit was asked
// for.
func committedRead(p pair, t *txnState) bool {
	return p.inv.Txn != t.name && t.outcome != txnAborted && t.commit != nil && p.comp.Index > t.commit.inv.Index
}

// resolveTxns finds the read_committed reads that show transactions
// committed, and then the offsets read_committed consumers must not skip.
func (s *state) resolveTxns() {
	for _, p := range s.pairs {
		if p.inv.F != history.Poll || p.status() != history.OK || !p.committed {
			continue
		}
		for _, r := range p.comp.Records {
			v := s.values[r.Value]
			if v == nil || v.txn == nil || !committedRead(p, v.txn) {
				continue
			}
			s.committedReads[r.Value] = append(s.committedReads[r.Value], p.comp.Line())
			if v.txn.outcome == txnUnknown && v.txn.provenLine == 0 {
				v.txn.provenLine = p.comp.Line()
			}
		}
	}
	for value, v := range s.values {
		if v.txn != nil && !v.txn.committedOrProven() {
			continue
		}
		if v.ackOffset >= 0 {
			s.knownCommitted[v.tp] = append(s.knownCommitted[v.tp], v.ackOffset)
		}
		for k := range s.readsByValue[value] {
			s.knownCommitted[k.tp] = append(s.knownCommitted[k.tp], k.offset)
		}
	}
	for tp, offs := range s.knownCommitted {
		slices.Sort(offs)
		s.knownCommitted[tp] = slices.Compact(offs)
	}
}

// shownWritten returns the lines of reads that show an indeterminate
// value was written, in order: any read of a value sent outside a
// transaction; for a transactional one, a read_committed read that
// shows its transaction committed.
func (s *state) shownWritten(value string) []int {
	v := s.values[value]
	if v.txn == nil {
		return s.readLines(value, 1<<30)
	}
	lines := slices.Clone(s.committedReads[value])
	slices.Sort(lines)
	return lines
}

// openTxn is a committed transaction's first acknowledged offset on a
// partition and the index of its commit's invocation: it was open until
// then. (Only committed ones: the coordinator may abort a transaction
// before its process asks, when it times out, so an abort says nothing
// about how long it was open.)
type openTxn struct {
	first int64
	end   int
	t     *txnState
	line  int // the line of the send acknowledged at first
}

// openIndex is, per partition, the committed transactions by first
// offset, with the two latest commits among each prefix (two, so that
// one transaction can be left out).
type openIndex struct {
	txns []openTxn
	top  [][2]int // indexes into txns, -1 for none
}

func (s *state) openIndexes() map[history.TopicPartition]*openIndex {
	out := map[history.TopicPartition]*openIndex{}
	for _, name := range s.txnNames {
		t := s.txns[name]
		if !t.committedOrProven() {
			continue
		}
		firsts := map[history.TopicPartition]openTxn{}
		for _, value := range t.values {
			v := s.values[value]
			if v.ackOffset < 0 {
				continue
			}
			if f, ok := firsts[v.tp]; !ok || v.ackOffset < f.first {
				lines := v.op.lines()
				firsts[v.tp] = openTxn{first: v.ackOffset, end: t.commit.inv.Index, t: t, line: lines[len(lines)-1]}
			}
		}
		for tp, f := range firsts {
			if out[tp] == nil {
				out[tp] = &openIndex{}
			}
			out[tp].txns = append(out[tp].txns, f)
		}
	}
	for _, ix := range out {
		slices.SortFunc(ix.txns, func(a, b openTxn) int { return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.t.name, b.t.name)) })
		ix.top = make([][2]int, len(ix.txns))
		best := [2]int{-1, -1}
		for i, o := range ix.txns {
			switch {
			case best[0] < 0 || o.end > ix.txns[best[0]].end:
				best = [2]int{i, best[0]}
			case best[1] < 0 || o.end > ix.txns[best[1]].end:
				best[1] = i
			}
			ix.top[i] = best
		}
	}
	return out
}

// openBelow returns a transaction other than not whose first offset is
// below offset and whose commit was invoked after index, if there is one.
func (ix *openIndex) openBelow(offset int64, index int, not *txnState) (openTxn, bool) {
	n := sort.Search(len(ix.txns), func(i int) bool { return ix.txns[i].first >= offset })
	if n == 0 {
		return openTxn{}, false
	}
	for _, i := range ix.top[n-1] {
		if i >= 0 && ix.txns[i].t != not && ix.txns[i].end > index {
			return ix.txns[i], true
		}
	}
	return openTxn{}, false
}

// checkTxnReads judges what read_committed consumers read: no value of
// a transaction that did not commit, none before its commit was asked
// for, none of the reader's own open transaction, and nothing past the
// first offset of a transaction still open.
func (s *state) checkTxnReads() {
	type badRead struct {
		lines  []int
		detail string
	}
	abortedReads := map[string]*badRead{}
	ownReads := map[string]*badRead{}
	open := s.openIndexes()
	for _, p := range s.pairs {
		if p.inv.F != history.Poll || p.status() != history.OK || !p.committed {
			continue
		}
		line := p.comp.Line()
		past := map[history.TopicPartition]bool{}
		for _, r := range p.comp.Records {
			var t *txnState
			if v := s.values[r.Value]; v != nil {
				t = v.txn
			}
			if t != nil {
				var bad map[string]*badRead
				var detail string
				switch {
				case p.inv.Txn == t.name:
					bad, detail = ownReads, fmt.Sprintf("process %d read its own value inside transaction %s, which had not committed", p.inv.Process, t.name)
				case t.outcome == txnAborted:
					bad, detail = abortedReads, fmt.Sprintf("read at read_committed, but %s", t.why())
				case p.comp.Index < t.commit.inv.Index:
					bad, detail = abortedReads, fmt.Sprintf("read at read_committed (line %d) before transaction %s's commit was asked for (line %d)", line, t.name, t.commit.inv.Line())
				}
				if bad != nil {
					if bad[r.Value] == nil {
						bad[r.Value] = &badRead{detail: detail}
					}
					bad[r.Value].lines = append(bad[r.Value].lines, line)
				}
			}
			tp := r.TP()
			if ix := open[tp]; ix != nil && !past[tp] {
				if o, ok := ix.openBelow(r.Offset, p.comp.Index, t); ok {
					past[tp] = true
					s.report(Anomaly{Kind: ReadPastOpenTransaction, Partition: tp.String(), Offset: r.Offset, Value: r.Value,
						Detail: fmt.Sprintf("process %d read offset %d at read_committed while transaction %s, whose first value here is at offset %d, was open (its commit was asked for at line %d, after the poll returned)",
							p.inv.Process, r.Offset, o.t.name, o.first, o.t.commit.inv.Line()),
						Lines: append(p.lines(), o.line, o.t.commit.inv.Line())})
				}
			}
		}
	}
	for _, kb := range []struct {
		kind Kind
		bad  map[string]*badRead
	}{{AbortedRead, abortedReads}, {OwnUncommittedRead, ownReads}} {
		kind, bad := kb.kind, kb.bad
		for _, value := range sortedKeys(bad) {
			b, v := bad[value], s.values[value]
			detail := b.detail
			if len(b.lines) > 1 {
				detail += fmt.Sprintf(" (read %d times so)", len(b.lines))
			}
			lines := append(v.op.lines(), v.txn.endLines()...)
			s.report(Anomaly{Kind: kind, Partition: v.tp.String(), Offset: v.ackOffset, Value: value,
				Detail: detail, Lines: append(lines, b.lines[:min(3, len(b.lines))]...)})
		}
	}
}

// run is one read_committed consumer's contiguous reads of a partition:
// every offset from lo to hi known to hold a committed value was read.
type run struct {
	process int
	tp      history.TopicPartition
	lo, hi  int64
	read    map[string]int // value → the line that read it
}

// checkTornRun reports the transactions that r saw in part: a value of
// theirs read, another acknowledged at an offset inside the run, not.
func (s *state) checkTornRun(r *run) {
	seen := map[*txnState]bool{}
	for _, value := range sortedKeys(r.read) {
		v := s.values[value]
		if v == nil || v.txn == nil || seen[v.txn] || !v.txn.committedOrProven() {
			continue
		}
		t := v.txn
		seen[t] = true
		var missing []string
		for _, u := range t.values {
			su := s.values[u]
			if su.tp != r.tp || su.ackOffset < r.lo || su.ackOffset > r.hi {
				continue
			}
			if _, ok := r.read[u]; !ok {
				missing = append(missing, u)
			}
		}
		if len(missing) == 0 {
			continue
		}
		m := s.values[missing[0]]
		s.report(Anomaly{Kind: TornTransaction, Partition: r.tp.String(), Offset: m.ackOffset, Value: missing[0],
			Detail: fmt.Sprintf("process %d read offsets %d to %d at read_committed, %s of transaction %s among them, but not %s (acknowledged at offset %d)%s",
				r.process, r.lo, r.hi, value, t.name, missing[0], m.ackOffset, more(len(missing)-1)),
			Lines: append([]int{r.read[value]}, m.op.lines()...)})
	}
}

// checkTornFinal reports the transactions of which the final read (at
// read_committed, complete) has some values and not others.
func (s *state) checkTornFinal() {
	if !s.finalDone || !s.finalCommitted {
		return
	}
	for _, name := range s.txnNames {
		t := s.txns[name]
		if t.outcome == txnAborted {
			continue
		}
		var present, missing []string
		for _, value := range t.values {
			if _, in := s.final[value]; in {
				present = append(present, value)
			} else if s.values[value].op.status() == history.OK {
				missing = append(missing, value)
			}
		}
		if len(present) == 0 || len(missing) == 0 {
			continue
		}
		m := s.values[missing[0]]
		lines := append(t.endLines(), m.op.lines()...)
		lines = append(lines, s.final[present[0]])
		s.report(Anomaly{Kind: TornTransaction, Partition: m.tp.String(), Offset: m.ackOffset, Value: missing[0],
			Detail: fmt.Sprintf("the final read has %d of transaction %s's values (%s, line %d) but not %s%s",
				len(present), t.name, present[0], s.final[present[0]], missing[0], more(len(missing)-1)),
			Lines: append(lines, s.drain...)})
	}
}

func more(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" nor %d more", n)
}
