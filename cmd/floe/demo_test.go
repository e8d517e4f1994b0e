package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestMain lets tests run this test binary as the floe command (see
// floeCommand), so that they can give it a terminal or a pipe.
func TestMain(m *testing.M) {
	if os.Getenv("FLOE_TEST_AS_COMMAND") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// floeCommand is `floe args...` run from this test binary.
func floeCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FLOE_TEST_AS_COMMAND=1")
	return cmd
}

var demoArgs = []string{"demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--rate", "100",
	"--refresh", "200ms", "--linger", "50ms", "--group-initial-rebalance-delay", "0"}

// waitFor polls out until match finds something or 60 s pass.
func waitFor(t *testing.T, out *lockedBuffer, what string, match func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !match(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 60s; output:\n%q", what, tail(out.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitExit waits up to 30 s for cmd to exit and checks it exited 0.
func waitExit(t *testing.T, cmd *exec.Cmd, out *lockedBuffer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("floe demo exited with %v; output:\n%q", err, tail(out.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("floe demo did not stop within 30s of the signal; output:\n%q", tail(out.String(), 3000))
	}
}

var (
	liveOut   = regexp.MustCompile(`records out\s+([0-9.]+)/s\s+(\d+)`)
	liveE2E   = regexp.MustCompile(`end-to-end\s+p50\s+(\d+)ms`)
	liveCost  = regexp.MustCompile(`bucket PUTs\s+([0-9.]+)/s\s+\$\s*([0-9.]+)/month`)
	plainLine = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d in=([0-9.]+)/s out=([0-9.]+)/s produce_p50=(\S+) produce_p99=(\S+) e2e_p50=(\S+) e2e_p99=(\S+) puts=([0-9.]+)/s \(\$([0-9.]+)/month\) gets=([0-9.]+)/s \(\$([0-9.]+)/month\) lag=(\d+|unknown)$`)
	stopped   = regexp.MustCompile(`stopped after \S+: (\d+) records produced, (\d+) consumed`)
)

// TestDemoTerminal: under a terminal, floe demo redraws one view in place
// with records flowing in and out, latencies and bucket costs, and stops
// cleanly on SIGINT (Ctrl-C).
func TestDemoTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a demo for several seconds")
	}
	cmd := floeCommand(t, demoArgs...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := &lockedBuffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	waitFor(t, out, "records consumed", func(s string) bool {
		for _, m := range liveOut.FindAllStringSubmatch(s, -1) {
			if n, _ := strconv.Atoi(m[2]); n > 0 {
				return true
			}
		}
		return false
	})
	waitFor(t, out, "end-to-end latency and a PUT cost", func(s string) bool {
		costs := liveCost.FindAllString(s, -1)
		return strings.Count(s, "\x1b[H") >= 3 && liveE2E.MatchString(s) && len(costs) > 0 && !strings.Contains(costs[len(costs)-1], "$     0.00")
	})
	s := out.String()
	if n := strings.Count(s, "\x1b[H"); n < 3 {
		t.Errorf("the view was drawn in place %d times, want several (cursor home)", n)
	}
	if strings.Contains(s, "in=") {
		t.Error("plain lines on a terminal")
	}
	for _, want := range []string{"bootstrap   127.0.0.1:", "console     http://127.0.0.1:", "demo-orders, demo-clicks, demo-payments", "consumer lag", "bucket GETs"} {
		if !strings.Contains(s, want) {
			t.Errorf("the view lacks %q", want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, out)
	m := stopped.FindStringSubmatch(out.String())
	if m == nil || m[2] == "0" {
		t.Errorf("no clean stop with records consumed:\n%q", tail(out.String(), 500))
	}
	if !strings.Contains(out.String(), "\x1b[?25h") {
		t.Error("the cursor is not shown again at exit")
	}
}

// TestDemoPipe: with stdout a pipe, floe demo prints one plain line per
// refresh, without terminal codes, and stops cleanly on SIGTERM.
func TestDemoPipe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a demo for several seconds")
	}
	cmd := floeCommand(t, demoArgs...)
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "a plain line with records in and out", func(s string) bool {
		for _, m := range plainLine.FindAllStringSubmatch(s, -1) {
			in, _ := strconv.ParseFloat(m[1], 64)
			outRate, _ := strconv.ParseFloat(m[2], 64)
			if in > 0 && outRate > 0 && m[5] != "-" {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, out)
	s := out.String()
	if strings.Contains(s, "\x1b") {
		t.Errorf("terminal codes in plain output:\n%q", tail(s, 500))
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if !strings.HasPrefix(lines[0], "floe demo: bootstrap 127.0.0.1:") {
		t.Errorf("first line %q", lines[0])
	}
	m := stopped.FindStringSubmatch(lines[len(lines)-1])
	if m == nil || m[2] == "0" {
		t.Errorf("last line %q: want a clean stop with records consumed", lines[len(lines)-1])
	}
	if strings.Contains(errOut.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", errOut.String())
	}
	t.Logf("last lines:\n%s", strings.Join(lines[max(len(lines)-4, 0):], "\n"))
}
