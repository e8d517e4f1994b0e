package txn_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
)

// TestModel drives one transactional id with random operation sequences
// of several producer instances (clients) against the state machine and
// the compare-and-swap store, with lost answers, decisions taken on
// stale records and applied late (two coordinators), the clock moving
// and the timeout loop running, and checks after every step:
//
//   - at most one producer epoch is current, and each producer id and
//     epoch is handed out to one client only;
//   - an epoch once replaced never becomes current again, and a request
//     carrying one never changes anything;
//   - a transaction that ended never reopens but by a request that adds
//     to it (AddPartitions, AddOffsets, TxnOffsetCommit v5);
//   - no commit is applied after its transaction's timeout;
//   - every stored record is one a store accepts (known state, sorted
//     partitions and groups, none outside Ongoing, epochs in range).
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newModel(t)
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for range steps {
			m.step()
		}
	})
}

type client struct {
	pid   int64
	epoch int16
	tv2   bool // sends EndTxn v5
}

type pair struct {
	pid   int64
	epoch int16
}

type pending struct {
	d     decision
	st    step
	c     int
	kind  string
	asked pair
	ans   func(resp string)
}

type model struct {
	t       *rapid.T
	s       *store
	now     time.Time
	clients []client
	held    []pending
	// handedTo: which client each producer pair was handed out to.
	handedTo map[pair]int
	// retired: pairs that were current once and were replaced.
	retired map[pair]bool
	current pair
	// the request whose writes are being applied: its kind, its client
	// and the producer it carried.
	kind  string
	asker int
	asked pair
}

func newModel(t *rapid.T) *model {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &model{t: t, s: newStore(start), now: start, handedTo: map[pair]int{}, retired: map[pair]bool{}, current: pair{-1, -1}}
	for i := range rapid.IntRange(1, 3).Draw(t, "clients") {
		m.clients = append(m.clients, client{pid: -1, epoch: -1, tv2: rapid.Bool().Draw(t, fmt.Sprintf("tv2[%d]", i))})
	}
	if rapid.Bool().Draw(t, "near exhaustion") {
		// A long history: epochs are about to run out.
		m.s.write(metastore.Txn{TransactionalID: "t", ProducerID: 500, ProducerEpoch: math.MaxInt16 - 3,
			LastProducerID: -1, LastProducerEpoch: -1, State: metastore.TxnEmpty, TimeoutMs: 10_000, UpdatedAt: start})
		m.current = pair{500, math.MaxInt16 - 3}
	}
	m.s.onWrite = m.checkWrite
	return m
}

func (m *model) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf(format+"\nrecord: %s", append(args, m.s.describe())...)
}

var modelParts = []metastore.TopicPartition{tp("a0"), tp("a1"), tp("b0")}

