package cluster

// `floe agent` subprocesses: start, SIGKILL, SIGTERM, logs and metrics.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/nemesis"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// agentOpts are the flags of one agent beyond its bucket and database.
type agentOpts struct {
	zone     string
	linger   time.Duration // default 50ms
	endpoint string        // S3 endpoint; default the server's own
	extra    []string      // more flags
}

// agentProc is one running `floe agent` process.
type agentProc struct {
	name   string
	addr   string // Kafka listener
	admin  string // /metrics, /healthz
	nodeID int32
	cmd    *exec.Cmd
	stderr *nemesis.OutputBuffer
	exited chan struct{} // closed when the process is gone
	state  *os.ProcessState
}

var listeningLine = regexp.MustCompile(`msg="agent listening" kafka=(\S+) .*admin=(\S+) node_id=(-?\d+)`)

// startAgent starts an agent on loopback ports chosen by the system and
// waits until it serves. It is SIGKILLed when the test ends if still running.
func startAgent(t *testing.T, e *env, name string, o agentOpts) *agentProc {
	t.Helper()
	args := agentArgs(e, o)
	a := &agentProc{name: name, stderr: &nemesis.OutputBuffer{}, exited: make(chan struct{})}
	a.cmd = exec.Command(floeBin, args...)
	a.cmd.Env = append(os.Environ(), e.s3.Env()...)
	a.cmd.Stdout, a.cmd.Stderr = a.stderr, a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start agent %s: %v", name, err)
	}
	go func() {
		a.cmd.Wait()
		a.state = a.cmd.ProcessState
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.exited
		if t.Failed() || verbose() {
			t.Logf("agent %s (pid %d, node %d, %s) log:\n%s", a.name, a.cmd.Process.Pid, a.nodeID, a.addr, a.stderr.Tail(120))
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(a.stderr.String()); m != nil {
			a.addr, a.admin = m[1], m[2]
			id, _ := strconv.Atoi(m[3])
			a.nodeID = int32(id)
			t.Logf("agent %s: node %d on %s (admin %s), pid %d", name, a.nodeID, a.addr, a.admin, a.cmd.Process.Pid)
			return a
		}
		select {
		case <-a.exited:
			t.Fatalf("agent %s exited before serving (%v):\n%s", name, a.state, a.stderr.String())
		case <-deadline:
			t.Fatalf("agent %s not serving after 20s:\n%s", name, a.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agentArgs are the arguments of `floe agent` on e with o.
func agentArgs(e *env, o agentOpts) []string {
	if o.linger == 0 {
		o.linger = 50 * time.Millisecond
	}
	args := []string{"agent",
		"--bucket", e.bucketURL(o.endpoint),
		"--metastore", e.dbURL,
		"--admin-listen", "127.0.0.1:0",
		"--linger", o.linger.String(),
		"--zone", o.zone,
		"--log-level", "info",
	}
	if e.sec != nil {
		args = append(args, e.sec.AgentArgs("127.0.0.1:0")...)
	} else {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	return append(args, o.extra...)
}

// kill sends SIGKILL and waits until the process is gone.
func (a *agentProc) kill(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill agent %s: %v", a.name, err)
	}
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("agent %s still running 10s after SIGKILL", a.name)
	}
}

// stop sends SIGTERM; the agent must drain and exit 0 within 15 s.
func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM agent %s: %v", a.name, err)
	}
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("agent %s did not exit within 15s of SIGTERM", a.name)
	}
	if code := a.state.ExitCode(); code != 0 {
		t.Fatalf("agent %s exited with %v after SIGTERM, want 0", a.name, a.state)
	}
}

// metrics scrapes the agent's /metrics.
func (a *agentProc) metrics() (promText, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", a.admin, resp.Status)
	}
	return parseProm(resp.Body)
}

// sumMetric adds a metric (all series whose labels include the given
// ones) over agents.
func sumMetric(t *testing.T, agents []*agentProc, name string, labels ...string) float64 {
	t.Helper()
	total := 0.0
	for _, a := range agents {
		m, err := a.metrics()
		if err != nil {
			t.Fatalf("metrics of agent %s: %v", a.name, err)
		}
		total += m.sum(name, labels...)
	}
	return total
}

// promText is a scraped /metrics page: one sample per line.
type promText []promSample

type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseProm reads the Prometheus text format, enough of it for counters
// and histogram counts.
func parseProm(r io.Reader) (promText, error) {
	var out promText
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s promSample
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("bad metrics line %q", line)
			}
			s.name, rest = line[:i], strings.TrimSpace(line[j+1:])
			s.labels = map[string]string{}
			for _, kv := range splitLabels(line[i+1 : j]) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("bad label %q in %q", kv, line)
				}
				uq, err := strconv.Unquote(v)
				if err != nil {
					return nil, fmt.Errorf("bad label value %q in %q", v, line)
				}
				s.labels[k] = uq
			}
		} else {
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("bad metrics line %q", line)
			}
			s.name, rest = name, value
		}
		if f := strings.Fields(rest); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value in %q", line)
			}
			s.value = v
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// sum adds the samples of name whose labels include labels (pairs of
// name, value).
func (p promText) sum(name string, labels ...string) float64 {
	total := 0.0
next:
	for _, s := range p {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// waitForView waits until every agent's Metadata, asked by c, lists
// exactly the given agents, so that block owners and partition leaders
// agree everywhere.
func waitForView(t *testing.T, c client, agents []*agentProc, timeout time.Duration) {
	t.Helper()
	want := map[int32]bool{}
	for _, a := range agents {
		want[a.nodeID] = true
	}
	deadline := time.Now().Add(timeout)
	for _, a := range agents {
		for {
			got, err := brokersOf(t, c, a.addr)
			if err == nil && sameSet(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent %s lists brokers %v (err %v), want %v", a.name, got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func brokersOf(t *testing.T, c client, addr string) ([]int32, error) {
	cl := c.newClient(t, []string{addr})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The seed broker answers; which one does not matter, there is one.
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, b := range resp.Brokers {
		ids = append(ids, b.NodeID)
	}
	return ids, nil
}

func sameSet(got []int32, want map[int32]bool) bool {
	if len(got) != len(want) {
		return false
	}
	for _, id := range got {
		if !want[id] {
			return false
		}
	}
	return true
}

func addrs(agents []*agentProc) []string {
	out := make([]string, len(agents))
	for i, a := range agents {
		out[i] = a.addr
	}
	return out
}
