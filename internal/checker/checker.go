package checker

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/floe-io/floe/internal/history"
)

// Anomaly is one finding, with the history lines that prove it.
type Anomaly struct {
	Kind Kind `json:"kind"`
	// Partition is "topic/partition" when the finding is about one.
	Partition string `json:"partition,omitempty"`
	// Offset is the offset in question, -1 when none is.
	Offset int64  `json:"offset"`
	Value  string `json:"value,omitempty"`
	Group  string `json:"group,omitempty"`
	Detail string `json:"detail"`
	// Lines are 1-based line numbers of the history, ascending.
	Lines []int `json:"lines"`
}

// Result is the verdict on a history.
type Result struct {
	// Valid is true when no anomaly was found.
	Valid bool `json:"valid"`
	// Operations counts operations, not lines: each invocation with its
	// completion (or none, if it never completed), and each rebalance.
	Operations int `json:"operations"`
	// Sent, Acknowledged, Failed and Indeterminate count values by how
	// their send ended; Read counts distinct values read.
	Sent          int `json:"sent"`
	Acknowledged  int `json:"acknowledged"`
	Failed        int `json:"failed"`
	Indeterminate int `json:"indeterminate"`
	// Aborted counts values sent in transactions that did not commit
	// (and whose send did not fail definitely).
	Aborted int `json:"aborted"`
	Read    int `json:"read"`
	// Transactions counts the history's transactions by how they ended.
	Transactions TxnCounts `json:"transactions"`
	// FinalRead says whether the history has a completed final read; without
	// one, lost writes and commit skips are not decided.
	FinalRead       bool            `json:"final_read"`
	Anomalies       []Anomaly       `json:"anomalies"`
	AnomaliesByKind map[Kind]int    `json:"anomalies_by_kind"`
	Notes           []Anomaly       `json:"notes"`
	NotesByKind     map[Kind]int    `json:"notes_by_kind"`
	Unchecked       map[Kind]string `json:"unchecked"`
}

// TxnCounts counts transactions: Committed, the commit was acknowledged;
// Aborted, it never committed (its process aborted it, its commit failed,
// or it never asked to commit); Indeterminate, its commit's outcome is
// unknown.
type TxnCounts struct {
	Committed     int `json:"committed"`
	Aborted       int `json:"aborted"`
	Indeterminate int `json:"indeterminate"`
}

// pair is an operation: its invocation and completion. Rebalance lines
// stand alone (inv == comp); an invocation never completed has comp nil.
type pair struct {
	inv, comp *history.Op
	// committed: a poll made at read_committed (by the isolation level
	// of its process's last assign or subscribe).
	committed bool
}

func (p pair) status() history.Type {
	if p.comp == nil {
		return history.Info
	}
	return p.comp.Type
}

func (p pair) lines() []int {
	if p.comp == nil || p.comp == p.inv {
		return []int{p.inv.Line()}
	}
	return []int{p.inv.Line(), p.comp.Line()}
}

type tpo struct {
	tp     history.TopicPartition
	offset int64
}

// sent is what the history says about one value.
type sent struct {
	op        pair
	process   int
	tp        history.TopicPartition
	ackOffset int64     // -1 unless acknowledged with an offset
	txn       *txnState // nil unless sent in a transaction
}

type state struct {
	ops   []history.Op
	res   Result
	pairs []pair

	values       map[string]*sent
	readsByValue map[string]map[tpo][]int // value → where read → lines
	readsByTPO   map[tpo]map[string][]int // offset → values read there → lines
	// known are the offsets any read or acknowledgement shows to hold a
	// value; knownCommitted those that hold a value a read_committed
	// consumer must see (not a value of a transaction that did not, or
	// may not have, committed).
	known          map[history.TopicPartition][]int64
	knownCommitted map[history.TopicPartition][]int64
	final          map[string]int // value → a final-read line
	finalOffsets   map[history.TopicPartition][]int64
	finalLine      map[tpo]int
	finalDone      bool
	finalCommitted bool           // the final read was at read_committed
	ackedAt        map[tpo]string // acknowledged offset → value
	drain          []int          // lines of the drain operations

	txns     map[string]*txnState
	txnNames []string // sorted
	// committedReads are, for each transactional value, the lines of
	// read_committed reads that show its transaction committed.
	committedReads map[string][]int
}

