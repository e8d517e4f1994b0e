package cluster

// Agents that the nemesis SIGKILLs and starts again: each listens on a
// fixed loopback port, so that the process started after a kill listens
// where the killed one did and clients' bootstrap addresses stay good.
// The new process registers with a new node id; the killed one's keys
// (groups, transactional ids, partitions) stay with its old id until its
// membership lease expires (5 s), as after any crash.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/nemesis"
)

// fixedAgent is a restartable `floe agent`.
type fixedAgent struct {
	*nemesis.Proc
	addr string
	// log holds the output of every process the agent has been.
	log *nemesis.OutputBuffer
	// gone holds the metrics each killed process showed just before its
	// SIGKILL (its counters died with it); nemesis goroutine, then the
	// test's once the nemesis stopped.
	gone []promText
}

// startFixedAgents starts n agents on e, each on a free loopback port
// that it keeps across restarts, and waits until they serve. They are
// SIGKILLed when the test ends.
func startFixedAgents(t *testing.T, e *env, n int, extra ...string) []*fixedAgent {
	t.Helper()
	var agents []*fixedAgent
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		a := &fixedAgent{addr: addr, log: &nemesis.OutputBuffer{}}
		a.Proc = &nemesis.Proc{
			Name: fmt.Sprintf("a%d", i),
			Path: floeBin,
			Args: append([]string{"agent",
				"--bucket", e.bucketURL(""),
				"--metastore", e.dbURL,
				"--listen", addr,
				"--admin-listen", "127.0.0.1:0",
				"--linger", "50ms",
				"--log-level", "info",
			}, extra...),
			Env:    e.s3.Env(),
			Ready:  func(out string) bool { return listeningLine.MatchString(out) },
			Output: a.log,
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			a.Kill()
			if t.Failed() || verbose() {
				t.Logf("agent %s (%s) log, every process it has been:\n%s", a.Name, a.addr, a.log.Tail(150))
			}
		})
		agents = append(agents, a)
	}
	return agents
}

// nodeID is the node id the running process registered with, or -1.
func (a *fixedAgent) nodeID() int32 {
	m := listeningLine.FindStringSubmatch(a.OutputText())
	if m == nil {
		return -1
	}
	id, _ := strconv.Atoi(m[3])
	return int32(id)
}

// metrics scrapes the /metrics of the process the agent is now.
func (a *fixedAgent) metrics() (promText, error) {
	m := listeningLine.FindStringSubmatch(a.OutputText())
	if m == nil {
		return nil, fmt.Errorf("agent %s is not listening", a.Name)
	}
	return (&agentProc{name: a.Name, admin: m[2]}).metrics()
}

// restart SIGKILLs the agent and starts it again on its port.
func (a *fixedAgent) restart(t *testing.T) {
	t.Helper()
	f := a.killFault()
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func fixedAddrs(agents []*fixedAgent) []string {
	out := make([]string, len(agents))
	for i, a := range agents {
		out[i] = a.addr
	}
	return out
}

// agentByNode returns the agent whose running process has node id id.
func agentByNode(agents []*fixedAgent, id int32) *fixedAgent {
	for _, a := range agents {
		if a.Running() && a.nodeID() == id {
			return a
		}
	}
	return nil
}

// killFault is the nemesis's fault that SIGKILLs the agent and, on Heal,
// starts it again on its port.
func (a *fixedAgent) killFault() nemesis.Fault {
	return nemesis.New("kill", a.Name,
		func(context.Context) error {
			if m, err := a.metrics(); err == nil {
				a.gone = append(a.gone, m)
			}
			err := a.Kill()
			fmt.Fprintf(a.log, "--- %s: SIGKILL ---\n", time.Now().Format("15:04:05.000"))
			return err
		},
		func(ctx context.Context) error {
			if a.Running() {
				return nil
			}
			return a.Start(ctx)
		})
}
