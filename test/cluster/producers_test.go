package cluster

// Producers: franz-go idempotent clients, kcat runs, and raw produce
// probes that show every error code an agent answers.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/nemesis"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/wire"
)

// loadSpec says what a group of producers writes.
type loadSpec struct {
	topic      string
	partitions int32
	rate       int    // records per second per producer
	size       int    // bytes per record value
	as         client // who the producers connect as
}

// franzProducers are idempotent franz-go clients (acks=all), each writing
// round-robin over the partitions at a bounded rate, each bootstrapped
// from its own agent.
type franzProducers struct {
	led     *ledger
	clients []*kgo.Client
	logs    *nemesis.OutputBuffer
	quit    chan struct{}
	loops   sync.WaitGroup
	once    sync.Once
	failed  atomic.Int64
}

func startFranzProducers(t *testing.T, led *ledger, seeds []string, spec loadSpec) *franzProducers {
	t.Helper()
	ps := &franzProducers{led: led, logs: &nemesis.OutputBuffer{}, quit: make(chan struct{})}
	for i, seed := range seeds {
		opts := append(spec.as.opts(t, seed),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.MetadataMaxAge(2*time.Second),
			kgo.MetadataMinAge(250*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.ProducerOnDataLossDetected(led.dataLoss),
			kgo.WithLogger(kgo.BasicLogger(ps.logs, kgo.LogLevelWarn, func() string { return fmt.Sprintf("[producer f%d] ", i) })),
		)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		ps.clients = append(ps.clients, cl)
		t.Cleanup(cl.Close)
		ps.loops.Add(1)
		go ps.produce(cl, fmt.Sprintf("f%d", i), spec)
	}
	t.Cleanup(func() {
		ps.stop()
		if t.Failed() || verbose() {
			if s := ps.logs.String(); s != "" {
				t.Logf("franz-go producers' log:\n%s", s)
			}
		}
	})
	return ps
}

// produce writes spec.rate records a second until quit.
func (ps *franzProducers) produce(cl *kgo.Client, stream string, spec loadSpec) {
	defer ps.loops.Done()
	const tick = 20 * time.Millisecond
	perTick := max(1, spec.rate*int(tick)/int(time.Second))
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for seq := int64(0); ; {
		select {
		case <-ps.quit:
			return
		case <-ticker.C:
		}
		for range perTick {
			r := &kgo.Record{
				Topic: spec.topic, Partition: int32(seq % int64(spec.partitions)),
				Value: makeValue(stream, seq, spec.size),
			}
			seq++
			ps.led.send(1)
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				if err != nil {
					ps.failed.Add(1)
					ps.led.fail(err)
					return
				}
				ps.led.ack(string(r.Value), tp{r.Topic, r.Partition}, r.Offset)
			})
		}
	}
}

func (ps *franzProducers) stop() { ps.once.Do(func() { close(ps.quit) }) }

// finish stops the loops and waits until every record is acknowledged or
// failed. The clients retry without limit, so none may fail.
func (ps *franzProducers) finish(t *testing.T, timeout time.Duration) {
	t.Helper()
	ps.stop()
	ps.loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, cl := range ps.clients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("producer f%d: records unresolved %v after the load stopped: %v", i, timeout, err)
		}
	}
	if n := ps.failed.Load(); n > 0 {
		t.Errorf("%d franz-go records failed, although the clients retry without limit (errors below)", n)
	}
}

// kcatProducers run kcat (librdkafka, idempotent, acks=all) again and
// again, each run writing a batch of lines to one partition, bootstrapped
// from a different agent each time. kcat -vvv reports every delivery with
// its offset, in order within a partition, so each line's acknowledgement
// is known.
type kcatProducers struct {
	led       *ledger
	quit      chan struct{}
	loops     sync.WaitGroup
	once      sync.Once
	runs      atomic.Int64
	failedRun atomic.Int64
	logs      *nemesis.OutputBuffer
}

var kcatDelivered = regexp.MustCompile(`(?m)^% Message delivered to partition (\d+) \(offset (-?\d+)\)`)
var kcatFailed = regexp.MustCompile(`(?m)^% Delivery failed for message: (.*)$`)