// Check examines a history and reports every anomaly it can prove.
func Check(ops []history.Op) Result {
	s := &state{
		ops:            ops,
		values:         map[string]*sent{},
		readsByValue:   map[string]map[tpo][]int{},
		readsByTPO:     map[tpo]map[string][]int{},
		known:          map[history.TopicPartition][]int64{},
		knownCommitted: map[history.TopicPartition][]int64{},
		final:          map[string]int{},
		finalOffsets:   map[history.TopicPartition][]int64{},
		finalLine:      map[tpo]int{},
		ackedAt:        map[tpo]string{},
		txns:           map[string]*txnState{},
		committedReads: map[string][]int{},
	}
	s.res.Anomalies, s.res.Notes = []Anomaly{}, []Anomaly{}
	s.res.AnomaliesByKind = map[Kind]int{}
	s.res.NotesByKind = map[Kind]int{}
	s.res.Unchecked = map[Kind]string{}
	for k, why := range Unchecked {
		s.res.Unchecked[k] = why
	}
	s.pair()
	s.isolation()
	s.collectTxns()
	s.collect()
	s.resolveTxns()
	s.checkFinal()
	s.checkOffsets()
	s.checkOrder()
	s.checkPolls()
	s.checkCommits()
	s.checkTxnReads()
	s.checkTornFinal()
	slices.SortStableFunc(s.res.Anomalies, byFirstLine)
	slices.SortStableFunc(s.res.Notes, byFirstLine)
	s.res.Valid = len(s.res.Anomalies) == 0
	return s.res
}

func byFirstLine(a, b Anomaly) int {
	la, lb := 0, 0
	if len(a.Lines) > 0 {
		la = a.Lines[0]
	}
	if len(b.Lines) > 0 {
		lb = b.Lines[0]
	}
	return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Partition, b.Partition),
		cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Value, b.Value), cmp.Compare(a.Detail, b.Detail))
}

func (s *state) report(a Anomaly) {
	a.Lines = uniqueSorted(a.Lines)
	switch a.Kind {
	case IndeterminateAppeared, IndeterminateLost, ShareRedelivered:
		s.res.Notes = append(s.res.Notes, a)
		s.res.NotesByKind[a.Kind]++
	default:
		s.res.Anomalies = append(s.res.Anomalies, a)
		s.res.AnomaliesByKind[a.Kind]++
	}
}

func uniqueSorted(lines []int) []int {
	out := slices.Clone(lines)
	slices.Sort(out)
	return slices.Compact(out)
}

// pair matches each invocation with its process's next completion.
func (s *state) pair() {
	pending := map[int]int{} // process → index into s.pairs
	for i := range s.ops {
		op := &s.ops[i]
		switch {
		case op.F == history.Start:
			continue
		case op.Type == history.Invoke:
			if j, ok := pending[op.Process]; ok {
				s.report(Anomaly{Kind: MalformedHistory, Offset: -1,
					Detail: fmt.Sprintf("process %d invoked %s before its %s completed", op.Process, op.F, s.pairs[j].inv.F),
					Lines:  []int{s.pairs[j].inv.Line(), op.Line()}})
			}
			pending[op.Process] = len(s.pairs)
			s.pairs = append(s.pairs, pair{inv: op})
		case op.F == history.Rebalance:
			s.pairs = append(s.pairs, pair{inv: op, comp: op})
		default:
			j, ok := pending[op.Process]
			if !ok || s.pairs[j].inv.F != op.F {
				s.report(Anomaly{Kind: MalformedHistory, Offset: -1,
					Detail: fmt.Sprintf("process %d completed %s with no invocation", op.Process, op.F),
					Lines:  []int{op.Line()}})
				continue
			}
			s.pairs[j].comp = op
			delete(pending, op.Process)
		}
	}
	s.res.Operations = len(s.pairs)
}

// byCompletion returns the operations ordered by their completion line
// (pending ones, which never completed, by their invocation).
func (s *state) byCompletion() []pair {
	out := slices.Clone(s.pairs)
	at := func(p pair) int {
		if p.comp != nil {
			return p.comp.Index
		}
		return p.inv.Index
	}
	slices.SortStableFunc(out, func(a, b pair) int { return cmp.Compare(at(a), at(b)) })
	return out
}

