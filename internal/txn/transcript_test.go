package txn_test

// Transcript tests: each file in testdata/ is a scenario, a sequence of
//
//	command key=value ...
//	----
//	expected output
//
// blocks separated by blank lines; lines starting with # are comments.
// Run with -rewrite to regenerate the expected outputs, then review the
// diff.
//
// Commands (all for the one transactional id "t"; pid and epoch default
// to the last ones handed out, v to the newest version):
//
//	config max-timeout=D
//	init [timeout=D] [pid=N epoch=N] [v=N]      InitProducerId
//	add parts=a0,b1 [pid= epoch=] [v=N] [verify] AddPartitionsToTxn
//	offsets group=G [pid= epoch=] [v=N]          AddOffsetsToTxn
//	commit|abort [pid= epoch=] [v=N]             EndTxn
//	txn-offsets group=G [pid= epoch=] [v=N]      TxnOffsetCommit's checks
//	advance D                                    the clock moves
//	expire                                       the timeout loop runs
//	seed producer=N epoch=N [state=S]            store a record as is
//
// Any request may end with hold=NAME: it is decided now but its write
// waits (markers uploading, an agent paused) until "release NAME", as
// when two agents both believe they coordinate the id.

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil/transcript"
	"github.com/floe-io/floe/internal/txn"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations")

func TestTranscripts(t *testing.T) {
	transcript.Run(t, "testdata/*.txt", *rewrite, func() func(t *testing.T, cmd string) []string {
		return newHarness().run
	})
}

type held struct {
	s    *store
	d    decision
	st   step
	hand *handout
}

// handout is the producer an answer handed out, remembered as the
// default for the next requests once the answer is given.
type handout struct {
	set   bool
	pid   int64
	epoch int16
}

func (h *harness) answered(ho *handout) {
	if ho.set {
		h.pid, h.epoch = ho.pid, ho.epoch
	}
}

type harness struct {
	cfg   txn.Config
	s     *store // of the transactional id "t"
	other map[string]*store
	now   time.Time
	start time.Time
	pid   int64
	epoch int16
	held  map[string]held
}

func newHarness() *harness {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &harness{s: newStore(start), other: map[string]*store{}, now: start, start: start, pid: -1, epoch: -1, held: map[string]held{}}
}

func args(t *testing.T, fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			v = "true"
		}
		m[k] = v
	}
	return m
}

func num(t *testing.T, a map[string]string, k string, def int64) int64 {
	s, ok := a[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%s: %v", k, s, err)
	}
	return n
}

func dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *harness) run(t *testing.T, line string) []string {
	fields := strings.Fields(line)
	a := args(t, fields[1:])
	var out []string
	pid, epoch := num(t, a, "pid", h.pid), int16(num(t, a, "epoch", int64(h.epoch)))
	id, s := "t", h.s
	if v, ok := a["id"]; ok && v != id {
		// Another transactional id, with a store of its own.
		id = v
		if s = h.other[id]; s == nil {
			s = newStore(h.start)
			s.nextPID = 9000
			h.other[id] = s
		}
	}
	var d decision
	ho := &handout{}
	switch fields[0] {
	case "config":
		h.cfg.MaxTimeout = dur(t, a["max-timeout"])
		return nil
	case "seed":
		// A record with a long history, stored as is.
		st := metastore.TxnEmpty
		if v, ok := a["state"]; ok {
			st = metastore.TxnState(v)
		}
		rec := metastore.Txn{
			TransactionalID: id, ProducerID: num(t, a, "producer", 1000), ProducerEpoch: int16(num(t, a, "epoch", 0)),
			LastProducerID: -1, LastProducerEpoch: -1, State: st, TimeoutMs: 60_000, UpdatedAt: h.now,
			Version: s.rec.Version,
		}
		if !s.write(rec) {
			t.Fatal("seed: version conflict")
		}
		s.nextPID = max(s.nextPID, rec.ProducerID+1)
		h.pid, h.epoch = rec.ProducerID, rec.ProducerEpoch
		return []string{s.describe()}
	case "advance":
		h.now = h.now.Add(dur(t, fields[1]))
		return []string{h.clock()}
	case "release":
		hd, ok := h.held[fields[1]]
		if !ok {
			t.Fatalf("nothing held as %s", fields[1])
		}
		delete(h.held, fields[1])
		resp := hd.s.apply(h.now, hd.d, hd.st, &out)
		h.answered(hd.hand)
		return append(append(out, resp), hd.s.describe())
	case "expire":
		d = func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			e := txn.Expire(cur, found, in)
			if e.End == nil && !e.NeedProducerID {
				return "nothing to expire", e
			}
			return "expired", e
		}
	case "init":
		timeout := 60 * time.Second
		if s, ok := a["timeout"]; ok {
			timeout = dur(t, s)
		}
		r := txn.InitProducerIDRequest{
			Version: int16(num(t, a, "v", 5)), TransactionalID: id, TimeoutMs: int32(timeout.Milliseconds()),
			ProducerID: num(t, a, "pid", -1), ProducerEpoch: int16(num(t, a, "epoch", -1)),
		}
		d = func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			resp, eff := txn.InitProducerID(h.cfg, cur, found, r, in)
			*ho = handout{set: resp.Err == 0, pid: resp.ProducerID, epoch: resp.ProducerEpoch}
			return fmt.Sprintf("init %s producer %d epoch %d", codeName(resp.Err), resp.ProducerID, resp.ProducerEpoch), eff
		}
	case "add":
		var ps []metastore.TopicPartition
		for _, p := range strings.Split(a["parts"], ",") {
			ps = append(ps, tp(p))
		}
		r := txn.AddPartitionsRequest{
			Version: int16(num(t, a, "v", 3)), TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch,
			Partitions: ps, VerifyOnly: a["verify"] == "true",
		}
		d = func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			resp, eff := txn.AddPartitions(cur, found, r, in)
			var each []string
			for i, c := range resp.Errs {
				each = append(each, tpName(ps[i])+":"+codeName(c))
			}
			return "add " + strings.Join(each, " "), eff
		}
	case "offsets":
		r := txn.AddOffsetsRequest{Version: int16(num(t, a, "v", 3)), TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Group: a["group"]}
		d = func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			code, eff := txn.AddOffsets(cur, found, r, in)
			return "offsets " + codeName(code), eff
		}
	case "txn-offsets":
		r := txn.OffsetCommitRequest{Version: int16(num(t, a, "v", 3)), TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Group: a["group"]}
		d = func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			code, eff := txn.CommitOffsets(cur, found, r, in)
			return "txn-offsets " + codeName(code), eff
		}
	case "commit", "abort":
		r := txn.EndTxnRequest{Version: int16(num(t, a, "v", 4)), TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: fields[0] == "commit"}
		d = func(cur metastore.Txn, found bool, in txn.Input) (string, txn.Effect) {
			resp, eff := txn.EndTxn(cur, found, r, in)
			s := fmt.Sprintf("%s %s", fields[0], codeName(resp.Err))
			if r.Version >= txn.EndTxnVersion2 && !eff.NeedProducerID && !eff.Again {
				s += fmt.Sprintf(" producer %d epoch %d", resp.ProducerID, resp.ProducerEpoch)
				*ho = handout{set: resp.Err == 0, pid: resp.ProducerID, epoch: resp.ProducerEpoch}
			}
			return s, eff
		}
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	st := s.decide(h.now, d, &out)
	if name, ok := a["hold"]; ok {
		h.held[name] = held{s: s, d: d, st: st, hand: ho}
		return append(out, fmt.Sprintf("held %s: decided on v%d: %s", name, st.cur.Version, st.resp))
	}
	resp := s.apply(h.now, d, st, &out)
	h.answered(ho)
	return append(append(out, resp), s.describe())
}

func (h *harness) clock() string { return "now +" + h.now.Sub(h.start).String() }
