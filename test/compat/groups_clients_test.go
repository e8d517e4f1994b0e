package compat

// Consumer groups with clients other than franz-go: kcat (librdkafka),
// confluent-kafka and kafka-python in one group with a franz-go member;
// sarama's ConsumerGroup; kafka-go's Reader with a GroupID.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// clientLog gathers which client consumed which partition offsets.
type clientLog struct {
	mu       sync.Mutex
	byClient map[string]map[string]bool // client → "p/o"
	owner    map[int32]map[string]bool  // partition → clients that consumed from it
}

func newClientLog() *clientLog {
	return &clientLog{byClient: map[string]map[string]bool{}, owner: map[int32]map[string]bool{}}
}

func (l *clientLog) add(client string, p int32, o int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client] == nil {
		l.byClient[client] = map[string]bool{}
	}
	l.byClient[client][fmt.Sprintf("%d/%d", p, o)] = true
	if l.owner[p] == nil {
		l.owner[p] = map[string]bool{}
	}
	l.owner[p][client] = true
}

func (l *clientLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := map[string]bool{}
	for _, s := range l.byClient {
		for k := range s {
			all[k] = true
		}
	}
	return len(all)
}

// startProcess runs a long-lived consumer process, feeding each stdout line
// to parse; it is stopped with SIGTERM at the end of the test.
func startProcess(t *testing.T, name string, parse func(line string), bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			parse(sc.Text())
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s stderr:\n%.3000s", name, stderr.String())
		}
	})
}

// TestGroupMixedClients: kcat -G, confluent-kafka (librdkafka), kafka-python
// and franz-go consume one topic in one group, sharing the range assignor;
// then kcat, confluent-kafka and franz-go share cooperative-sticky
// (incremental rebalancing, KIP-429; kafka-python 2.0 has no cooperative
// assignor). Each client gets its partitions and consumes only from them;
// together they consume every record.
func TestGroupMixedClients(t *testing.T) {
	t.Run("range", func(t *testing.T) { testGroupMixedClients(t, "range") })
	t.Run("cooperative-sticky", func(t *testing.T) { testGroupMixedClients(t, "cooperative-sticky") })
}