// collect indexes sends and reads.
func (s *state) collect() {
	for _, p := range s.pairs {
		if p.inv.F != history.Send {
			continue
		}
		acked := map[string]int64{}
		if p.status() == history.OK {
			for _, r := range p.comp.Records {
				acked[r.Value] = r.Offset
			}
		}
		for _, r := range p.inv.Records {
			if prev, dup := s.values[r.Value]; dup {
				s.report(Anomaly{Kind: MalformedHistory, Offset: -1, Value: r.Value,
					Detail: "value sent twice; values must be unique", Lines: append(prev.op.lines(), p.lines()...)})
				continue
			}
			v := &sent{op: p, process: p.inv.Process, tp: r.TP(), ackOffset: -1, txn: s.txns[p.inv.Txn]}
			s.res.Sent++
			if p.status() == history.OK {
				if o, ok := acked[r.Value]; ok && o >= 0 {
					v.ackOffset = o
					s.addKnown(r.TP(), o)
					s.ackedAt[tpo{r.TP(), o}] = r.Value
				}
			}
			switch s.class(v) {
			case acknowledged:
				s.res.Acknowledged++
			case failed:
				s.res.Failed++
			case aborted:
				s.res.Aborted++
			default:
				s.res.Indeterminate++
			}
			if v.txn != nil {
				v.txn.values = append(v.txn.values, r.Value)
			}
			s.values[r.Value] = v
		}
	}
	for _, p := range s.pairs {
		if p.inv.F == history.Drain {
			s.drain = append(s.drain, p.lines()...)
			if p.status() == history.OK {
				s.finalDone = true
			}
		}
		if p.inv.F == history.Assign && p.inv.Final {
			s.finalCommitted = p.inv.Isolation == history.ReadCommitted
		}
		if p.inv.F != history.Poll || p.status() != history.OK {
			continue
		}
		line := p.comp.Line()
		for _, r := range p.comp.Records {
			k := tpo{r.TP(), r.Offset}
			if s.readsByValue[r.Value] == nil {
				s.readsByValue[r.Value] = map[tpo][]int{}
				if _, ok := s.values[r.Value]; !ok {
					s.report(Anomaly{Kind: UnexpectedValue, Partition: k.tp.String(), Offset: r.Offset, Value: r.Value,
						Detail: "read a value that no send carried", Lines: []int{line}})
				}
			}
			s.readsByValue[r.Value][k] = append(s.readsByValue[r.Value][k], line)
			if s.readsByTPO[k] == nil {
				s.readsByTPO[k] = map[string][]int{}
			}
			s.readsByTPO[k][r.Value] = append(s.readsByTPO[k][r.Value], line)
			s.addKnown(k.tp, r.Offset)
			if p.inv.Final {
				if _, ok := s.final[r.Value]; !ok {
					s.final[r.Value] = line
				}
				if _, ok := s.finalLine[k]; !ok {
					s.finalLine[k] = line
					s.finalOffsets[k.tp] = append(s.finalOffsets[k.tp], r.Offset)
				}
			}
		}
	}
	s.res.Read = len(s.readsByValue)
	for tp, offs := range s.known {
		slices.Sort(offs)
		s.known[tp] = slices.Compact(offs)
	}
	for tp, offs := range s.finalOffsets {
		slices.Sort(offs)
		s.finalOffsets[tp] = offs
	}
}

func (s *state) addKnown(tp history.TopicPartition, o int64) {
	s.known[tp] = append(s.known[tp], o)
}

// knownBetween returns an offset of tp known to hold a value, strictly
// between lo and hi, and whether there is one; with committed, only
// offsets that hold a value a read_committed consumer must see count.
func (s *state) knownBetween(tp history.TopicPartition, lo, hi int64, committed bool) (int64, bool) {
	offs := s.known[tp]
	if committed {
		offs = s.knownCommitted[tp]
	}
	i := sort.Search(len(offs), func(i int) bool { return offs[i] > lo })
	if i < len(offs) && offs[i] < hi {
		return offs[i], true
	}
	return 0, false
}

// readLines returns up to n lines where value was read, in order.
func (s *state) readLines(value string, n int) []int {
	var lines []int
	for _, ls := range s.readsByValue[value] {
		lines = append(lines, ls...)
	}
	slices.Sort(lines)
	if len(lines) > n {
		lines = lines[:n]
	}
	return lines
}

