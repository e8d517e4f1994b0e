package cluster

// Agents on `floe control` (docs/control-plane.md): the metadata store of
// a virtual cluster served over TCP by a control process whose journal is
// in PostgreSQL, with the bucket on S3.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/nemesis"
)

var controlListening = regexp.MustCompile(`msg="control plane listening" listen=(\S+) admin=(\S+)`)

// controlProc is a `floe control` process on fixed loopback ports, so
// that a process started after a kill listens where the killed one did.
type controlProc struct {
	*nemesis.Proc
	listen, admin string
	log           *nemesis.OutputBuffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startControl starts a `floe control` process on e's database, with
// extra flags (say --lease-ttl) after the test's own.
func startControl(t *testing.T, e *env, extra ...string) *controlProc {
	t.Helper()
	c := &controlProc{listen: freeAddr(t), admin: freeAddr(t), log: &nemesis.OutputBuffer{}}
	c.Proc = &nemesis.Proc{
		Name: "control",
		Path: floeBin,
		Args: append([]string{"control",
			"--journal", e.pgURL,
			"--listen", c.listen,
			"--admin-listen", c.admin,
			"--log-level", "info",
		}, extra...),
		Env:    e.s3.Env(), // for --bucket
		Ready:  func(out string) bool { return controlListening.MatchString(out) },
		Output: c.log,
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start control: %v\n%s", err, c.log.Tail(50))
	}
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() || verbose() {
			t.Logf("control log, every process it has been:\n%s", c.log.Tail(100))
		}
	})
	return c
}

// createVCluster runs `floe control vcluster create` and returns the key,
// the last line it prints.
func (c *controlProc) createVCluster(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command(floeBin, "control", "vcluster", "create", name, "--control", c.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("vcluster create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// envOn creates vcluster name on c and returns e with the vcluster's
// floe:// URL as the agents' metadata store.
func (c *controlProc) envOn(t *testing.T, e *env, name string) *env {
	t.Helper()
	on := *e
	on.dbURL = fmt.Sprintf("floe://%s/%s?key=%s", c.listen, name, c.createVCluster(t, name))
	return &on
}

// TestAgentOnControlPlane produces and consumes with franz-go through an
// agent whose metadata store is a vcluster of `floe control`, then
// SIGKILLs the control process, starts it again (it replays its journal),
// and checks that the agent reconnected by itself, every committed offset
// is still there, and producing and consuming go on where they were.
func TestAgentOnControlPlane(t *testing.T) {
	e := newPostgresEnv(t, "")
	ctl := startControl(t, e)
	onControl := ctl.envOn(t, e, "prod")
	a := startAgent(t, onControl, "a0", agentOpts{})

	list, err := exec.Command(floeBin, "control", "vcluster", "list", "--control", ctl.admin).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "prod") {
		t.Fatalf("vcluster list: %v\n%s", err, list)
	}

	const topic, group, partitions = "on-control", "on-control-group", 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.addr), kgo.RecordRetries(20), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(from, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "v%d", i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %d..%d: %v", from, from+n, err)
		}
	}
	// consume reads n records with the group and commits them.
	consume := func(n int) map[string]bool {
		t.Helper()
		cons, err := kgo.NewClient(kgo.SeedBrokers(a.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		got := map[string]bool{}
		for len(got) < n {
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d records", len(got), n)
			}
			fs := cons.PollFetches(ctx)
			for _, fe := range fs.Errors() {
				t.Logf("fetch error: %v", fe.Err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if got[string(r.Value)] {
					t.Errorf("record %s consumed twice", r.Value)
				}
				got[string(r.Value)] = true
			})
		}
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		return got
	}
	produce(0, 300)
	if got := consume(300); len(got) != 300 {
		t.Fatalf("consumed %d records, want 300", len(got))
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil || committed.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, committed.Error())
	}
	var total int64
	committed.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 300 {
		t.Fatalf("committed offsets sum to %d, want 300", total)
	}

	// SIGKILL the control plane and start it again on the same ports.
	ctl.Kill()
	if err := ctl.Start(context.Background()); err != nil {
		t.Fatalf("restart control: %v\n%s", err, ctl.log.Tail(50))
	}
	t.Logf("control restarted after SIGKILL")

	// The agent reconnects by itself; the offsets are all there.
	deadline := time.Now().Add(60 * time.Second)
	for {
		after, err := adm.FetchOffsets(ctx, group)
		if err == nil && after.Error() == nil {
			same := true
			committed.Each(func(o kadm.OffsetResponse) {
				if r, ok := after.Lookup(o.Topic, o.Partition); !ok || r.At != o.At {
					same = false
				}
			})
			if same {
				break
			}
			t.Fatalf("committed offsets after the restart differ: before %v, after %v", committed, after)
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets not readable 60s after the restart: %v %v", err, after.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
	produce(300, 200)
	got := consume(200)
	for i := 300; i < 500; i++ {
		if !got[fmt.Sprintf("v%d", i)] {
			t.Fatalf("record v%d missing after the restart (got %d records)", i, len(got))
		}
	}
	// Everything from offset 0 is still readable, in order per partition.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	if end != 500 {
		t.Fatalf("end offsets sum to %d, want 500", end)
	}
}

// TestAgentStartsWhileControlPlaneDown starts an agent while its control
// process is down (killed after the vcluster was created): the agent
// retries the store (--metastore-start-wait) instead of exiting, and
// serves once the control process is back. A takeover in progress (the
// CI run that found this: an agent restarted while no process led the
// vcluster yet, "not the leader") is the same case to the agent.
func TestAgentStartsWhileControlPlaneDown(t *testing.T) {
	e := newPostgresEnv(t, "")
	ctl := startControl(t, e)
	onControl := ctl.envOn(t, e, "late")
	ctl.Kill()
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second)
		restarted <- ctl.Start(context.Background())
	}()
	a := startAgent(t, onControl, "a0", agentOpts{})
	if err := <-restarted; err != nil {
		t.Fatalf("restart control: %v\n%s", err, ctl.log.Tail(50))
	}
	if !strings.Contains(a.stderr.String(), "metadata store unreachable at start: retrying") {
		t.Fatalf("the agent served without having retried: was the control process down?\n%s", a.stderr.Tail(40))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.addr), kgo.DefaultProduceTopic("late"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "late"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce after a late start: %v", err)
	}
}
