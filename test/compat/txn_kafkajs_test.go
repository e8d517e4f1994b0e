package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestKafkaJSTransactions runs testdata/kafkajs/txn.js: KafkaJS's
// transactional producer commits and aborts transactions across two
// topics, aborts a transaction holding a group's offsets, and copies a
// topic in a consume-transform-produce loop with sendOffsets, one of its
// transactions aborted; and a second producer with the same transactional
// id fences the first. KafkaJS group consumers read everything
// read_committed.
func TestKafkaJSTransactions(t *testing.T) {
	node := testutil.RequireClient(t, "node")
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
		testutil.MissingClient(t, "kafkajs is not installed (run npm ci in %s, as scripts/test does): %v", kafkajsDir, err)
	}
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Setenv("KAFKAJS_NO_PARTITIONER_WARNING", "1")
	start := time.Now()
	out := runCmd(t, ctx, "", node, filepath.Join(kafkajsDir, "txn.js"), a.Addr(), "jstxn")
	t.Logf("txn.js ran in %v", time.Since(start).Round(time.Millisecond))
	var res struct {
		Produce struct {
			Committed []string  `json:"committed"`
			Aborted   []string  `json:"aborted"`
			Read      []txnRead `json:"read"`
		} `json:"produce"`
		Copy struct {
			Rounds            int              `json:"rounds"`
			Aborted           []string         `json:"aborted"`
			OffsetsAfterAbort map[string]int64 `json:"offsets_after_abort"`
			GroupOffsets      map[string]int64 `json:"group_offsets"`
			Read              []txnRead        `json:"read"`
		} `json:"copy"`
		Fence struct {
			Errors map[string]*struct {
				Name      string `json:"name"`
				Type      string `json:"type"`
				Retriable bool   `json:"retriable"`
			} `json:"errors"`
			Read []txnRead `json:"read"`
		} `json:"fence"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("txn.js output: %v\n%.2000s", err, out)
	}

	p := res.Produce
	if len(p.Aborted) == 0 {
		t.Fatal("the script aborted nothing")
	}
	checkTxnRead(t, "read_committed", p.Read, p.Committed)

	c := res.Copy
	if got := fmt.Sprint(c.OffsetsAfterAbort); got != "map[0:-1 1:-1]" {
		t.Errorf("group offsets after the aborted sendOffsets %s, want none (map[0:-1 1:-1])", got)
	}
	if len(c.Aborted) <= 2 {
		t.Errorf("no copy transaction was aborted (%d rounds)", c.Rounds)
	}
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("out-v%03d", i))
	}
	checkTxnRead(t, "read_committed of the copy", c.Read, want)
	if got := fmt.Sprint(c.GroupOffsets); got != "map[0:30 1:30]" {
		t.Errorf("committed group offsets (KafkaJS) %s, want map[0:30 1:30]", got)
	}
	checkGroupOffsets(t, ctx, a.Addr(), "jstxn-group", "jstxn-in", map[int32]int64{0: 30, 1: 30})

	// KafkaJS 2.2.4 speaks EndTxn and AddPartitionsToTxn v0-v1, which
	// are answered INVALID_PRODUCER_EPOCH rather than PRODUCER_FENCED (a
	// code it does not know).
	for _, step := range []string{"send", "commit"} {
		if e := res.Fence.Errors[step]; e == nil || e.Type != "INVALID_PRODUCER_EPOCH" || e.Retriable {
			t.Errorf("the fenced producer's %s: %+v, want INVALID_PRODUCER_EPOCH, not retriable", step, e)
		}
	}
	checkTxnRead(t, "read_committed after fencing", res.Fence.Read, []string{"fresh"})

	checkWritten(ctx, t, a.Addr(), []string{"jstxn-a", "jstxn-b"}, append(slices.Clone(p.Committed), p.Aborted...), p.Aborted)
	checkWritten(ctx, t, a.Addr(), []string{"jstxn-out"}, append(want, c.Aborted...), c.Aborted)
	// KafkaJS knows no transaction version 2 (nor features): it stays on
	// version 1 when the agent finalizes 2.
	checkTxnVersions(t, a.Registry(), 1, true, 0)
}
