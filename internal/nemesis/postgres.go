package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Postgres is a throwaway PostgreSQL server of the nemesis's own, on a
// free loopback port, with fsync off but synchronous commit on, which it may stop, start and pause without disturbing anything
// else: the binaries of Debian's postgresql package.
type Postgres struct {
	bin  string
	dir  string
	data string
	Port int
	cred *syscall.Credential
	// paused are the processes Pause stopped.
	paused []int
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

// Start starts the server and waits until it accepts connections.
func (s *Postgres) Start(ctx context.Context) error {
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1", "-p " + strconv.Itoa(s.Port), "-k " + s.data,
		// fsync off: the nemesis kills the server's processes, never the
		// machine, and what was written reaches the disk from the page
		// cache. Synchronous commit stays on: without it a commit is
		// acknowledged before its WAL is written, and an immediate stop
		// loses acknowledged commits (floe torture, seed 3, found
		// exactly that: docs/correctness.md).
		"-c fsync=off", "-c full_page_writes=off", "-c max_connections=200",
	}, " ")
	if out, err := s.run(ctx, "pg_ctl", "-D", s.data, "-l", filepath.Join(s.data, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.data, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(string(log), 20))
	}
	return nil
}

// Stop stops the server in mode (fast: abort transactions and close
// connections, as an operator restarting it; immediate: as a crash).
func (s *Postgres) Stop(ctx context.Context, mode string) error {
	s.Resume()
	if out, err := s.run(ctx, "pg_ctl", "-D", s.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Pause SIGSTOPs the postmaster and every process it started (the
// backends serving connections among them): connections stay open and
// nothing answers.
func (s *Postgres) Pause() error {
	pid, err := s.postmaster()
	if err != nil {
		return err
	}
	pids := append([]int{pid}, children(pid)...)
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err == nil {
			s.paused = append(s.paused, p)
		}
	}
	return nil
}

// Resume SIGCONTs what Pause stopped.
func (s *Postgres) Resume() error {
	for _, p := range s.paused {
		syscall.Kill(p, syscall.SIGCONT)
	}
	s.paused = nil
	return nil
}

// Remove stops the server (immediate) and deletes its directory.
func (s *Postgres) Remove() {
	if s.data != "" {
		s.Resume()
		s.run(context.Background(), "pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop")
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func (s *Postgres) postmaster() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
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

// DBRestart is the fault that stops the server in mode ("immediate", as
// a crash, or "fast") and starts it again on Heal.
func DBRestart(s *Postgres, mode string) Fault {
	return New("db-restart", "postgres",
		func(ctx context.Context) error { return s.Stop(ctx, mode) },
		func(ctx context.Context) error {
			if _, err := s.postmaster(); err == nil {
				return nil // running
			}
			return s.Start(ctx)
		})
}

// DBPause is the fault that SIGSTOPs the server's processes and SIGCONTs
// them on Heal.
func DBPause(s *Postgres) Fault {
	return New("db-pause", "postgres",
		func(context.Context) error { return s.Pause() },
		func(context.Context) error { return s.Resume() })
}
