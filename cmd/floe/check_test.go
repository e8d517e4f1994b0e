package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/floe-io/floe/internal/agent"
)

// TestRecordThenCheck: floe record writes a history of a short run
// against an agent, and floe check finds it valid.
func TestRecordThenCheck(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.Groups.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	}})
	path := filepath.Join(t.TempDir(), "h.jsonl")
	var out, errOut bytes.Buffer
	if err := run([]string{"record", "--brokers", a.Addr(), "--duration", "1s", "--seed", "3", "--out", path, "--check"}, &out, &errOut); err != nil {
		t.Fatalf("floe record: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "valid: no anomalies") {
		t.Errorf("record --check printed:\n%s", out.String())
	}
	out.Reset()
	if err := run([]string{"check", path, "--json"}, &out, &errOut); err != nil {
		t.Fatalf("floe check: %v\n%s", err, out.String())
	}
	var res struct {
		Valid        bool `json:"valid"`
		Operations   int  `json:"operations"`
		Acknowledged int  `json:"acknowledged"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Valid || res.Acknowledged == 0 || res.Operations == 0 {
		t.Fatalf("check --json: %v %+v\n%s", err, res, out.String())
	}
}

// TestCheckFails: a history with a lost write fails floe check, which
// names the lines that prove it.
func TestCheckFails(t *testing.T) {
	lines := []string{
		`{"type":"invoke","f":"send","process":1,"records":[{"topic":"t","partition":0,"offset":-1,"value":"p1-0"}]}`,
		`{"type":"ok","f":"send","process":1,"records":[{"topic":"t","partition":0,"offset":0,"value":"p1-0"}]}`,
		`{"type":"invoke","f":"drain","process":9}`,
		`{"type":"ok","f":"drain","process":9}`,
	}
	path := filepath.Join(t.TempDir(), "lost.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run([]string{"check", path, "--lines"}, &out, &errOut)
	if !errors.Is(err, errAnomalies) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out.String(), "lost-write t/0@0 p1-0") || !strings.Contains(out.String(), "lines [1 2 3 4]") ||
		!strings.Contains(out.String(), "     2  "+lines[1]) {
		t.Errorf("output:\n%s", out.String())
	}
}