func (m *model) step() {
	t := m.t
	c := rapid.IntRange(0, len(m.clients)-1).Draw(t, "client")
	cl := &m.clients[c]
	switch op := rapid.SampledFrom([]string{"init", "recover", "add", "verify", "offsets", "txn-offsets", "end", "end", "advance", "expire", "release"}).Draw(t, "op"); op {
	case "advance":
		m.now = m.now.Add(time.Duration(rapid.IntRange(0, 12).Draw(t, "seconds")) * time.Second)
		return
	case "release":
		if len(m.held) == 0 {
			return
		}
		i := rapid.IntRange(0, len(m.held)-1).Draw(t, "held")
		p := m.held[i]
		m.held = slices.Delete(m.held, i, i+1)
		m.run(p, p.st)
		return
	case "expire":
		m.request(c, "expire", func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			return "expire", txn.Expire(cur, found, in)
		}, nil)
		return
	case "init", "recover":
		r := txn.InitProducerIDRequest{Version: 4, TransactionalID: "t", TimeoutMs: 10_000, ProducerID: -1, ProducerEpoch: -1}
		if op == "recover" && cl.pid >= 0 {
			r.ProducerID, r.ProducerEpoch = cl.pid, cl.epoch
		}
		asked := pair{r.ProducerID, r.ProducerEpoch}
		m.request(c, op, func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			resp, eff := txn.InitProducerID(txn.Config{}, cur, found, r, in)
			return fmt.Sprintf("%d %d %d", resp.Err, resp.ProducerID, resp.ProducerEpoch), eff
		}, func(resp string) { m.handOut(c, op, asked, resp) })
	case "add", "verify":
		var ps []metastore.TopicPartition
		for _, p := range modelParts {
			if rapid.Bool().Draw(t, "part") {
				ps = append(ps, p)
			}
		}
		r := txn.AddPartitionsRequest{Version: 3, TransactionalID: "t", ProducerID: cl.pid, ProducerEpoch: cl.epoch, Partitions: ps, VerifyOnly: op == "verify"}
		if op == "verify" {
			r.Version = 5
		}
		m.request(c, op, func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			resp, eff := txn.AddPartitions(cur, found, r, in)
			if resp.Err == 0 && r.VerifyOnly && found {
				for i, code := range resp.Errs {
					if (code == 0) != (cur.State == metastore.TxnOngoing && txn.HasPartition(cur, ps[i])) {
						m.fail("verify %s: %s", tpName(ps[i]), codeName(code))
					}
				}
			}
			return fmt.Sprintf("%d", resp.Err), eff
		}, nil)
	case "offsets":
		r := txn.AddOffsetsRequest{Version: 3, TransactionalID: "t", ProducerID: cl.pid, ProducerEpoch: cl.epoch, Group: rapid.SampledFrom([]string{"g", "h"}).Draw(t, "group")}
		m.request(c, op, func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			code, eff := txn.AddOffsets(cur, found, r, in)
			return fmt.Sprintf("%d", code), eff
		}, nil)
	case "txn-offsets":
		r := txn.OffsetCommitRequest{Version: int16(rapid.IntRange(3, 5).Draw(t, "version")), TransactionalID: "t", ProducerID: cl.pid, ProducerEpoch: cl.epoch, Group: "g"}
		m.request(c, op, func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			code, eff := txn.CommitOffsets(cur, found, r, in)
			return fmt.Sprintf("%d", code), eff
		}, nil)
	case "end":
		r := txn.EndTxnRequest{Version: 4, TransactionalID: "t", ProducerID: cl.pid, ProducerEpoch: cl.epoch, Commit: rapid.Bool().Draw(t, "commit")}
		if cl.tv2 {
			r.Version = 5
		}
		asked := pair{cl.pid, cl.epoch}
		m.request(c, op, func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			resp, eff := txn.EndTxn(cur, found, r, in)
			return fmt.Sprintf("%d %d %d", resp.Err, resp.ProducerID, resp.ProducerEpoch), eff
		}, func(resp string) {
			if r.Version >= txn.EndTxnVersion2 {
				m.handOut(c, "end", asked, resp)
			}
		})
	}
}

// request decides now and either applies at once or holds the decision
// (another coordinator, to be applied later).
func (m *model) request(c int, kind string, d decision, ans func(string)) {
	var out []string
	p := pending{d: d, c: c, kind: kind, asked: pair{m.clients[c].pid, m.clients[c].epoch}, ans: ans}
	st := m.s.decide(m.now, d, &out)
	// Only a write can be held: an answer that writes nothing is given
	// on the record it was decided on.
	if (st.eff.Save != nil || st.eff.End != nil) && rapid.IntRange(0, 5).Draw(m.t, "hold") == 0 {
		p.st = st
		m.held = append(m.held, p)
		return
	}
	m.run(p, st)
}

// run applies a decision, and gives its answer unless it is lost.
func (m *model) run(p pending, st step) {
	var out []string
	m.kind, m.asker, m.asked = p.kind, p.c, p.asked
	resp := m.s.apply(m.now, p.d, st, &out)
	if p.ans != nil && rapid.IntRange(0, 4).Draw(m.t, "lost") != 0 {
		p.ans(resp)
	}
}

