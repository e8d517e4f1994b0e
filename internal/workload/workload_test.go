package workload_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
	"github.com/floe-io/floe/internal/workload"
)

// TestRecordAgainstAnAgent records a short run against an in-process
// agent and checks it: a correct agent yields a valid history that has
// every kind of operation in it.
func TestRecordAgainstAnAgent(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	}})
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum, err := workload.Run(ctx, workload.Config{
		Brokers:  []string{a.Addr()},
		Topic:    "record",
		Seed:     1,
		Duration: 2 * time.Second,
	}, w)
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("FLOE_HISTORY_OUT"); out != "" {
		os.WriteFile(out, buf.Bytes(), 0o644)
	}
	ops, err := history.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	res := checker.Check(ops)
	t.Logf("summary %+v; %d lines, %d acknowledged, %d read", sum, len(ops), res.Acknowledged, res.Read)
	if !sum.DrainComplete || !res.FinalRead {
		t.Errorf("final read incomplete: %+v", sum)
	}
	if !res.Valid {
		var out bytes.Buffer
		res.WriteText(&out, nil)
		t.Fatalf("anomalies against a correct agent:\n%s", out.String())
	}
	fs := map[history.Func]int{}
	for _, op := range ops {
		if op.Type != history.Invoke {
			fs[op.F]++
		}
	}
	for _, f := range []history.Func{history.Send, history.Poll, history.Assign, history.Subscribe, history.Rebalance, history.Commit, history.Committed, history.Drain} {
		if fs[f] == 0 {
			t.Errorf("no %s in the history: %v", f, fs)
		}
	}
	if res.Acknowledged < 20 || res.Read < res.Acknowledged {
		t.Errorf("acknowledged %d, read %d", res.Acknowledged, res.Read)
	}
}

// TestScheduleFromSeed: two runs with one seed send the same sequence of
// sends (partition and record count) per producer, as far as both got;
// another seed sends another.
func TestScheduleFromSeed(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	shapes := func(topic string, seed int64) map[int][]string {
		var buf bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := workload.Run(ctx, workload.Config{
			Brokers: []string{a.Addr()}, Topic: topic, Seed: seed, Duration: 700 * time.Millisecond,
			AssignConsumers: -1, GroupConsumers: -1,
		}, history.NewWriter(&buf))
		if err != nil {
			t.Fatal(err)
		}
		ops, err := history.Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int][]string{}
		for _, op := range ops {
			if op.F == history.Send && op.Type == history.Invoke {
				out[op.Process] = append(out[op.Process], fmt.Sprintf("%d×%d", op.Records[0].Partition, len(op.Records)))
			}
		}
		return out
	}
	first, again, other := shapes("seed-a", 5), shapes("seed-b", 5), shapes("seed-c", 6)
	for _, proc := range []int{0, 1} {
		n := min(len(first[proc]), len(again[proc]), len(other[proc]))
		if n < 10 {
			t.Fatalf("process %d sent only %d times", proc, n)
		}
		if !slices.Equal(first[proc][:n], again[proc][:n]) {
			t.Errorf("process %d, seed 5: %v then %v", proc, first[proc][:n], again[proc][:n])
		}
		if slices.Equal(first[proc][:n], other[proc][:n]) {
			t.Errorf("process %d: seeds 5 and 6 sent alike: %v", proc, first[proc][:n])
		}
	}
}

