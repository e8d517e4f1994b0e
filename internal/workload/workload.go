// Package workload drives Kafka clients (franz-go) against any bootstrap
// address and records every operation they invoke and how it ended into a
// history (package history): producers, consumers with assigned
// partitions, consumers in a group that commit, and a final read of every
// partition from offset 0. Two workloads: "kafka", idempotent producers
// and consumers at read_uncommitted; "txn", transactional producers that
// commit or abort, beside idempotent ones, and consumers at
// read_committed (and one at read_uncommitted). The schedule of
// operations (which partition, how many records, when to commit, abort
// or re-assign) comes from a seed; what the cluster answers does not.
//
// It never decides whether a history is correct (package checker does)
// and never injects faults (the proxy and, later, floe torture do).
package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/history"
)

// Workloads are the workloads Run knows.
var Workloads = []string{"kafka", "txn"}

// Known says whether name is a workload Run knows ("" is kafka).
func Known(name string) bool { return name == "" || slices.Contains(Workloads, name) }

// Config is a workload: who runs, for how long, on which topic.
type Config struct {
	// Workload is "kafka" (the default) or "txn": the Producers are then
	// transactional, IdempotentProducers run beside them, and the
	// consumers (the final read included) read at read_committed, but
	// for UncommittedConsumers.
	Workload string
	Brokers  []string
	// Topic is created with Partitions partitions; it should be new, so
	// that the final read finds no records of another run.
	Topic      string
	Partitions int32
	Seed       int64
	// Duration is how long producers and consumers run before the final
	// read.
	Duration time.Duration
	// Producers, AssignConsumers and GroupConsumers count the workers of
	// each kind (defaults 2, 1 and 2; a negative count means none).
	Producers       int
	AssignConsumers int
	GroupConsumers  int
	// IdempotentProducers and UncommittedConsumers (txn workload only;
	// default 1 each, a negative count means none) are idempotent
	// producers beside the transactional ones and assign consumers at
	// read_uncommitted beside the read_committed ones.
	IdempotentProducers  int
	UncommittedConsumers int
	// Group is the consumer group of the group consumers (default
	// "<topic>-group").
	Group string
	// MaxRecordsPerSend bounds one send (default 4); the number is drawn
	// from the schedule.
	MaxRecordsPerSend int
	// MaxSendsPerTxn bounds the sends of one transaction (default 4),
	// AbortOneIn makes one transaction in that many abort (default 4),
	// and TxnTimeout is the producers' transaction timeout (default
	// 10s): past it the coordinator aborts a transaction left open.
	MaxSendsPerTxn int
	AbortOneIn     int
	TxnTimeout     time.Duration
	// OpTimeout bounds each operation (default 5s): past it a send is
	// indeterminate.
	OpTimeout time.Duration
	// SendPause bounds the pause a producer takes after each send (drawn
	// from the schedule between 0 and it; default 10ms): a larger one
	// makes a slower workload for long runs on a shared machine.
	SendPause time.Duration
	// DrainTimeout bounds the final read (default 20s).
	DrainTimeout time.Duration
	// GroupJoinTimeout bounds the wait for the group consumers' first
	// assignments before the clock of Duration starts (default 30s).
	GroupJoinTimeout time.Duration
	// NewSender makes an idempotent producer's sender (nil:
	// NewIdempotentSender), NewTxnSender a transactional one's (nil:
	// NewTransactionalSender).
	NewSender    func(brokers []string, opts ...kgo.Opt) (Sender, error)
	NewTxnSender func(brokers []string, transactionalID string, opts ...kgo.Opt) (TxnSender, error)
	// ClientOpts are added to every client (e.g. a dialer, a logger).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
	// Started, if set, is called when the clock of Duration starts (the
	// group consumers have their first assignments and the producers
	// start): floe torture starts its faults then.
	Started func()
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("workload: no brokers")
	}
	if c.Topic == "" {
		return errors.New("workload: no topic")
	}
	if !Known(c.Workload) {
		return fmt.Errorf("workload: unknown workload %q (known: %v)", c.Workload, Workloads)
	}
	if c.Workload == "" {
		c.Workload = "kafka"
	}
	txn := c.Workload == "txn"
	c.IdempotentProducers = extra(txn, c.IdempotentProducers)
	c.UncommittedConsumers = extra(txn, c.UncommittedConsumers)
	if c.MaxSendsPerTxn <= 0 {
		c.MaxSendsPerTxn = 4
	}
	if c.AbortOneIn <= 0 {
		c.AbortOneIn = 4
	}
	if c.TxnTimeout <= 0 {
		c.TxnTimeout = 10 * time.Second
	}
	if c.Partitions <= 0 {
		c.Partitions = 3
	}
	if c.Producers <= 0 {
		c.Producers = 2
	}
	switch {
	case c.AssignConsumers == 0:
		c.AssignConsumers = 1
	case c.AssignConsumers < 0:
		c.AssignConsumers = 0
	}
	switch {
	case c.GroupConsumers == 0:
		c.GroupConsumers = 2
	case c.GroupConsumers < 0:
		c.GroupConsumers = 0
	}
	if c.Group == "" {
		c.Group = c.Topic + "-group"
	}
	if c.MaxRecordsPerSend <= 0 {
		c.MaxRecordsPerSend = 4
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.SendPause <= 0 {
		c.SendPause = 10 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 20 * time.Second
		if txn {
			// A transaction its producer could not end holds the last
			// stable offset back until the coordinator aborts it.
			c.DrainTimeout = 2*c.TxnTimeout + 20*time.Second
		}
	}
	if c.GroupJoinTimeout <= 0 {
		c.GroupJoinTimeout = 30 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.NewSender == nil {
		c.NewSender = NewIdempotentSender
	}
	if c.NewTxnSender == nil {
		c.NewTxnSender = NewTransactionalSender
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// extra is the count of a txn-workload-only worker kind: default 1,
// negative none, and none in the kafka workload.
func extra(txn bool, n int) int {
	switch {
	case !txn || n < 0:
		return 0
	case n == 0:
		return 1
	}
	return n
}

// Summary counts what a run did; the history holds the detail.
type Summary struct {
	Sends, Polls, Commits int
	// TxnCommits and TxnAborts count the transactions the producers
	// asked to commit and to abort.
	TxnCommits, TxnAborts int
	// DrainComplete is false when the final read gave up before the end
	// offsets.
	DrainComplete bool
	// GroupJoinWait is how long the run waited for the group consumers'
	// first assignments before its clock started.
	GroupJoinWait time.Duration
}

// waitJoined waits for n signals on joined, at most timeout.
func waitJoined(ctx context.Context, joined <-chan struct{}, n int, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for range n {
		select {
		case <-joined:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Run creates the topic, runs the workload for cfg.Duration, then reads
// every partition from offset 0, writing everything to w. It returns when
// the final read ends; the history is flushed.
func Run(ctx context.Context, cfg Config, w *history.Writer) (Summary, error) {
	if err := cfg.defaults(); err != nil {
		return Summary{}, err
	}
	r := &run{cfg: cfg, w: w}
	if _, err := w.Write(history.Op{Type: history.OK, F: history.Start, Meta: &history.Meta{
		Workload: cfg.Workload, Seed: cfg.Seed, Topic: cfg.Topic, Partitions: cfg.Partitions,
		Duration: cfg.Duration.String(), Brokers: fmt.Sprint(cfg.Brokers),
	}}); err != nil {
		return Summary{}, err
	}
	if err := r.createTopic(ctx); err != nil {
		return Summary{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every worker has its own schedule, derived from the seed and its
	// number, so the schedule does not depend on goroutine timing. The
	// workers are numbered producers (transactional ones first), assign
	// consumers (read_uncommitted ones last), then group consumers.
	producers := cfg.Producers + cfg.IdempotentProducers
	consumers := producers + cfg.AssignConsumers + cfg.UncommittedConsumers
	workers := consumers + cfg.GroupConsumers
	txn := cfg.Workload == "txn"
	isolation := ""
	if txn {
		isolation = history.ReadCommitted
		for i := range cfg.Producers {
			r.txnIDs = append(r.txnIDs, fmt.Sprintf("%s-txn%d", cfg.Topic, i))
		}
	}
	joined := make(chan struct{}, cfg.GroupConsumers)
	var wg sync.WaitGroup
	start := func(i int) {
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
		wk := &worker{run: r, rng: rng, process: i, stride: workers + 1, joined: joined, isolation: isolation}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch {
			case txn && i < cfg.Producers:
				wk.txnID = r.txnIDs[i]
				err = wk.produceTxn(runCtx)
			case i < producers:
				err = wk.produce(runCtx)
			case i < producers+cfg.AssignConsumers:
				err = wk.consumeAssigned(runCtx)
			case i < consumers:
				wk.isolation = history.ReadUncommitted
				err = wk.consumeAssigned(runCtx)
			default:
				err = wk.consumeGroup(runCtx)
			}
			if err != nil && ctx.Err() == nil {
				cfg.Logger.Warn("workload worker stopped", "process", wk.process, "err", err)
			}
		}()
	}
	// The group consumers start first and the clock once each has been
	// given its first assignment (or GroupJoinTimeout passed): a new
	// group waits group.initial.rebalance.delay (3s in Kafka, 3s more
	// while members keep joining) before its first assignment, which
	// would otherwise take most of a short run.
	began := time.Now()
	for i := consumers; i < workers; i++ {
		start(i)
	}
	waitJoined(runCtx, joined, cfg.GroupConsumers, cfg.GroupJoinTimeout)
	joinWait := time.Since(began)
	if cfg.Started != nil {
		cfg.Started()
	}
	timer := time.AfterFunc(cfg.Duration, cancel)
	defer timer.Stop()
	for i := range consumers {
		start(i)
	}
	wg.Wait()
	if cfg.GroupConsumers > 0 {
		r.readCommitted(ctx, workers)
	}
	complete, err := r.drain(ctx, workers)
	r.mu.Lock()
	sum := r.sum
	r.mu.Unlock()
	sum.DrainComplete = complete
	sum.GroupJoinWait = joinWait
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return sum, err
}

type run struct {
	cfg Config
	w   *history.Writer
	// txnIDs are the transactional producers' ids.
	txnIDs []string

	mu  sync.Mutex
	sum Summary
}

func (r *run) count(f func(*Summary)) {
	r.mu.Lock()
	f(&r.sum)
	r.mu.Unlock()
}

func (r *run) write(op history.Op) {
	if _, err := r.w.Write(op); err != nil {
		r.cfg.Logger.Error("history write", "err", err)
	}
}

func (r *run) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	all := []kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...)}
	all = append(all, r.cfg.ClientOpts...)
	all = append(all, opts...)
	return kgo.NewClient(all...)
}

func (r *run) createTopic(ctx context.Context) error {
	cl, err := r.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, r.cfg.Partitions, 1, nil, r.cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", r.cfg.Topic, err)
	}
	return nil
}

// worker is one client's loop. Its process number changes after an
// indeterminate send, as in Jepsen: the old process may still have a
// request in flight, so its later operations are no longer ordered after
// that one.
type worker struct {
	*run
	rng     *rand.Rand
	process int
	stride  int
	n       int // values sent by this process
	// isolation is a consumer's isolation level ("" for the kafka
	// workload's, which name none: read_uncommitted).
	isolation string
	// txnID is a transactional producer's transactional id.
	txnID string
	// joined gets one signal when a group consumer is first assigned.
	joined chan<- struct{}
}

func (wk *worker) pause(ctx context.Context, max time.Duration) {
	t := time.NewTimer(time.Duration(wk.rng.Int64N(int64(max) + 1)))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func tp(topic string, part int32, off int64) history.Offset {
	return history.Offset{Topic: topic, Partition: part, Offset: off}
}

func fromRecords(rs []*kgo.Record, withOffsets bool) []history.Record {
	out := make([]history.Record, len(rs))
	for i, r := range rs {
		off := int64(-1)
		if withOffsets {
			off = r.Offset
		}
		out[i] = history.Record{Topic: r.Topic, Partition: r.Partition, Offset: off, Key: string(r.Key), Value: string(r.Value)}
	}
	return out
}