// requireKcat returns kcat's path; without it the test skips, or fails
// under FLOE_REQUIRE_CLIENTS=1 (as scripts/test sets).
func requireKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err == nil {
		return path
	}
	if os.Getenv("FLOE_REQUIRE_CLIENTS") == "1" {
		t.Fatal("kcat not found and FLOE_REQUIRE_CLIENTS=1 (Debian package kcat)")
	}
	t.Skip("kcat not found (Debian package kcat)")
	return ""
}

// startKcat starts loops kcat loops. bootstrap(n) names the agent the
// n-th run starts from.
func startKcat(t *testing.T, led *ledger, kcat string, loops, perRun int, spec loadSpec, bootstrap func(n int) string) *kcatProducers {
	t.Helper()
	ks := &kcatProducers{led: led, quit: make(chan struct{}), logs: &nemesis.OutputBuffer{}}
	security := spec.as.kcatArgs(t)
	for i := range loops {
		ks.loops.Add(1)
		go ks.loop(kcat, i, loops, perRun, spec, security, bootstrap)
	}
	t.Cleanup(func() {
		ks.stop()
		ks.loops.Wait()
		if t.Failed() || verbose() {
			if s := ks.logs.String(); s != "" {
				t.Logf("kcat runs that did not deliver everything:\n%s", s)
			}
		}
	})
	return ks
}

