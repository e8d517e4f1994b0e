package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Postgres is a throwaway PostgreSQL server of the nemesis's own, on a
// free loopback port, with fsync off but synchronous commit on, which it
// may stop, start and pause without disturbing anything else: the
// binaries of Debian's postgresql package. The postmaster is a child of
// this process (not daemonised by pg_ctl), so that it dies with it
// (Pdeathsig), and its backends with it.
type Postgres struct {
	bin  string
	dir  string
	data string
	Port int
	cred *syscall.Credential

	mu sync.Mutex
	// cmd is the running postmaster; exited closes when it exits.
	cmd    *exec.Cmd
	exited chan struct{}
	// paused are the processes Pause stopped.
	paused []int
	// guard is the pipe to the guard process (startGuard).
	guard io.Closer
}

// PostgresBin returns the newest /usr/lib/postgresql/*/bin, or "".
func PostgresBin() string {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) < pgVersion(bins[j]) })
	if len(bins) == 0 {
		return ""
	}
	return bins[len(bins)-1]
}

func pgVersion(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// NewPostgres runs initdb in a new temporary directory and starts the
// server. Remove stops it and deletes the directory.
func NewPostgres(ctx context.Context) (*Postgres, error) {
	s := &Postgres{bin: PostgresBin()}
	if s.bin == "" {
		return nil, errors.New("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql; scripts/services postgres installs it)")
	}
	dir, err := os.MkdirTemp("", "floe-nemesis-pg-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		s.Remove()
		return nil, err
	}
	if err := s.startGuard(); err != nil {
		s.Remove()
		return nil, err
	}
	s.data = filepath.Join(dir, "data")
	if err := os.Mkdir(s.data, 0o700); err != nil {
		s.Remove()
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			s.Remove()
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.data, uid, gid); err != nil {
			s.Remove()
			return nil, err
		}
	}
	if out, err := s.run(ctx, "initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		s.Remove()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Remove()
		return nil, err
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := s.Start(ctx); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

// URL is the server's postgres database.
func (s *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

func (s *Postgres) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, tool), args...)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Start starts the server and waits (at most 60s, crash recovery
// included) until it accepts connections.
func (s *Postgres) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.runningLocked() {
		s.mu.Unlock()
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(s.Port), "-k", s.data,
		// fsync off: the nemesis kills the server's processes, never the
		// machine, and what was written reaches the disk from the page
		// cache. Synchronous commit stays on: without it a commit is
		// acknowledged before its WAL is written, and an immediate stop
		// loses acknowledged commits (floe torture, seed 3, found
		// exactly that: docs/correctness.md).
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	cmd.SysProcAttr.Credential = s.cred
	err = cmd.Start()
	logf.Close()
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for !s.ready(cmd.Process.Pid) {
		select {
		case <-exited:
			return fmt.Errorf("postgres exited while starting (%v):\n%s", cmd.ProcessState, s.logTail())
		case <-deadline.C:
			return fmt.Errorf("postgres not ready after 60s:\n%s", s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// ready reports whether the postmaster pid says, in postmaster.pid,
// that it accepts connections (as pg_ctl -w checks).
func (s *Postgres) ready(pid int) bool {
	b, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	// Line 1 is the pid, line 8 the status (PM_STATUS_READY "ready").
	return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) && strings.TrimSpace(lines[7]) == "ready"
}

func (s *Postgres) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	return tail(string(b), 20)
}

func (s *Postgres) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Running reports whether the postmaster runs.
func (s *Postgres) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

// Stop stops the server in mode (smart, fast: abort transactions and
// close connections, as an operator restarting it; immediate: every
// process quits at once, as in a crash) and waits (at most 60s, then
// SIGKILL) until the postmaster is gone.
func (s *Postgres) Stop(ctx context.Context, mode string) error {
	sig, ok := map[string]syscall.Signal{"smart": syscall.SIGTERM, "fast": syscall.SIGINT, "immediate": syscall.SIGQUIT}[mode]
	if !ok {
		return fmt.Errorf("postgres stop: unknown mode %q", mode)
	}
	s.Resume()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	running := s.runningLocked()
	s.mu.Unlock()
	if !running {
		return nil
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
	case <-time.After(60 * time.Second):
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("postgres stop -m %s: not stopped in time, killed", mode)
}

// Pause SIGSTOPs the postmaster and every process it started (the
// backends serving connections among them; each is in a session of its
// own, so they are found by their parent): connections stay open and
// nothing answers. The pids are written to the guard's file first.
func (s *Postgres) Pause() error {
	pid, err := s.postmaster()
	if err != nil {
		return err
	}
	pids := append([]int{pid}, children(pid)...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = append(s.paused, pids...)
	s.writePausedLocked()
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	return nil
}

// Resume SIGCONTs what Pause stopped.
func (s *Postgres) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.paused {
		syscall.Kill(p, syscall.SIGCONT)
	}
	s.paused = nil
	s.writePausedLocked()
	return nil
}

// writePausedLocked writes the paused pids to the file the guard reads.
func (s *Postgres) writePausedLocked() {
	var b strings.Builder
	for _, p := range s.paused {
		fmt.Fprintln(&b, p)
	}
	os.WriteFile(filepath.Join(s.dir, "paused"), []byte(b.String()), 0o644)
}

// startGuard starts the guard: a shell that waits for the end of a pipe
// only this process holds, then SIGCONTs the pids listed in the paused
// file. When this process dies, even by SIGKILL, its end closes: the
// postmaster dies of its Pdeathsig, and the backends a db-pause stopped
// would stay stopped (a stopped process acts on no signal but SIGKILL,
// and PostgreSQL's backends learn of the postmaster's death by a signal)
// if the guard did not continue them, after which they exit.
func (s *Postgres) startGuard() error {
	cmd := exec.Command("/bin/sh", "-c", `read _; [ -s "$1" ] && xargs -r kill -CONT < "$1"; exit 0`, "guard", filepath.Join(s.dir, "paused"))
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	// Its own process group: a terminal's ^C must not end it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the postgres guard: %w", err)
	}
	go cmd.Wait()
	s.guard = w
	return nil
}

// Remove stops the server (immediate) and deletes its directory.
func (s *Postgres) Remove() {
	if s.data != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.Stop(ctx, "immediate")
		cancel()
	}
	if s.guard != nil {
		s.guard.Close() // the guard finds nothing paused and exits
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func (s *Postgres) postmaster() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return 0, errors.New("postgres is not running")
	}
	return s.cmd.Process.Pid, nil
}

// DBRestart is the fault that stops the server in mode ("immediate", as
// a crash, or "fast") and starts it again on Heal.
func DBRestart(s *Postgres, mode string) Fault {
	return New("db-restart", "postgres",
		func(ctx context.Context) error { return s.Stop(ctx, mode) },
		func(ctx context.Context) error { return s.Start(ctx) })
}

// DBPause is the fault that SIGSTOPs the server's processes and SIGCONTs
// them on Heal.
func DBPause(s *Postgres) Fault {
	return New("db-pause", "postgres",
		func(context.Context) error { return s.Pause() },
		func(context.Context) error { return s.Resume() })
}

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at
		// the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