func testGroupMixedClients(t *testing.T, strategy string) {
	kcat := testutil.RequireClient(t, "kcat")
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	for _, m := range []string{"confluent_kafka", "kafka"} {
		if out, err := exec.Command(debianPython, "-c", "import "+m).CombinedOutput(); err != nil {
			testutil.MissingClient(t, "%s cannot import %s: %v\n%s", debianPython, m, err, out)
		}
	}
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	const topic, group, partitions = "mixed", "mixed-group", 8
	createTopic(t, ctx, a.Addr(), topic, partitions)

	log := newClientLog()
	startProcess(t, "kcat", func(line string) {
		var p int32
		var o int64
		if _, err := fmt.Sscanf(line, "%d %d", &p, &o); err == nil {
			log.add("kcat", p, o)
		}
	}, kcat, "-b", a.Addr(), "-G", group, topic, "-o", "beginning", "-u", "-q", "-f", "%p %o\n",
		"-X", "client.id=kcat", "-X", "partition.assignment.strategy="+strategy,
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500")
	clients := []string{"kcat", "py-confluent", "py-kafka", "franz"}
	pyClients := []string{"confluent", "kafka"}
	balancer := kgo.RangeBalancer()
	if strategy != "range" {
		clients = []string{"kcat", "py-confluent", "franz"}
		pyClients = []string{"confluent"}
		balancer = kgo.CooperativeStickyBalancer()
	}
	for _, client := range pyClients {
		name := "py-" + client
		startProcess(t, name, func(line string) {
			var r struct {
				P int32 `json:"p"`
				O int64 `json:"o"`
			}
			if json.Unmarshal([]byte(line), &r) == nil {
				log.add(name, r.P, r.O)
			}
		}, debianPython, "testdata/group_consumer.py", client, a.Addr(), group, topic, "90", strategy)
	}
	franz, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID("franz"), kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(balancer), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer franz.Close()
	go func() {
		for ctx.Err() == nil {
			franz.PollFetches(ctx).EachRecord(func(r *kgo.Record) { log.add("franz", r.Partition, r.Offset) })
		}
	}()

	testutil.WaitFor(t, 60*time.Second, "every client in a stable group", func() bool {
		d, err := admin.DescribeGroups(ctx, group)
		if err != nil {
			return false
		}
		g := d[group]
		if g.State != "Stable" || len(g.Members) != len(clients) {
			return false
		}
		for _, m := range g.Members {
			if ca, ok := m.Assigned.AsConsumer(); !ok || len(ca.Topics) == 0 {
				return false
			}
		}
		return true
	})
	d := describeGroup(t, ctx, admin, group)
	var ids []string
	for _, m := range d.Members {
		ids = append(ids, m.ClientID)
	}
	t.Logf("group members: %v (protocol %s)", ids, d.Protocol)
	if d.Protocol != strategy {
		t.Errorf("protocol %q, want %q", d.Protocol, strategy)
	}

	ends := produceSpread(t, ctx, a.Addr(), topic, partitions, 800)
	total := 0
	for _, o := range ends {
		total += int(o)
	}
	testutil.WaitFor(t, 60*time.Second, "every record consumed", func() bool { return log.distinct() == total })
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, c := range clients {
		if len(log.byClient[c]) == 0 {
			t.Errorf("%s consumed nothing", c)
		} else {
			t.Logf("%s consumed %d records", c, len(log.byClient[c]))
		}
	}
	for p, owners := range log.owner {
		if len(owners) != 1 {
			t.Errorf("partition %d consumed by %v, want one client", p, owners)
		}
	}
}

// TestGroupSarama: two sarama ConsumerGroup members consume a topic and
// mark every message; the committed offsets end at the end offsets.
func TestGroupSarama(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic, group, partitions = "sarama-group", "sarama-group", 4
	createTopic(t, ctx, a.Addr(), topic, partitions)
	ends := produceSpread(t, ctx, a.Addr(), topic, partitions, 400)

	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	log := newClientLog()
	var wg sync.WaitGroup
	cctx, stop := context.WithCancel(ctx)
	// The members log through t: they end before the test does, also when
	// it fails half way (a log after the end panics the package).
	t.Cleanup(func() { stop(); wg.Wait() })
	for i := range 2 {
		cg, err := sarama.NewConsumerGroup([]string{a.Addr()}, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cg.Close()
			h := saramaHandler{name: fmt.Sprintf("sarama-%d", i), log: log}
			for cctx.Err() == nil {
				if err := cg.Consume(cctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					t.Logf("sarama consume: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	total := 0
	for _, o := range ends {
		total += int(o)
	}
	testutil.WaitFor(t, 60*time.Second, "every record consumed", func() bool { return log.distinct() == total })
	admin := newAdmin(t, a.Addr())
	testutil.WaitFor(t, 30*time.Second, "offsets committed at the end", func() bool {
		offs, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p, end := range ends {
			if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
				return false
			}
		}
		return true
	})
	if d := describeGroup(t, ctx, admin, group); len(d.Members) != 2 || d.Protocol != "range" {
		t.Errorf("group: %d members, protocol %q", len(d.Members), d.Protocol)
	}
	stop()
	wg.Wait()
}

type saramaHandler struct {
	name string
	log  *clientLog
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.log.add(h.name, m.Partition, m.Offset)
		s.MarkMessage(m, "")
	}
	return nil
}

// TestGroupKafkaGo: two segmentio/kafka-go Readers with a GroupID consume
// a topic, committing what they read; the committed offsets end at the
// end offsets.
func TestGroupKafkaGo(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic, group, partitions = "kafkago-group", "kafkago-group", 4
	createTopic(t, ctx, a.Addr(), topic, partitions)
	ends := produceSpread(t, ctx, a.Addr(), topic, partitions, 400)
	total := 0
	for _, o := range ends {
		total += int(o)
	}
	log := newClientLog()
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() }) // as above
	for i := range 2 {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{a.Addr()}, GroupID: group, Topic: topic,
			StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
			SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
			RebalanceTimeout: 10 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			name := fmt.Sprintf("kafka-go-%d", i)
			for {
				m, err := r.FetchMessage(cctx)
				if err != nil {
					return
				}
				log.add(name, int32(m.Partition), m.Offset)
				if err := r.CommitMessages(cctx, m); err != nil && cctx.Err() == nil {
					t.Logf("%s commit: %v", name, err)
				}
			}
		}()
	}
	testutil.WaitFor(t, 60*time.Second, "every record consumed", func() bool { return log.distinct() == total })
	admin := newAdmin(t, a.Addr())
	testutil.WaitFor(t, 30*time.Second, "offsets committed at the end", func() bool {
		offs, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p, end := range ends {
			if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
				return false
			}
		}
		return true
	})
	stop()
	wg.Wait()
}
