package nemesis

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procState is the state letter of pid in /proc (R, S, T, Z…), or ""
// if there is no such process.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+3 > len(b) {
		return ""
	}
	return string(b[i+2 : i+3])
}

// gone reports whether pid no longer runs (no process, or a zombie).
func gone(pid int) bool {
	s := procState(pid)
	return s == "" || s == "Z" || s == "X"
}

func waitGone(t *testing.T, what string, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs after %v (state %s)", what, pid, within, procState(pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func requirePostgres(t *testing.T) {
	t.Helper()
	if PostgresBin() == "" {
		if os.Getenv("FLOE_REQUIRE_SERVICES") == "1" {
			t.Fatal("no PostgreSQL server binaries (scripts/services postgres installs them)")
		}
		t.Skip("no PostgreSQL server binaries (scripts/services postgres installs them)")
	}
}

// TestPostgresLifecycle: the server pauses (its processes stopped) and
// resumes, stops as in a crash and starts again, and Remove leaves
// nothing running.
func TestPostgresLifecycle(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := NewPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove()
	pid, err := s.postmaster()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	// Signals are delivered asynchronously: wait for the state.
	waitState := func(want func(string) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for st := procState(pid); !want(st); st = procState(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: postmaster in state %q", what, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitState(func(st string) bool { return st == "T" }, "paused")
	s.Resume()
	waitState(func(st string) bool { return st != "T" }, "resumed")
	if err := s.Stop(ctx, "immediate"); err != nil {
		t.Fatal(err)
	}
	if s.Running() || !gone(pid) {
		t.Fatalf("postgres runs after an immediate stop")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid, _ = s.postmaster()
	s.Pause() // Remove resumes and stops a paused server too
	s.Remove()
	waitGone(t, "postmaster", pid, 10*time.Second)
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("Remove left %s", s.dir)
	}
}

// TestChildrenDieWithTheirParent: a process that started an agent-like
// child and PostgreSQL, and paused both, is SIGKILLed; the children die
// with it, PostgreSQL's own children included (the guard continues
// them, and they exit when they find the postmaster gone).
func TestChildrenDieWithTheirParent(t *testing.T) {
	if os.Getenv("FLOE_NEMESIS_HELPER") == "1" {
		helper()
		return
	}
	withPG := PostgresBin() != ""
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildrenDieWithTheirParent$")
	cmd.Env = append(os.Environ(), "FLOE_NEMESIS_HELPER=1", "FLOE_NEMESIS_HELPER_PG="+strconv.FormatBool(withPG))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var pids []int
	var dir string
	sc := bufio.NewScanner(out)
	ready := make(chan error, 1)
	go func() {
		for sc.Scan() {
			line := sc.Text()
			if d, ok := strings.CutPrefix(line, "dir "); ok {
				dir = d
			}
			if p, ok := strings.CutPrefix(line, "pid "); ok {
				n, _ := strconv.Atoi(p)
				pids = append(pids, n)
			}
			if line == "ready" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("the helper ended before it was ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the helper was not ready after 90s")
	}
	if dir != "" {
		// What SIGKILL leaves behind (documented).
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	if len(pids) == 0 {
		t.Fatal("the helper named no children")
	}
	t.Logf("the helper started %d processes: %v", len(pids), pids)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for _, pid := range pids {
		waitGone(t, "a child of the killed helper", pid, 20*time.Second)
	}
}

// helper starts a paused child and, if it can, a paused PostgreSQL
// server, prints their pids (the server's with its backends'), "ready",
// and waits to be killed.
func helper() {
	ctx := context.Background()
	p := &Proc{Name: "sleeper", Path: "/bin/sleep", Args: []string{"300"}}
	if err := p.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p.Pause()
	fmt.Println("pid", p.Pid())
	if os.Getenv("FLOE_NEMESIS_HELPER_PG") == "true" {
		s, err := NewPostgres(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("dir", s.dir)
		pid, _ := s.postmaster()
		fmt.Println("pid", pid)
		for _, c := range children(pid) {
			fmt.Println("pid", c)
		}
		s.Pause()
	}
	fmt.Println("ready")
	time.Sleep(5 * time.Minute)
	os.Exit(1)
}
