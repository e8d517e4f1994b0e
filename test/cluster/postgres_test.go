package cluster

// A PostgreSQL server of the test's own, which it may stop and start
// without disturbing other tests that share the one of scripts/services.

import (
	"bytes"
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
	"testing"
	"time"
)

// pgServer is a throwaway PostgreSQL cluster in a temporary directory,
// on a free loopback port, durability off.
type pgServer struct {
	bin  string // the server's bin directory
	data string
	port int
	cred *syscall.Credential // run as this user (root may not run the server)
}

// startPostgres runs initdb and starts the server with the binaries of
// Debian's postgresql package (the ones scripts/services uses).
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) < pgVersion(bins[j]) })
	if len(bins) == 0 {
		if os.Getenv("FLOE_REQUIRE_SERVICES") == "1" {
			t.Fatal("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql) and FLOE_REQUIRE_SERVICES=1")
		}
		t.Skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql)")
	}
	s := &pgServer{bin: bins[len(bins)-1]}
	dir, err := os.MkdirTemp("", "floe-cluster-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.data = filepath.Join(dir, "data")
	if err := os.Mkdir(s.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and PostgreSQL refuses to: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.run("initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s.port = freePort(t)
	s.start(t)
	t.Cleanup(func() { s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop") })
	return s
}

func pgVersion(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func (s *pgServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

func (s *pgServer) run(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, tool), args...)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.Dir = filepath.Dir(s.data)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// start starts the server and waits until it accepts connections.
func (s *pgServer) start(t *testing.T) {
	t.Helper()
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1", "-p " + strconv.Itoa(s.port), "-k " + s.data,
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
	}, " ")
	if out, err := s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.data, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.data, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop shuts the server down the way an operator restarting it would:
// fast mode aborts open transactions and closes every connection.
func (s *pgServer) stop(t *testing.T) {
	t.Helper()
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitUntil polls cond every 50ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