// checkFinal decides lost writes and classifies indeterminate sends.
func (s *state) checkFinal() {
	if len(s.drain) > 0 && !s.finalDone {
		s.report(Anomaly{Kind: IncompleteFinalRead, Offset: -1,
			Detail: "the final read did not reach the end offsets; lost writes are not decided", Lines: s.drain})
	}
	s.res.FinalRead = s.finalDone
	for _, value := range sortedKeys(s.values) {
		v := s.values[value]
		_, inFinal := s.final[value]
		_, wasRead := s.readsByValue[value]
		switch s.class(v) {
		case acknowledged:
			if s.finalDone && !inFinal {
				lines := append(v.op.lines(), s.readLines(value, 3)...)
				s.report(Anomaly{Kind: LostWrite, Partition: v.tp.String(), Offset: v.ackOffset, Value: value,
					Detail: fmt.Sprintf("acknowledged at offset %d, not in the final read (read %d times before)", v.ackOffset, len(s.readLines(value, 1<<30))),
					Lines:  append(lines, s.drain...)})
			}
		case failed:
			if wasRead {
				s.report(Anomaly{Kind: FailedAppeared, Partition: v.tp.String(), Offset: -1, Value: value,
					Detail: "the send failed definitely, yet the value was read", Lines: append(v.op.lines(), s.readLines(value, 3)...)})
			}
		case aborted:
			// Its transaction never committed: whether it may be read
			// depends on the reader's isolation level (checkTxnReads).
		default:
			// Indeterminate: the send's or its transaction's outcome is
			// unknown. A read shows it was written (and, for a
			// transactional value, a read_committed read after the
			// commit was asked for shows its transaction committed).
			shown := s.shownWritten(value)
			switch {
			case len(shown) > 0 || inFinal:
				at := shown
				if len(at) == 0 {
					at = []int{s.final[value]}
				}
				s.report(Anomaly{Kind: IndeterminateAppeared, Partition: v.tp.String(), Offset: -1, Value: value,
					Detail: "the outcome was unknown; the value was read", Lines: append(v.op.lines(), at[0])})
				if s.finalDone && !inFinal {
					s.report(Anomaly{Kind: LostWrite, Partition: v.tp.String(), Offset: v.ackOffset, Value: value,
						Detail: fmt.Sprintf("the outcome was unknown, but line %d read the value, so it was written; it is not in the final read", shown[0]),
						Lines:  append(append(v.op.lines(), shown[:min(3, len(shown))]...), s.drain...)})
				}
			case s.finalDone:
				s.report(Anomaly{Kind: IndeterminateLost, Partition: v.tp.String(), Offset: -1, Value: value,
					Detail: "the outcome was unknown; the value is not in the final read", Lines: v.op.lines()})
			}
		}
	}
}

// checkOffsets finds values at two offsets, offsets with two values, and
// acknowledgements that disagree with reads.
func (s *state) checkOffsets() {
	for _, value := range sortedKeys(s.readsByValue) {
		where := s.readsByValue[value]
		if len(where) > 1 {
			var lines []int
			var offs []string
			for _, k := range sortedTPOs(where) {
				lines = append(lines, where[k][0])
				offs = append(offs, fmt.Sprintf("%s@%d", k.tp, k.offset))
			}
			if v, ok := s.values[value]; ok {
				lines = append(lines, v.op.lines()...)
			}
			first := sortedTPOs(where)[0]
			s.report(Anomaly{Kind: Duplicate, Partition: first.tp.String(), Offset: first.offset, Value: value,
				Detail: fmt.Sprintf("read at %d offsets: %v", len(where), offs), Lines: lines})
		}
		if v, ok := s.values[value]; ok && v.ackOffset >= 0 {
			if _, atAck := where[tpo{v.tp, v.ackOffset}]; !atAck {
				k := sortedTPOs(where)[0]
				s.report(Anomaly{Kind: AckOffsetMismatch, Partition: v.tp.String(), Offset: v.ackOffset, Value: value,
					Detail: fmt.Sprintf("acknowledged at offset %d, read at %s@%d", v.ackOffset, k.tp, k.offset),
					Lines:  append(v.op.lines(), where[k][0])})
			}
		}
	}
	keys := make([]tpo, 0, len(s.readsByTPO))
	for k := range s.readsByTPO {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareTPO)
	for _, k := range keys {
		vals := s.readsByTPO[k]
		if len(vals) < 2 {
			continue
		}
		var lines []int
		names := sortedKeys(vals)
		for _, v := range names {
			lines = append(lines, vals[v][0])
		}
		s.report(Anomaly{Kind: InconsistentOffset, Partition: k.tp.String(), Offset: k.offset,
			Detail: fmt.Sprintf("%d values at one offset: %v", len(vals), names), Lines: lines})
	}
}

