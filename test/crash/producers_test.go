package crash

// Producers and the ledger of what they were told.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// value is what every produced record carries: unique, and naming where it
// belongs so a misrouted or reordered record is visible.
func value(round, producer int, topic string, partition int32, seq int64) string {
	return "round-" + strconv.Itoa(round) + "-seq-" + strconv.FormatInt(seq, 10) +
		" producer-" + strconv.Itoa(producer) + " " + topic + "/" + strconv.Itoa(int(partition))
}

type parsed struct {
	round, producer int
	seq             int64
	topic           string
	partition       int32
}

// parseValue is the inverse of value; anything else is a corrupt record.
func parseValue(v string) (parsed, error) {
	var p parsed
	bad := func() (parsed, error) { return parsed{}, fmt.Errorf("value %q is not one the producers wrote", v) }
	rest, ok := strings.CutPrefix(v, "round-")
	if !ok {
		return bad()
	}
	round, rest, ok1 := strings.Cut(rest, "-seq-")
	seq, rest, ok2 := strings.Cut(rest, " producer-")
	producer, where, ok3 := strings.Cut(rest, " ")
	i := strings.LastIndexByte(where, '/')
	if !ok1 || !ok2 || !ok3 || i < 0 {
		return bad()
	}
	var err [4]error
	p.round, err[0] = strconv.Atoi(round)
	p.seq, err[1] = strconv.ParseInt(seq, 10, 64)
	p.producer, err[2] = strconv.Atoi(producer)
	part, err3 := strconv.ParseInt(where[i+1:], 10, 32)
	err[3] = err3
	p.topic, p.partition = where[:i], int32(part)
	if errors.Join(err[:]...) != nil || value(p.round, p.producer, p.topic, p.partition, p.seq) != v {
		return bad()
	}
	return p, nil
}

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

func (x tp) String() string { return fmt.Sprintf("%s/%d", x.topic, x.partition) }

type ack struct {
	tp     tp
	offset int64
}

// ledger records every record sent and how its produce ended.
type ledger struct {
	mu       sync.Mutex
	sent     map[int]int             // round → records handed to Produce
	acked    map[string]ack          // value → what the acknowledgement said
	ackRound map[int]int             // round → acknowledged
	failRnd  map[int]int             // round → failed
	failed   map[string]error        // value → produce error
	errKinds map[string]int          // error text → count
	lossSeen map[string]int          // "topic/partition" → franz-go data-loss reports
	ackedAt  map[tp]map[int64]string // offset → value, to catch two acks for one offset
}

func newLedger() *ledger {
	return &ledger{
		sent: map[int]int{}, acked: map[string]ack{}, ackRound: map[int]int{}, failRnd: map[int]int{},
		failed: map[string]error{}, errKinds: map[string]int{}, lossSeen: map[string]int{},
		ackedAt: map[tp]map[int64]string{},
	}
}

func (l *ledger) send(round int) {
	l.mu.Lock()
	l.sent[round]++
	l.mu.Unlock()
}

func (l *ledger) done(round int, r *kgo.Record, err error) {
	v := string(r.Value)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[v] = err
		l.failRnd[round]++
		l.errKinds[err.Error()]++
		return
	}
	x := tp{r.Topic, r.Partition}
	l.acked[v] = ack{tp: x, offset: r.Offset}
	l.ackRound[round]++
	if l.ackedAt[x] == nil {
		l.ackedAt[x] = map[int64]string{}
	}
	if prev, ok := l.ackedAt[x][r.Offset]; ok && prev != v {
		// Two different records acknowledged at one offset: verify
		// will find at least one of them missing.
		l.errKinds[fmt.Sprintf("BUG: offset %d of %s acknowledged for %q and %q", r.Offset, x, prev, v)]++
	}
	l.ackedAt[x][r.Offset] = v
}

func (l *ledger) dataLoss(topic string, partition int32) {
	l.mu.Lock()
	l.lossSeen[fmt.Sprintf("%s/%d", topic, partition)]++
	l.mu.Unlock()
}

// outstanding is how many of a round's records await their callback.
func (l *ledger) outstanding(round int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent[round] - l.ackRound[round] - l.failRnd[round]
}

func (l *ledger) roundProgress(round int) (acked, sent int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ackRound[round], l.sent[round]
}

func (l *ledger) logRound(t *testing.T, round int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("round %d: %d sent, %d acknowledged, %d failed", round, l.sent[round], l.ackRound[round], l.failRnd[round])
	for e, n := range l.errKinds {
		t.Logf("  produce errors so far: %d × %s", n, e)
	}
	if len(l.lossSeen) > 0 {
		t.Errorf("franz-go detected data loss (OUT_OF_ORDER_SEQUENCE after acknowledged batches): %v", l.lossSeen)
	}
}

// producers are one round's clients, each producing to every partition as
// fast as the client buffers allow.
type producers struct {
	round   int
	led     *ledger
	clients []*kgo.Client
	logs    *lineBuffer
	quit    chan struct{}
	loops   sync.WaitGroup
	stopped bool
}

