package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// txnRead is one record a read_committed consumer of a script returned.
type txnRead struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value"`
}

func txnValues(rs []txnRead) []string {
	var vs []string
	for _, r := range rs {
		vs = append(vs, r.Value)
	}
	return vs
}

// txnAgentOptions are groupAgentOptions with the transaction timeout loop
// every 100ms, so that a timed-out transaction is aborted at once.
func txnAgentOptions() agenttest.Options {
	opts := groupAgentOptions()
	groups := opts.Config
	opts.Config = func(c *agent.Config) {
		groups(c)
		c.Transactions.AbortInterval = 100 * time.Millisecond
	}
	return opts
}

// confluentTxnResult is what testdata/confluent_txn.py prints, one field
// per phase it ran.
type confluentTxnResult struct {
	Produce struct {
		Committed        []string  `json:"committed"`
		Aborted          []string  `json:"aborted"`
		Open             []string  `json:"open"`
		ReadBeforeCommit []txnRead `json:"read_before_commit"`
		ReadAfterCommit  []txnRead `json:"read_after_commit"`
	} `json:"produce"`
	Copy struct {
		Rounds       int              `json:"rounds"`
		Aborted      []string         `json:"aborted"`
		GroupOffsets map[string]int64 `json:"group_offsets"`
		Read         []txnRead        `json:"read"`
	} `json:"copy"`
	Fence struct {
		ZombieError *librdkafkaError `json:"zombie_error"`
		Read        []txnRead        `json:"read"`
	} `json:"fence"`
	Timeout struct {
		CommitError *librdkafkaError `json:"commit_error"`
		Read        []txnRead        `json:"read"`
	} `json:"timeout"`
	Unstable struct {
		ReadWhilePending []int64 `json:"read_while_pending"`
		ReadAfterCommit  []int64 `json:"read_after_commit"`
	} `json:"unstable"`
	Seconds map[string]float64 `json:"seconds"`
}

// TestConfluentKafkaPythonTransactionPendingOffsets: a transaction sends
// offset 10 of a group's partition; a read_committed librdkafka member of
// the group, starting while the transaction is open, must wait for it
// (OffsetFetch require_stable answered UNSTABLE_OFFSET_COMMIT, which
// librdkafka retries, KIP-447) and then start at 10. Answering the
// offsets committed before the transaction would have it start at 0 and
// process records 0-9 again, which the transaction already claimed.
func TestConfluentKafkaPythonTransactionPendingOffsets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, res := runConfluentTxn(t, ctx, "pyunstable", "unstable")
	u := res.Unstable
	if len(u.ReadWhilePending) > 0 {
		t.Errorf("the member read offsets %v while the transaction held its group's offsets", u.ReadWhilePending)
	}
	if len(u.ReadAfterCommit) == 0 || u.ReadAfterCommit[0] != 10 {
		t.Errorf("after the commit the member read offsets %v, want 10 to 19", u.ReadAfterCommit)
	}
}

// librdkafkaError is a KafkaError as confluent_txn.py reports it.
type librdkafkaError struct {
	Name             string `json:"name"`
	Fatal            bool   `json:"fatal"`
	Retriable        bool   `json:"retriable"`
	TxnRequiresAbort bool   `json:"txn_requires_abort"`
	Str              string `json:"str"`
}

// runConfluentTxn runs phases of testdata/confluent_txn.py against a
// fresh agent.
func runConfluentTxn(t *testing.T, ctx context.Context, prefix string, phases ...string) (*agenttest.Agent, *confluentTxnResult) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		testutil.MissingClient(t, "%s cannot import confluent_kafka: %v\n%s", debianPython, err, out)
	}
	a := agenttest.Start(t, txnAgentOptions())
	start := time.Now()
	out := runCmd(t, ctx, "", debianPython, append([]string{"testdata/confluent_txn.py", a.Addr(), prefix}, phases...)...)
	var res confluentTxnResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("confluent_txn.py output: %v\n%.2000s", err, out)
	}
	t.Logf("confluent_txn.py ran in %v; seconds per phase: %v", time.Since(start).Round(time.Millisecond), res.Seconds)
	return a, &res
}