// checkOrder finds one producer's values out of the order it sent them.
// Each process runs one operation at a time, so its acknowledged sends
// are ordered in real time; within a send, records keep their order.
func (s *state) checkOrder() {
	type last struct {
		value  string
		offset int64
	}
	prev := map[int]map[history.TopicPartition]last{}
	for _, p := range s.pairs {
		if p.inv.F != history.Send || p.status() != history.OK {
			continue
		}
		proc := p.inv.Process
		if prev[proc] == nil {
			prev[proc] = map[history.TopicPartition]last{}
		}
		for _, r := range p.inv.Records {
			off, ok := s.lowestRead(r.Value, r.TP())
			if !ok {
				continue
			}
			if l, ok := prev[proc][r.TP()]; ok && off < l.offset {
				lines := append(s.values[l.value].op.lines(), p.lines()...)
				lines = append(lines, s.readLines(l.value, 1)...)
				lines = append(lines, s.readLines(r.Value, 1)...)
				s.report(Anomaly{Kind: Reordered, Partition: r.TP().String(), Offset: off, Value: r.Value,
					Detail: fmt.Sprintf("process %d sent %s after %s, but it is at offset %d, before %d", proc, r.Value, l.value, off, l.offset),
					Lines:  lines})
			}
			prev[proc][r.TP()] = last{r.Value, off}
		}
	}
}

func (s *state) lowestRead(value string, tp history.TopicPartition) (int64, bool) {
	best, found := int64(0), false
	for k := range s.readsByValue[value] {
		if k.tp == tp && (!found || k.offset < best) {
			best, found = k.offset, true
		}
	}
	return best, found
}

// checkPolls follows each consumer's position per partition. A
// read_committed consumer's contiguous reads of a partition (a run: no
// assign, rebalance, skip or step back between them) are also checked
// for torn transactions.
func (s *state) checkPolls() {
	type pos struct {
		offset int64
		line   int
	}
	consumers := map[int]map[history.TopicPartition]pos{}
	runs := map[int]map[history.TopicPartition]*run{}
	endRuns := func(proc int, tps ...history.TopicPartition) {
		for _, tp := range slices.SortedFunc(maps.Keys(runs[proc]), compareTP) {
			if len(tps) == 0 || slices.Contains(tps, tp) {
				s.checkTornRun(runs[proc][tp])
				delete(runs[proc], tp)
			}
		}
	}
	// In completion order: a rebalance written while a poll was blocked
	// (between its invocation and completion) happened before the poll
	// returned its records.
	for _, p := range s.byCompletion() {
		if p.status() != history.OK {
			continue
		}
		proc := p.inv.Process
		if consumers[proc] == nil {
			consumers[proc] = map[history.TopicPartition]pos{}
			runs[proc] = map[history.TopicPartition]*run{}
		}
		at := consumers[proc]
		switch p.inv.F {
		case history.Assign:
			clear(at)
			endRuns(proc)
			for _, o := range p.comp.Offsets {
				if o.Offset >= 0 {
					// The first read should be o.Offset: as if o.Offset-1 was read.
					at[o.TP()] = pos{o.Offset - 1, p.comp.Line()}
				}
			}
		case history.Subscribe:
			clear(at)
			endRuns(proc)
		case history.Rebalance:
			var tps []history.TopicPartition
			for _, o := range append(slices.Clone(p.comp.Offsets), p.comp.Revoked...) {
				delete(at, o.TP())
				tps = append(tps, o.TP())
			}
			endRuns(proc, tps...)
		case history.Poll:
			line := p.comp.Line()
			for _, r := range p.comp.Records {
				tp := r.TP()
				continues := false
				if l, ok := at[tp]; ok {
					if r.Offset <= l.offset {
						s.report(Anomaly{Kind: NonmonotonicPoll, Partition: tp.String(), Offset: r.Offset, Value: r.Value,
							Detail: fmt.Sprintf("process %d read offset %d after %d", proc, r.Offset, l.offset),
							Lines:  []int{l.line, line}})
					} else if k, skipped := s.knownBetween(tp, l.offset, r.Offset, p.committed); skipped {
						s.report(Anomaly{Kind: PollSkip, Partition: tp.String(), Offset: k,
							Detail: fmt.Sprintf("process %d read offset %d after %d, skipping offset %d which holds a value", proc, r.Offset, l.offset, k),
							Lines:  append([]int{l.line, line}, s.evidenceAt(tp, k)...)})
					} else {
						continues = true
					}
				}
				at[tp] = pos{r.Offset, line}
				if !p.committed || p.inv.Final {
					// Only read_committed readers promise atomicity; the
					// final read is checked whole (checkTornFinal).
					continue
				}
				cur := runs[proc][tp]
				if cur == nil || !continues {
					if cur != nil {
						s.checkTornRun(cur)
					}
					cur = &run{process: proc, tp: tp, lo: r.Offset, read: map[string]int{}}
					runs[proc][tp] = cur
				}
				cur.hi = r.Offset
				if _, ok := cur.read[r.Value]; !ok {
					cur.read[r.Value] = line
				}
			}
		}
	}
	for _, proc := range slices.Sorted(maps.Keys(runs)) {
		rs := runs[proc]
		for _, tp := range slices.SortedFunc(maps.Keys(rs), compareTP) {
			s.checkTornRun(rs[tp])
		}
	}
}

