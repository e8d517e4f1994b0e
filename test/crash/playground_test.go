package crash

// The playground subprocess: start, SIGKILL, SIGTERM, and its output.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil"
)

// playground is one running `floe playground` process.
type playground struct {
	t      *testing.T
	name   string
	port   int
	addr   string
	sec    *testutil.SecureKafka // nil: PLAINTEXT; else SASL_SSL and ACLs
	cmd    *exec.Cmd
	stdout *lineBuffer
	stderr *lineBuffer
	exited chan struct{} // closed when Wait returned
	state  *os.ProcessState
}

var errAddrInUse = errors.New("address in use")

// startFresh starts a playground on a free port, trying another port if the
// chosen one was taken in between. With sec, it listens for SASL_SSL only
// and authorizes with ACLs.
func startFresh(t *testing.T, dataDir string, sec *testutil.SecureKafka, name string) *playground {
	t.Helper()
	var last error
	for range 5 {
		pg, err := startPlayground(t, dataDir, sec, freePort(t), name)
		if err == nil {
			return pg
		}
		last = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("start playground %s: %v", name, last)
	return nil
}

// restart starts a playground like prev on the port prev used, so the
// producers of the killed round reconnect to it and retry what they had in
// flight.
func restart(t *testing.T, dataDir string, prev *playground, name string) *playground {
	t.Helper()
	port := prev.port
	var last error
	for range 10 {
		pg, err := startPlayground(t, dataDir, prev.sec, port, name)
		if err == nil {
			return pg
		}
		last = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("restart playground %s on port %d: %v", name, port, last)
	return nil
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

var bootstrapLine = regexp.MustCompile(`bootstrap server:\s+(\S+)\n`)

func startPlayground(t *testing.T, dataDir string, sec *testutil.SecureKafka, port int, name string) (*playground, error) {
	t.Helper()
	pg := &playground{
		t: t, name: name, port: port, sec: sec,
		stdout: &lineBuffer{}, stderr: &lineBuffer{},
		exited: make(chan struct{}),
	}
	args := []string{"playground",
		"--admin-listen", "127.0.0.1:0",
		"--data-dir", dataDir,
		"--linger", "50ms",
		"--log-level", "debug",
	}
	hostPort := "127.0.0.1:" + strconv.Itoa(port)
	if sec != nil {
		args = append(args, sec.AgentArgs(hostPort)...)
	} else {
		args = append(args, "--listen", hostPort)
	}
	pg.cmd = exec.Command(floeBin, args...)
	pg.cmd.Stdout, pg.cmd.Stderr = pg.stdout, pg.stderr
	if err := pg.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		pg.cmd.Wait()
		pg.state = pg.cmd.ProcessState
		close(pg.exited)
	}()
	t.Cleanup(func() {
		pg.cmd.Process.Kill()
		<-pg.exited
		if t.Failed() || verbose() {
			t.Logf("playground %s (pid %d) stderr:\n%s", pg.name, pg.cmd.Process.Pid, pg.stderr.String())
		}
	})

	deadline := time.After(15 * time.Second)
	for {
		if m := bootstrapLine.FindStringSubmatch(pg.stdout.String()); m != nil {
			pg.addr = m[1]
			return pg, nil
		}
		select {
		case <-pg.exited:
			if strings.Contains(pg.stderr.String(), "address already in use") {
				return nil, fmt.Errorf("%w: port %d", errAddrInUse, port)
			}
			return nil, fmt.Errorf("exited before serving (%v); stderr:\n%s", pg.state, pg.stderr.String())
		case <-deadline:
			return nil, fmt.Errorf("no bootstrap address after 15s; stderr:\n%s", pg.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The users of a secure playground: the super user creates the topics
// and grants the others what they need; the producers may only write, and
// the log is read back as a user who may only read.
const (
	adminUser    = "admin"
	producerUser = "producer"
	consumerUser = "consumer"
)

// newSecurity makes the CA, certificate and users of a secure playground
// and sets the users in dataDir's metadata store, before it first starts.
func newSecurity(t *testing.T, dataDir string) *testutil.SecureKafka {
	t.Helper()
	sec := testutil.NewSecureKafka(t, adminUser, producerUser, consumerUser)
	sec.CreateUsers(t, floeBin, "--data-dir", dataDir)
	return sec
}

// clientOpts are the options of a franz-go client of pg as user: its
// address, and SCRAM-SHA-512 over TLS if pg is secure (user is ignored
// otherwise).
func (pg *playground) clientOpts(user string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(pg.addr)}
	if pg.sec != nil {
		opts = append(opts, pg.sec.KgoOpts(pg.t, user)...)
	}
	return opts
}

// kill sends SIGKILL and waits for the process to be gone.
func (pg *playground) kill() error {
	if err := pg.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill playground %s: %w", pg.name, err)
	}
	select {
	case <-pg.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("playground %s still running 10s after SIGKILL", pg.name)
	}
}

// stopGracefully sends SIGTERM; the agent must drain and exit 0 within 10 s.
func (pg *playground) stopGracefully(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := pg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM playground %s: %v", pg.name, err)
	}
	select {
	case <-pg.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("playground %s did not exit within 10s of SIGTERM (drain hangs)", pg.name)
	}
	took := time.Since(start)
	if code := pg.state.ExitCode(); code != 0 {
		t.Fatalf("playground %s exited with %v after SIGTERM, want 0", pg.name, pg.state)
	}
	t.Logf("playground %s drained and exited 0 in %v", pg.name, took.Round(time.Millisecond))
}

// killAfterCommit arms a SIGKILL for the moment the metadata store logs
// its next segment commit: the batches are committed but their producers
// are, most likely, not answered yet, so their retries after the restart
// must be recognised as duplicates. Without a commit within 2 s it kills
// anyway.
func (pg *playground) killAfterCommit() error {
	fired := make(chan struct{})
	pg.stderr.onNext(metastoreCommitLog, func() {
		pg.cmd.Process.Kill()
		close(fired)
	})
	select {
	case <-fired:
	case <-time.After(2 * time.Second):
		pg.t.Logf("playground %s: no commit within 2s of arming the kill; killing it now", pg.name)
	}
	return pg.kill()
}

// metastoreCommitLog is in the embedded store's debug line for a commit,
// logged as soon as the transaction is durable, before any reply.
const metastoreCommitLog = " extents="

// lineBuffer collects a subprocess's output; safe for the copying
// goroutine and readers. It can run a function when a string next appears.
type lineBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger []byte
	fire    func()
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fire != nil && bytes.Contains(p, b.trigger) {
		b.fire()
		b.fire = nil
	}
	return b.buf.Write(p)
}

// onNext calls fire, once, from the Write that next contains trigger.
func (b *lineBuffer) onNext(trigger string, fire func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trigger, b.fire = []byte(trigger), fire
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