func (ks *kcatProducers) loop(kcat string, i, loops, perRun int, spec loadSpec, security []string, bootstrap func(int) string) {
	defer ks.loops.Done()
	for run := 0; ; run++ {
		select {
		case <-ks.quit:
			return
		default:
		}
		n := run*loops + i
		x := tp{spec.topic, int32(n % int(spec.partitions))}
		stream := fmt.Sprintf("k%d.%d", i, run)
		var in bytes.Buffer
		values := make([]string, perRun)
		for j := range perRun {
			values[j] = string(makeValue(stream, int64(j), spec.size))
			in.WriteString(values[j])
			in.WriteByte('\n')
		}
		ks.led.send(perRun)
		ks.runs.Add(1)
		boot := bootstrap(n)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		args := append([]string{"-b", boot, "-P", "-t", x.topic, "-p", strconv.Itoa(int(x.partition)),
			"-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5",
			"-X", "message.timeout.ms=60000", "-X", "topic.metadata.refresh.interval.ms=2000", "-vvv"}, security...)
		cmd := exec.CommandContext(ctx, kcat, args...)
		var out bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &out
		err := cmd.Run()
		cancel()
		text := out.String()
		delivered := kcatDelivered.FindAllStringSubmatch(text, -1)
		failed := kcatFailed.FindAllStringSubmatch(text, -1)
		// Delivery reports come in produce order within a partition, and
		// idempotence fails everything after a failed message.
		for j, m := range delivered {
			p, _ := strconv.Atoi(m[1])
			off, _ := strconv.ParseInt(m[2], 10, 64)
			if j >= len(values) || int32(p) != x.partition {
				ks.led.mu.Lock()
				ks.led.bugs = append(ks.led.bugs, fmt.Sprintf("kcat run %s: delivery report %d for partition %d, want %d of %d", stream, j, p, x.partition, len(values)))
				ks.led.mu.Unlock()
				break
			}
			ks.led.ack(values[j], x, off)
		}
		for _, m := range failed {
			ks.led.fail(fmt.Errorf("kcat: %s", m[1]))
		}
		if undecided := perRun - len(delivered) - len(failed); undecided > 0 || err != nil {
			ks.failedRun.Add(1)
			fmt.Fprintf(ks.logs, "run %s via %s: %d delivered, %d failed, %d unreported, exit %v\n%s\n", stream, boot, len(delivered), len(failed), undecided, err, lastLines(text, 8))
		}
		select {
		case <-ks.quit:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (ks *kcatProducers) stop() { ks.once.Do(func() { close(ks.quit) }) }

// finish waits for the runs in progress to end.
func (ks *kcatProducers) finish(t *testing.T) {
	t.Helper()
	ks.stop()
	done := make(chan struct{})
	go func() { ks.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(100 * time.Second):
		t.Fatal("kcat runs still going 100s after the load stopped")
	}
}

func lastLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// createTopic creates a topic through addr as c.
func createTopic(t *testing.T, c client, addr, topic string, partitions int32) {
	t.Helper()
	cl := c.newClient(t, []string{addr})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// rawConn is one Kafka connection that sends requests exactly as built and
// returns transport errors instead of failing the test, for probes that
// must see every answer of an agent.
type rawConn struct {
	addr string
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

// do sends req (at its version, which must not be flexible) and decodes
// the response into resp.
func (c *rawConn) do(req kmsg.Request, resp kmsg.Response, timeout time.Duration) error {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return err
		}
		c.nc, c.r = nc, bufio.NewReader(nc)
	}
	err := c.roundTrip(req, resp, timeout)
	if err != nil {
		c.close()
	}
	return err
}

func (c *rawConn) roundTrip(req kmsg.Request, resp kmsg.Response, timeout time.Duration) error {
	c.corr++
	c.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(wire.AppendRequest(nil, c.corr, "floe-cluster-probe", req)); err != nil {
		return err
	}
	frame, err := wire.ReadFrame(c.r, 64<<20)
	if err != nil {
		return err
	}
	if len(frame) < 4 {
		return fmt.Errorf("short response frame")
	}
	if got := int32(frame[0])<<24 | int32(frame[1])<<16 | int32(frame[2])<<8 | int32(frame[3]); got != c.corr {
		return fmt.Errorf("correlation id %d, want %d", got, c.corr)
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(frame[4:])
}

func (c *rawConn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// probeResult is one probe request's outcome.
type probeResult struct {
	start, end time.Time
	code       int16 // Kafka error code; 0 with err == nil is success
	err        error // transport error
}

// probes send small requests to chosen agents in a loop and keep every
// outcome.
type probes struct {
	mu      sync.Mutex
	results map[string][]probeResult // by probe name
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func newProbes() *probes {
	return &probes{results: map[string][]probeResult{}, quit: make(chan struct{})}
}

func (p *probes) record(name string, r probeResult) {
	p.mu.Lock()
	p.results[name] = append(p.results[name], r)
	p.mu.Unlock()
}

func (p *probes) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}

// every runs fn every interval (after the previous call returned) until stop.
func (p *probes) every(interval time.Duration, fn func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.quit:
				return
			case <-time.After(interval):
			}
			fn()
		}
	}()
}

// produceProbe sends one-record produce requests (acks=all, no
// idempotence, one attempt each) to the agent at addr, for partition x,
// every interval; acknowledged records go to the ledger.
func (p *probes) produceProbe(name, addr string, x tp, led *ledger, interval time.Duration) {
	c := &rawConn{addr: addr}
	seq := int64(0)
	p.every(interval, func() {
		value := makeValue("p"+name, seq, 64)
		seq++
		led.send(1)
		r := probeResult{start: time.Now()}
		var off int64
		r.code, off, r.err = produceOne(c, x, value)
		r.end = time.Now()
		if r.err == nil && r.code == 0 {
			led.ack(string(value), x, off)
		}
		if r.err != nil || r.code != 0 {
			led.fail(fmt.Errorf("probe: %s", describe(r)))
		}
		p.record(name, r)
	})
}

// fetchProbe sends fetch requests for a random offset below hwm() of a
// random partition to the agent at addr every interval.
func (p *probes) fetchProbe(name, addr, topic string, partitions int32, hwm func(int32) int64, interval time.Duration) {
	c := &rawConn{addr: addr}
	p.every(interval, func() {
		part := rand.Int32N(partitions)
		end := hwm(part)
		if end <= 0 {
			return
		}
		r := probeResult{start: time.Now()}
		r.code, _, r.err = fetchWait(c, tp{topic, part}, rand.Int64N(end), 0)
		r.end = time.Now()
		p.record(name, r)
	})
}

func describe(r probeResult) string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	if r.code == 0 {
		return "ok"
	}
	return kerr.ErrorForCode(r.code).Error()
}

// retriable reports whether a Kafka error code asks the client to retry.
func retriable(code int16) bool {
	e, ok := kerr.ErrorForCode(code).(*kerr.Error)
	return ok && e.Retriable
}

// probeSummary counts outcomes of one probe's results within [from, to).
type probeSummary struct {
	ok, retriable, fatal, transport int
	codes                           map[string]int
}

func summarize(rs []probeResult, from, to time.Time) probeSummary {
	s := probeSummary{codes: map[string]int{}}
	for _, r := range rs {
		if r.start.Before(from) || !r.start.Before(to) {
			continue
		}
		switch {
		case r.err != nil:
			s.transport++
		case r.code == 0:
			s.ok++
		case retriable(r.code):
			s.retriable++
		default:
			s.fatal++
		}
		s.codes[describe(r)]++
	}
	return s
}

func (s probeSummary) String() string {
	return fmt.Sprintf("%d ok, %d retriable errors, %d non-retriable, %d transport errors %v", s.ok, s.retriable, s.fatal, s.transport, s.codes)
}

// produceOne sends one record to the agent behind c (acks=all) and
// returns the error code and base offset.
func produceOne(c *rawConn, x tp, value []byte) (int16, int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 8
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = x.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = x.partition
	rp.Records = recordbatch.Build(recordbatch.BuildOptions{}, recordbatch.Record{Timestamp: time.Now().UnixMilli(), Value: value})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	if err := c.do(req, resp, 20*time.Second); err != nil {
		return 0, 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, 0, fmt.Errorf("produce response for %d topics", len(resp.Topics))
	}
	pr := resp.Topics[0].Partitions[0]
	return pr.ErrorCode, pr.BaseOffset, nil
}

// fetchWait sends one fetch of x from offset that waits up to maxWait for
// a record, and returns the partition's error code and record bytes.
func fetchWait(c *rawConn, x tp, offset int64, maxWait time.Duration) (int16, int, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = x.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = x.partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 64 << 10
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrFetchResponse()
	if err := c.do(req, resp, maxWait+20*time.Second); err != nil {
		return 0, 0, err
	}
	code, n := resp.ErrorCode, 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				code = p.ErrorCode
			}
			n += len(p.RecordBatches)
		}
	}
	return code, n, nil
}