// evidenceAt returns a line that shows a value at tp/offset: a read, or
// the acknowledgement that placed it there.
func (s *state) evidenceAt(tp history.TopicPartition, offset int64) []int {
	for _, v := range sortedKeys(s.readsByTPO[tpo{tp, offset}]) {
		return s.readsByTPO[tpo{tp, offset}][v][:1]
	}
	if value, ok := s.ackedAt[tpo{tp, offset}]; ok {
		lines := s.values[value].op.lines()
		return lines[len(lines)-1:]
	}
	return nil
}

// checkCommits finds group commits that go backwards, or past records the
// group never read.
func (s *state) checkCommits() {
	type commit struct {
		p      pair
		offset int64
	}
	type gtp struct {
		group string
		tp    history.TopicPartition
	}
	groupOf := map[int]string{}
	commits := map[gtp][]commit{}
	for _, p := range s.pairs {
		if p.inv.F == history.Subscribe {
			groupOf[p.inv.Process] = p.inv.Group
		}
		if p.inv.F == history.Commit && p.status() == history.OK {
			for _, o := range p.inv.Offsets {
				k := gtp{p.inv.Group, o.TP()}
				commits[k] = append(commits[k], commit{p, o.Offset})
			}
		}
	}
	keys := make([]gtp, 0, len(commits))
	for k := range commits {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b gtp) int {
		return cmp.Or(cmp.Compare(a.group, b.group), compareTPO(tpo{a.tp, 0}, tpo{b.tp, 0}))
	})
	for _, k := range keys {
		cs := commits[k]
		// By completion: the highest offset committed so far.
		done := slices.Clone(cs)
		slices.SortFunc(done, func(a, b commit) int { return cmp.Compare(a.p.comp.Index, b.p.comp.Index) })
		best := make([]int, len(done)) // index into done of the max offset among done[:i+1]
		for i := range done {
			best[i] = i
			if i > 0 && done[best[i-1]].offset >= done[i].offset {
				best[i] = best[i-1]
			}
		}
		for _, c := range cs {
			n := sort.Search(len(done), func(i int) bool { return done[i].p.comp.Index >= c.p.inv.Index })
			if n == 0 {
				continue
			}
			if m := done[best[n-1]]; m.offset > c.offset {
				s.report(Anomaly{Kind: CommitRegressed, Partition: k.tp.String(), Offset: c.offset, Group: k.group,
					Detail: fmt.Sprintf("group %s committed %d after a commit of %d had completed", k.group, c.offset, m.offset),
					Lines:  append(m.p.lines(), c.p.lines()...)})
			}
		}
	}
	// Committed offsets read back.
	for _, p := range s.pairs {
		if p.inv.F != history.Committed || p.status() != history.OK {
			continue
		}
		for _, o := range p.comp.Offsets {
			k := gtp{p.inv.Group, o.TP()}
			if o.Offset >= 0 && !s.commitSent(k.group, k.tp, o.Offset, false) {
				s.report(Anomaly{Kind: CommitUnknown, Partition: k.tp.String(), Offset: o.Offset, Group: k.group,
					Detail: fmt.Sprintf("group %s's committed offset read back as %d, which no member committed", k.group, o.Offset),
					Lines:  p.lines()})
			}
			var best *commit
			for i, c := range commits[k] {
				if c.p.comp.Index < p.inv.Index && (best == nil || c.offset > best.offset) {
					best = &commits[k][i]
				}
			}
			if best == nil || o.Offset >= best.offset || s.commitSent(k.group, k.tp, o.Offset, true) {
				continue
			}
			s.report(Anomaly{Kind: CommitRegressed, Partition: k.tp.String(), Offset: o.Offset, Group: k.group,
				Detail: fmt.Sprintf("group %s's committed offset read back as %d after a commit of %d had completed", k.group, o.Offset, best.offset),
				Lines:  append(best.p.lines(), p.lines()...)})
		}
	}
	if !s.finalDone {
		return
	}
	consumed := map[gtp]map[int64]bool{}
	next := map[gtp]int{} // index into finalOffsets of the first not yet consumed
	// Records count as consumed when their poll completed, and a commit
	// is judged when it was invoked.
	type event struct {
		line int
		p    pair
	}
	var events []event
	for _, p := range s.pairs {
		switch {
		case p.inv.F == history.Poll && p.status() == history.OK:
			events = append(events, event{p.comp.Line(), p})
		case (p.inv.F == history.Commit || p.inv.F == history.Committed) && p.status() == history.OK:
			events = append(events, event{p.inv.Line(), p})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Compare(a.line, b.line) })
	for _, ev := range events {
		p := ev.p
		switch {
		case p.inv.F == history.Poll:
			g, ok := groupOf[p.inv.Process]
			if !ok {
				continue
			}
			for _, r := range p.comp.Records {
				k := gtp{g, r.TP()}
				if consumed[k] == nil {
					consumed[k] = map[int64]bool{}
				}
				consumed[k][r.Offset] = true
			}
		default:
			// A commit carries its offsets in the invocation; a read of
			// the committed offsets, in the completion.
			offsets, what := p.inv.Offsets, "committed"
			if p.inv.F == history.Committed {
				offsets, what = p.comp.Offsets, "had a committed offset of"
			}
			for _, o := range offsets {
				if o.Offset < 0 {
					continue
				}
				k := gtp{p.inv.Group, o.TP()}
				fin := s.finalOffsets[o.TP()]
				i := next[k]
				for i < len(fin) && consumed[k][fin[i]] {
					i++
				}
				next[k] = i
				if i < len(fin) && fin[i] < o.Offset {
					s.report(Anomaly{Kind: CommitSkip, Partition: o.TP().String(), Offset: fin[i], Group: p.inv.Group,
						Detail: fmt.Sprintf("group %s %s %d, but no consumer of the group had read offset %d", p.inv.Group, what, o.Offset, fin[i]),
						Lines:  append(p.lines(), s.finalLine[tpo{o.TP(), fin[i]}])})
				}
			}
		}
	}
}

// commitSent says whether a member of group sent a commit of offset for
// tp; with uncertain, only a commit that ended other than ok (it may have
// been applied at any time) counts.
func (s *state) commitSent(group string, tp history.TopicPartition, offset int64, uncertain bool) bool {
	for _, p := range s.pairs {
		if p.inv.F != history.Commit || p.inv.Group != group || (uncertain && p.status() == history.OK) {
			continue
		}
		for _, o := range p.inv.Offsets {
			if o.TP() == tp && o.Offset == offset {
				return true
			}
		}
	}
	return false
}

func compareTP(a, b history.TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

func compareTPO(a, b tpo) int {
	return cmp.Or(cmp.Compare(a.tp.Topic, b.tp.Topic), cmp.Compare(a.tp.Partition, b.tp.Partition), cmp.Compare(a.offset, b.offset))
}

func sortedTPOs[V any](m map[tpo]V) []tpo {
	keys := make([]tpo, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareTPO)
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