// TestRecordTxnAgainstAnAgent records a short run of the txn workload
// against an in-process agent and checks it: transactions committed and
// aborted, read_committed and read_uncommitted consumers, the producers'
// reads of their own open transactions, and a valid verdict.
func TestRecordTxnAgainstAnAgent(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	}})
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := workload.Run(ctx, workload.Config{
		Workload: "txn",
		Brokers:  []string{a.Addr()},
		Topic:    "record-txn",
		Seed:     3,
		Duration: 3 * time.Second,
	}, history.NewWriter(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("FLOE_HISTORY_OUT"); out != "" {
		os.WriteFile(out, buf.Bytes(), 0o644)
	}
	ops, err := history.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	res := checker.Check(ops)
	t.Logf("summary %+v; %d lines, %d acknowledged, %d aborted, %d read, transactions %+v",
		sum, len(ops), res.Acknowledged, res.Aborted, res.Read, res.Transactions)
	if !sum.DrainComplete || !res.FinalRead {
		t.Errorf("final read incomplete: %+v", sum)
	}
	if !res.Valid {
		var out bytes.Buffer
		res.WriteText(&out, nil)
		t.Fatalf("anomalies against a correct agent:\n%s", out.String())
	}
	if ops[0].Meta == nil || ops[0].Meta.Workload != "txn" {
		t.Errorf("start line %+v", ops[0])
	}
	fs := map[history.Func]int{}
	iso := map[string]int{}
	ownPolls, txnSends := 0, 0
	for _, op := range ops {
		if op.Type == history.Invoke {
			iso[op.Isolation]++
			continue
		}
		fs[op.F]++
		switch {
		case op.F == history.Poll && op.Txn != "":
			ownPolls++
		case op.F == history.Send && op.Txn != "":
			txnSends++
		}
	}
	for _, f := range []history.Func{history.Send, history.Poll, history.Assign, history.Subscribe, history.Rebalance,
		history.Commit, history.Committed, history.Drain, history.TxnCommit, history.TxnAbort} {
		if fs[f] == 0 {
			t.Errorf("no %s in the history: %v", f, fs)
		}
	}
	if iso[history.ReadCommitted] == 0 || iso[history.ReadUncommitted] == 0 {
		t.Errorf("isolation levels of assigns and subscribes: %v", iso)
	}
	if ownPolls == 0 || txnSends == 0 {
		t.Errorf("%d polls inside a transaction, %d transactional sends", ownPolls, txnSends)
	}
	if res.Transactions.Committed < 5 || res.Transactions.Aborted == 0 || res.Aborted == 0 {
		t.Errorf("transactions %+v, aborted values %d", res.Transactions, res.Aborted)
	}
}

// TestTxnScheduleFromSeed: in the txn workload, two runs with one seed
// run the same transactions per transactional producer (their sends'
// partitions and record counts, their own reads, commit or abort), as
// far as both got. A run's last transaction is left out: the end of the
// run may have cut its sends short.
func TestTxnScheduleFromSeed(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	shapes := func(topic string) map[int][]string {
		var buf bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := workload.Run(ctx, workload.Config{
			Workload: "txn", Brokers: []string{a.Addr()}, Topic: topic, Seed: 5, Duration: 3 * time.Second,
			IdempotentProducers: -1, AssignConsumers: -1, UncommittedConsumers: -1, GroupConsumers: -1,
		}, history.NewWriter(&buf))
		if err != nil {
			t.Fatal(err)
		}
		ops, err := history.Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int][]string{} // process → its transactions, each its operations
		for _, op := range ops {
			if op.Type != history.Invoke || op.Txn == "" {
				continue
			}
			s := string(op.F)
			if op.F == history.Send {
				s = fmt.Sprintf("%d×%d", op.Records[0].Partition, len(op.Records))
			}
			txns := out[op.Process]
			if len(txns) == 0 || strings.HasPrefix(txns[len(txns)-1], "done") {
				txns = append(txns, "")
			}
			txns[len(txns)-1] += s + " "
			if op.F == history.TxnCommit || op.F == history.TxnAbort {
				txns[len(txns)-1] = "done " + txns[len(txns)-1]
			}
			out[op.Process] = txns
		}
		for proc, txns := range out {
			out[proc] = txns[:max(0, len(txns)-1)]
		}
		return out
	}
	first, again := shapes("txn-seed-a"), shapes("txn-seed-b")
	for _, proc := range []int{0, 1} {
		n := min(len(first[proc]), len(again[proc]))
		if n < 3 {
			t.Fatalf("process %d ran only %d transactions", proc, n)
		}
		if !slices.Equal(first[proc][:n], again[proc][:n]) {
			t.Errorf("process %d, seed 5:\n%q\n%q", proc, first[proc][:n], again[proc][:n])
		}
	}
}