// wakeupLatency starts a fetch of x at its end on agent waiter, produces
// one record to x through agent writer 200ms later, and returns how long
// after that produce was sent the fetch returned the record.
func wakeupLatency(t *testing.T, led *ledger, waiter, writer *agentProc, x tp) time.Duration {
	t.Helper()
	end := endOffsets(t, []string{waiter.addr}, client{}, x.topic)[x] // the probes below are PLAINTEXT too
	type result struct {
		at    time.Time
		code  int16
		bytes int
		err   error
	}
	got := make(chan result, 1)
	fc := &rawConn{addr: waiter.addr}
	defer fc.close()
	go func() {
		code, n, err := fetchWait(fc, x, end, 10*time.Second)
		got <- result{time.Now(), code, n, err}
	}()
	time.Sleep(200 * time.Millisecond)
	pc := &rawConn{addr: writer.addr}
	defer pc.close()
	value := makeValue("w"+waiter.name+writer.name, 0, 64)
	sent := time.Now()
	led.send(1)
	code, off, err := produceOne(pc, x, value)
	if err != nil || code != 0 {
		t.Fatalf("produce through %s: code %d, %v", writer.name, code, err)
	}
	led.ack(string(value), x, off)
	if testing.Verbose() {
		t.Logf("produce through %s acknowledged after %v", writer.name, time.Since(sent).Round(time.Millisecond))
	}
	r := <-got
	if r.err != nil || r.code != 0 || r.bytes == 0 {
		t.Fatalf("fetch on %s: code %d, %d bytes, %v", waiter.name, r.code, r.bytes, r.err)
	}
	return r.at.Sub(sent)
}