// handOut records a producer handed out by InitProducerId or EndTxn v5.
func (m *model) handOut(c int, kind string, asked pair, resp string) {
	var code int16
	var p pair
	fmt.Sscanf(resp, "%d %d %d", &code, &p.pid, &p.epoch)
	if code != 0 {
		return
	}
	if who, ok := m.handedTo[p]; ok && who != c {
		m.fail("%s by client %d (asked %v): %v already handed to client %d", kind, c, asked, p, who)
	}
	if p != m.current {
		m.fail("%s by client %d handed %v, current %v", kind, c, p, m.current)
	}
	m.handedTo[p] = c
	m.clients[c].pid, m.clients[c].epoch = p.pid, p.epoch
}

// checkWrite sees every write the store accepts.
func (m *model) checkWrite(prev metastore.Txn, prevFound bool, st step) {
	next := m.s.rec
	own := !st.eff.Again && m.kind != "expire"
	asked := m.asked
	// The record is one a store accepts.
	if next.ProducerEpoch < 0 || next.ProducerEpoch > math.MaxInt16-1 {
		m.fail("epoch %d stored", next.ProducerEpoch)
	}
	if !slices.IsSortedFunc(next.Partitions, txn.ComparePartitions) || len(slices.CompactFunc(slices.Clone(next.Partitions), func(a, b metastore.TopicPartition) bool { return a == b })) != len(next.Partitions) {
		m.fail("partitions %v", next.Partitions)
	}
	if !slices.IsSorted(next.Groups) || len(slices.Compact(slices.Clone(next.Groups))) != len(next.Groups) {
		m.fail("groups %v", next.Groups)
	}
	if next.State != metastore.TxnOngoing && (len(next.Partitions) > 0 || len(next.Groups) > 0 || !next.StartedAt.IsZero()) {
		m.fail("%s with partitions %v groups %v", next.State, next.Partitions, next.Groups)
	}
	// A replaced epoch never comes back.
	cur := pair{next.ProducerID, next.ProducerEpoch}
	if cur != m.current {
		if m.retired[cur] {
			m.fail("retired producer %v current again", cur)
		}
		if m.current.pid >= 0 {
			m.retired[m.current] = true
		}
		if cur.pid == m.current.pid && cur.epoch < m.current.epoch {
			m.fail("epoch went back from %v to %v", m.current, cur)
		}
		if m.kind != "init" && m.kind != "recover" && m.kind != "end" && m.kind != "expire" && own {
			m.fail("%s changed the producer from %v to %v", m.kind, m.current, cur)
		}
		m.current = cur
	}
	// Requests of a retired producer change nothing.
	if own && (m.kind == "add" || m.kind == "offsets" || m.kind == "txn-offsets" || m.kind == "end") && asked != (pair{prev.ProducerID, prev.ProducerEpoch}) {
		m.fail("%s of client %d with %v wrote over producer %d/%d", m.kind, m.asker, asked, prev.ProducerID, prev.ProducerEpoch)
	}
	// Ended transactions reopen only by adding to them.
	if next.State == metastore.TxnOngoing && (!prevFound || prev.State != metastore.TxnOngoing) {
		if !own || m.kind != "add" && m.kind != "offsets" && m.kind != "txn-offsets" {
			m.fail("%s reopened a transaction", m.kind)
		}
	}
	if next.State == metastore.TxnOngoing && prev.State == metastore.TxnOngoing {
		for _, p := range prev.Partitions {
			if !txn.HasPartition(next, p) {
				m.fail("partition %s left an ongoing transaction", tpName(p))
			}
		}
	}
	// Nothing commits after its timeout.
	if e := st.eff.End; e != nil && e.Commit && !st.in.Now.Before(txn.Deadline(prev)) {
		m.fail("commit applied at +%s, deadline +%s", st.in.Now.Sub(m.s.start), txn.Deadline(prev).Sub(m.s.start))
	}
	if e := st.eff.End; e != nil {
		if !slices.Equal(e.Partitions, prev.Partitions) || !slices.Equal(e.Groups, prev.Groups) || e.ProducerID != prev.ProducerID {
			m.fail("end of %v/%v by %d, record had %v/%v by %d", e.Partitions, e.Groups, e.ProducerID, prev.Partitions, prev.Groups, prev.ProducerID)
		}
		if e.MarkerEpoch < prev.ProducerEpoch {
			m.fail("markers with epoch %d below %d", e.MarkerEpoch, prev.ProducerEpoch)
		}
	}
}