// startProducers starts a round's producers on pg, as the producer user
// if pg is secure.
func startProducers(t *testing.T, pg *playground, round int, led *ledger) *producers {
	t.Helper()
	ps := &producers{round: round, led: led, logs: &lineBuffer{}, quit: make(chan struct{})}
	for i := range producersPerRound {
		cl, err := kgo.NewClient(append(pg.clientOpts(producerUser),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			// Reconnect quickly once the playground is back.
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.MetadataMinAge(200*time.Millisecond),
			kgo.ProducerOnDataLossDetected(led.dataLoss),
			kgo.WithLogger(kgo.BasicLogger(ps.logs, clientLogLevel(), func() string {
				return fmt.Sprintf("[round %d producer %d] ", round, i)
			})),
		)...)
		if err != nil {
			t.Fatal(err)
		}
		ps.clients = append(ps.clients, cl)
		t.Cleanup(cl.Close)
		ps.loops.Add(1)
		go ps.produce(round, i, cl, led)
	}
	t.Cleanup(func() {
		ps.stop()
		if t.Failed() || verbose() {
			if s := ps.logs.String(); s != "" {
				t.Logf("franz-go log, round %d:\n%s", round, s)
			}
		}
	})
	return ps
}

// verbose shows the playgrounds' and producers' logs even when the tests
// pass: FLOE_CRASH_VERBOSE=1.
func verbose() bool { return os.Getenv("FLOE_CRASH_VERBOSE") != "" }

// clientLogLevel is the producers' log level: FLOE_CRASH_KGO_LOG=debug,
// info or warn (default warn). The log is shown when a test fails.
func clientLogLevel() kgo.LogLevel {
	switch os.Getenv("FLOE_CRASH_KGO_LOG") {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

// produce writes records round-robin over every partition until quit. A
// Produce blocks while the client's buffer is full, which is what paces it.
func (ps *producers) produce(round, producer int, cl *kgo.Client, led *ledger) {
	defer ps.loops.Done()
	for seq := int64(0); ; seq++ {
		for _, topic := range topics {
			for p := range partitions {
				select {
				case <-ps.quit:
					return
				default:
				}
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(value(round, producer, topic, p, seq))}
				led.send(round)
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) { led.done(round, r, err) })
			}
		}
	}
}

// stop ends the produce loops after the record each is handing over; what
// the clients hold stays buffered or in flight.
func (ps *producers) stop() {
	if !ps.stopped {
		ps.stopped = true
		close(ps.quit)
	}
}

// abandon closes the clients while the playground is down: every record
// they still hold fails, though some of those may have been stored.
func (ps *producers) abandon(t *testing.T) {
	t.Helper()
	ps.stop()
	done := make(chan struct{})
	go func() {
		for _, cl := range ps.clients {
			cl.Close()
		}
		ps.loops.Wait()
		close(done)
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-done:
	case <-deadline:
		t.Fatalf("round %d: closing the producers took more than 10s", ps.round)
	}
	// Close does not wait for the callbacks of the records it fails.
	for {
		if n := ps.led.outstanding(ps.round); n == 0 {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("round %d: %d records neither acknowledged nor failed 10s after Close", ps.round, ps.led.outstanding(ps.round))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// finish waits until every record the clients hold is acknowledged or
// failed, then closes them. After a restart this is when batches that were
// in flight at the kill are retried.
func (ps *producers) finish(t *testing.T) {
	t.Helper()
	ps.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	loops := make(chan struct{})
	go func() { ps.loops.Wait(); close(loops) }()
	select {
	case <-loops:
	case <-ctx.Done():
		t.Fatalf("round %d: producers still blocked 20s after the restart", ps.round)
	}
	for i, cl := range ps.clients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("round %d producer %d: records still unresolved 20s after the restart: %v", ps.round, i, err)
		}
		cl.Close()
	}
	// The clients retry without limit, so a failure means the restarted
	// playground refused a legitimate retry.
	if acked, sent := ps.led.roundProgress(ps.round); acked != sent {
		t.Errorf("round %d: %d of %d records failed although their producer lived on to retry them", ps.round, sent-acked, sent)
	}
}

// createTopics creates the topics on pg; if pg is secure, as the super
// user, who then grants the producer user WRITE and the consumer user READ
// on them.
func createTopics(t *testing.T, pg *playground) {
	t.Helper()
	cl, err := kgo.NewClient(pg.clientOpts(adminUser)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
	if pg.sec != nil {
		pg.sec.Grant(t, []string{pg.addr}, producerUser, topics, nil, kadm.OpWrite)
		pg.sec.Grant(t, []string{pg.addr}, consumerUser, topics, nil, kadm.OpRead)
	}
}

// refusedProduce checks that user, granted no WRITE, cannot produce to
// pg's first topic.
func refusedProduce(t *testing.T, pg *playground, user string) {
	t.Helper()
	cl, err := kgo.NewClient(append(pg.clientOpts(user), kgo.DisableIdempotentWrite())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: topics[0], Value: []byte("must be refused")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to %s as %s without WRITE: %v, want %v", topics[0], user, err, kerr.TopicAuthorizationFailed)
	}
	t.Logf("produce to %s as %s without WRITE: %v", topics[0], user, err)
}