// TestConfluentKafkaPythonTransactions: librdkafka's transactional
// producer (confluent-kafka-python) commits and aborts transactions across
// two topics and leaves one open while a read_committed consumer reads;
// then copies a topic in a consume-transform-produce loop with
// send_offsets_to_transaction, one of its transactions aborted.
func TestConfluentKafkaPythonTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, res := runConfluentTxn(t, ctx, "pytxn", "produce", "copy")

	p := res.Produce
	if len(p.Aborted) == 0 || len(p.Open) == 0 {
		t.Fatalf("the script aborted %d records and left %d open; want some of each", len(p.Aborted), len(p.Open))
	}
	stable := slices.DeleteFunc(slices.Clone(p.Committed), func(v string) bool { return slices.Contains(p.Open, v) })
	checkTxnRead(t, "read_committed with a transaction open", p.ReadBeforeCommit, stable)
	checkTxnRead(t, "read_committed after it committed", p.ReadAfterCommit, p.Open)

	c := res.Copy
	if len(c.Aborted) == 0 {
		t.Errorf("no copy transaction was aborted (%d rounds)", c.Rounds)
	}
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("out-v%03d", i))
	}
	checkTxnRead(t, "read_committed of the copy", c.Read, want)
	// 60 input records over two partitions, in turn.
	if got := fmt.Sprint(c.GroupOffsets); got != "map[0:30 1:30]" {
		t.Errorf("committed group offsets (confluent) %s, want map[0:30 1:30]", got)
	}
	checkGroupOffsets(t, ctx, a.Addr(), "pytxn-group", "pytxn-in", map[int32]int64{0: 30, 1: 30})

	// The aborted records were written: read_committed had to skip them.
	checkWritten(ctx, t, a.Addr(), []string{"pytxn-a", "pytxn-b"}, append(slices.Clone(p.Committed), p.Aborted...), p.Aborted)
	checkWritten(ctx, t, a.Addr(), []string{"pytxn-out"}, append(want, c.Aborted...), c.Aborted)
	// librdkafka 2.0 knows no transaction version 2: it stays on version
	// 1 when the agent finalizes 2.
	checkTxnVersions(t, a.Registry(), 1, true, 0)
}

// TestConfluentKafkaPythonTransactionFencing: a second librdkafka producer
// with the same transactional id fences the first, and a transaction that
// outlives its timeout is aborted by the coordinator. librdkafka takes
// INVALID_PRODUCER_EPOCH on a transactional produce, and PRODUCER_FENCED
// on EndTxn, as fatal (_FENCED), as it does against Kafka: the coordinator
// bumps the epoch of a timed-out transaction, so its producer is fenced
// and a new instance takes over.
func TestConfluentKafkaPythonTransactionFencing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, res := runConfluentTxn(t, ctx, "pyfence", "fence", "timeout")

	if e := res.Fence.ZombieError; e == nil || e.Name != "_FENCED" || !e.Fatal {
		t.Errorf("the fenced producer's commit: %+v, want a fatal _FENCED", e)
	}
	checkTxnRead(t, "read_committed after fencing", res.Fence.Read, []string{"fresh"})
	if e := res.Timeout.CommitError; e == nil || e.Name != "_FENCED" || !e.Fatal {
		t.Errorf("the commit of a transaction the coordinator timed out: %+v, want a fatal _FENCED", e)
	}
	checkTxnRead(t, "read_committed after the timeout", res.Timeout.Read, []string{"recovered"})
}

// checkWritten reads topics read_uncommitted with franz-go until it has
// all records and checks that the aborted ones are among them.
func checkWritten(ctx context.Context, t *testing.T, addr string, topics, all, aborted []string) {
	t.Helper()
	got := consumeValues(ctx, t, addr, topics, len(all), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	for _, v := range aborted {
		if !slices.Contains(got, v) {
			t.Errorf("aborted record %s is not in %v read_uncommitted", v, topics)
		}
	}
}

// checkTxnRead checks that a read_committed consumer read exactly want
// (in any order across partitions), each once, and that in every
// partition its offsets increase.
func checkTxnRead(t *testing.T, what string, got []txnRead, want []string) {
	t.Helper()
	if g, w := sorted(txnValues(got)), sorted(want); !slices.Equal(g, w) {
		var extra []string
		for _, v := range g {
			if !slices.Contains(w, v) {
				extra = append(extra, v)
			}
		}
		t.Errorf("%s: read %d records, want %d; not wanted: %v\ngot  %v\nwant %v", what, len(g), len(w), extra, g, w)
	}
	last := map[string]int64{}
	for _, r := range got {
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		if o, ok := last[k]; ok && r.Offset <= o {
			t.Errorf("%s: %s offset %d after %d", what, k, r.Offset, o)
		}
		last[k] = r.Offset
		if strings.HasPrefix(r.Value, "aborted-") {
			t.Errorf("%s: aborted record %s/%d %s read", what, k, r.Offset, r.Value)
		}
	}
}

// checkGroupOffsets compares a group's committed offsets of topic, as
// franz-go's admin client fetches them, with want.
func checkGroupOffsets(t *testing.T, ctx context.Context, addr, group, topic string, want map[int32]int64) {
	t.Helper()
	offs, err := newAdmin(t, addr).FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	got := map[int32]int64{}
	for p, o := range offs[topic] {
		got[p] = o.At
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("group %s: committed offsets of %s %v, want %v", group, topic, got, want)
	}
}
