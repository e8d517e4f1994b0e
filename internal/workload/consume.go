package workload

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/history"
)

const (
	maxPollRecords = 100
	pollWait       = 250 * time.Millisecond
)

// consumerOpts are a consumer's options at isolation level iso
// (history.ReadCommitted or not).
func consumerOpts(iso string) []kgo.Opt {
	opts := []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}
	if iso == history.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return opts
}

// poll records one poll: its invocation, then the records it returned.
func (wk *worker) poll(ctx context.Context, cl *kgo.Client, final bool) []*kgo.Record {
	return wk.pollWith(ctx, cl, pollOptions{final: final})
}

type pollOptions struct {
	final bool
	txn   string        // the open transaction the poll is made in
	wait  time.Duration // default pollWait
}

// pollWith records one poll. Fetch errors are written on an ok
// completion: they are per partition, and the records beside them were
// read.
func (wk *worker) pollWith(ctx context.Context, cl *kgo.Client, o pollOptions) []*kgo.Record {
	if o.wait == 0 {
		o.wait = pollWait
	}
	final := o.final
	wk.write(history.Op{Type: history.Invoke, F: history.Poll, Process: wk.process, Final: final, Txn: o.txn})
	pctx, cancel := context.WithTimeout(ctx, o.wait)
	fetches := cl.PollRecords(pctx, maxPollRecords)
	cancel()
	recs := fetches.Records()
	done := history.Op{Type: history.OK, F: history.Poll, Process: wk.process, Final: final, Txn: o.txn, Records: fromRecords(recs, true)}
	for _, e := range fetches.Errors() {
		if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
			continue
		}
		done.Error = e.Err.Error()
		break
	}
	wk.write(done)
	wk.count(func(s *Summary) { s.Polls++ })
	return recs
}

// consumeAssigned reads a schedule-chosen set of partitions from a
// schedule-chosen offset, and now and then starts over elsewhere (a new
// client: the simplest seek the history can describe exactly).
func (wk *worker) consumeAssigned(ctx context.Context) error {
	// The highest offset read per partition, so that a re-assignment can
	// seek back into data that exists.
	seen := map[int32]int64{}
	for ctx.Err() == nil {
		var offs []history.Offset
		assign := map[int32]kgo.Offset{}
		for p := range wk.cfg.Partitions {
			if wk.rng.IntN(2) == 0 && len(offs) > 0 {
				continue
			}
			at := int64(0)
			if hi, ok := seen[p]; ok && wk.rng.IntN(2) == 0 {
				at = wk.rng.Int64N(hi + 1)
			}
			assign[p] = kgo.NewOffset().At(at)
			offs = append(offs, tp(wk.cfg.Topic, p, at))
		}
		wk.write(history.Op{Type: history.Invoke, F: history.Assign, Process: wk.process, Offsets: offs, Isolation: wk.isolation})
		opts := append(consumerOpts(wk.isolation), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{wk.cfg.Topic: assign}))
		cl, err := wk.newClient(opts...)
		if err != nil {
			wk.write(history.Op{Type: history.Fail, F: history.Assign, Process: wk.process, Offsets: offs, Isolation: wk.isolation, Error: err.Error()})
			return err
		}
		wk.write(history.Op{Type: history.OK, F: history.Assign, Process: wk.process, Offsets: offs, Isolation: wk.isolation})
		polls := 5 + wk.rng.IntN(30)
		for i := 0; i < polls && ctx.Err() == nil; i++ {
			for _, r := range wk.poll(ctx, cl, false) {
				seen[r.Partition] = max(seen[r.Partition], r.Offset)
			}
		}
		cl.Close()
	}
	return nil
}

// consumeGroup is a member of the group: it polls, and after a
// schedule-drawn number of polls commits the next offset of every
// partition it read since it was given it. Rebalances wait while a poll
// is processed (BlockRebalanceOnPoll), so a commit never covers records
// of a partition the member has lost. Now and then (after a
// schedule-drawn number of commit cycles) it leaves the group and joins
// again with a new client, so partitions change hands during the run.
func (wk *worker) consumeGroup(ctx context.Context) error {
	var joinOnce sync.Once
	for ctx.Err() == nil {
		if err := wk.groupSession(ctx, &joinOnce, 10+wk.rng.IntN(40)); err != nil {
			return err
		}
	}
	return nil
}

// groupSession is one membership: join, run cycles of polls and a
// commit, leave.
func (wk *worker) groupSession(ctx context.Context, joinOnce *sync.Once, cycles int) error {
	var mu sync.Mutex
	next := map[int32]int64{} // partition → offset after the last read
	rebalance := func(assigned, revoked map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		op := history.Op{Type: history.OK, F: history.Rebalance, Process: wk.process, Group: wk.cfg.Group}
		for _, p := range sortedParts(assigned[wk.cfg.Topic]) {
			op.Offsets = append(op.Offsets, tp(wk.cfg.Topic, p, -1))
			delete(next, p)
		}
		for _, p := range sortedParts(revoked[wk.cfg.Topic]) {
			op.Revoked = append(op.Revoked, tp(wk.cfg.Topic, p, -1))
			delete(next, p)
		}
		if len(op.Offsets) > 0 || len(op.Revoked) > 0 {
			wk.write(op)
		}
	}
	wk.write(history.Op{Type: history.Invoke, F: history.Subscribe, Process: wk.process, Group: wk.cfg.Group, Isolation: wk.isolation})
	opts := append(consumerOpts(wk.isolation),
		kgo.ConsumerGroup(wk.cfg.Group),
		kgo.ConsumeTopics(wk.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			// Called after every join, even with nothing new assigned.
			joinOnce.Do(func() { wk.joined <- struct{}{} }) // buffered for every group consumer
			rebalance(m, nil)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { rebalance(nil, m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { rebalance(nil, m) }),
	)
	cl, err := wk.newClient(opts...)
	if err != nil {
		wk.write(history.Op{Type: history.Fail, F: history.Subscribe, Process: wk.process, Group: wk.cfg.Group, Isolation: wk.isolation, Error: err.Error()})
		return err
	}
	wk.write(history.Op{Type: history.OK, F: history.Subscribe, Process: wk.process, Group: wk.cfg.Group, Isolation: wk.isolation})
	defer func() {
		// Leave without waiting on ctx, which may have ended.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wk.cfg.OpTimeout)
		defer cancel()
		cl.LeaveGroupContext(lctx)
		cl.Close()
	}()
	for c := 0; c < cycles && ctx.Err() == nil; c++ {
		polls := 1 + wk.rng.IntN(5)
		for i := 0; i < polls && ctx.Err() == nil; i++ {
			recs := wk.poll(ctx, cl, false)
			mu.Lock()
			for _, r := range recs {
				next[r.Partition] = r.Offset + 1
			}
			mu.Unlock()
			if i < polls-1 {
				cl.AllowRebalance()
			}
		}
		if ctx.Err() == nil {
			wk.commit(ctx, cl, &mu, next)
		}
		cl.AllowRebalance()
	}
	return nil
}

// commit commits next (partition → offset) for the group and records it.
// A commit the coordinator refused is failed; one without an answer is
// indeterminate.
func (wk *worker) commit(ctx context.Context, cl *kgo.Client, mu *sync.Mutex, next map[int32]int64) {
	mu.Lock()
	parts := sortedParts(slices.Collect(maps.Keys(next)))
	offs := map[int32]kgo.EpochOffset{}
	var hist []history.Offset
	for _, p := range parts {
		offs[p] = kgo.EpochOffset{Epoch: -1, Offset: next[p]}
		hist = append(hist, tp(wk.cfg.Topic, p, next[p]))
	}
	mu.Unlock()
	if len(hist) == 0 {
		return
	}
	wk.write(history.Op{Type: history.Invoke, F: history.Commit, Process: wk.process, Group: wk.cfg.Group, Offsets: hist})
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wk.cfg.OpTimeout)
	var cerr error
	cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{wk.cfg.Topic: offs},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
						cerr = e
					}
				}
			}
		})
	cancel()
	done := history.Op{Type: history.OK, F: history.Commit, Process: wk.process, Group: wk.cfg.Group, Offsets: hist}
	var ke *kerr.Error
	switch {
	case cerr == nil:
	case errors.As(cerr, &ke):
		done.Type, done.Error = history.Fail, cerr.Error()
	default:
		done.Type, done.Error = history.Info, cerr.Error()
	}
	wk.write(done)
	wk.count(func(s *Summary) { s.Commits++ })
}

// readCommitted records the group's committed offsets once its members
// have stopped, so that the checker can compare them with the commits
// that were acknowledged.
func (r *run) readCommitted(ctx context.Context, process int) {
	r.write(history.Op{Type: history.Invoke, F: history.Committed, Process: process, Group: r.cfg.Group})
	done := history.Op{Type: history.Fail, F: history.Committed, Process: process, Group: r.cfg.Group}
	defer func() { r.write(done) }()
	cl, err := r.newClient()
	if err != nil {
		done.Error = err.Error()
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	resps, err := kadm.NewClient(cl).FetchOffsets(ctx, r.cfg.Group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		done.Type, done.Error = history.Info, err.Error()
		return
	}
	done.Type = history.OK
	for p := range r.cfg.Partitions {
		at := int64(-1)
		if o, ok := resps.Lookup(r.cfg.Topic, p); ok {
			at = o.At
		}
		done.Offsets = append(done.Offsets, tp(r.cfg.Topic, p, at))
	}
}

// drain is the final read: a new consumer reads every partition from
// offset 0 until each reaches the end offset listed when it began, or
// DrainTimeout passes. In the txn workload it reads at read_committed,
// and the end of each partition is a record it sends first (see
// endMarkers).
func (r *run) drain(ctx context.Context, process int) (bool, error) {
	wk := &worker{run: r, process: process}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DrainTimeout)
	defer cancel()
	var targets []history.Offset
	if r.cfg.Workload == "txn" {
		wk.isolation = history.ReadCommitted
		r.fence(ctx)
		var err error
		if targets, err = wk.endMarkers(ctx); err != nil {
			return false, err
		}
	} else {
		admin, err := r.newClient()
		if err != nil {
			return false, err
		}
		ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, r.cfg.Topic)
		admin.Close()
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return false, err
		}
		for p := range r.cfg.Partitions {
			end, _ := ends.Lookup(r.cfg.Topic, p)
			targets = append(targets, tp(r.cfg.Topic, p, end.Offset))
		}
	}
	var starts []history.Offset
	assign := map[int32]kgo.Offset{}
	for p := range r.cfg.Partitions {
		starts = append(starts, tp(r.cfg.Topic, p, 0))
		assign[p] = kgo.NewOffset().At(0)
	}
	r.write(history.Op{Type: history.Invoke, F: history.Assign, Process: process, Final: true, Offsets: starts, Isolation: wk.isolation})
	cl, err := r.newClient(append(consumerOpts(wk.isolation), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: assign}))...)
	if err != nil {
		r.write(history.Op{Type: history.Fail, F: history.Assign, Process: process, Final: true, Offsets: starts, Isolation: wk.isolation, Error: err.Error()})
		return false, err
	}
	defer cl.Close()
	r.write(history.Op{Type: history.OK, F: history.Assign, Process: process, Final: true, Offsets: starts, Isolation: wk.isolation})
	next := map[int32]int64{}
	reached := func() bool {
		for _, t := range targets {
			if next[t.Partition] < t.Offset {
				return false
			}
		}
		return true
	}
	for !reached() && ctx.Err() == nil {
		for _, rec := range wk.poll(ctx, cl, true) {
			next[rec.Partition] = max(next[rec.Partition], rec.Offset+1)
		}
	}
	done := reached()
	r.write(history.Op{Type: history.Invoke, F: history.Drain, Process: process, Offsets: targets})
	status := history.OK
	if !done {
		status = history.Info
	}
	r.write(history.Op{Type: status, F: history.Drain, Process: process, Offsets: targets})
	return done, nil
}

// fence ends whatever transactions the transactional producers left
// open (an end whose outcome was unknown leaves one open until the
// coordinator's timeout): InitProducerId with each transactional id
// bumps its epoch and aborts its open transaction, as a new producer
// instance does. Best effort, and not in the history: it changes no
// outcome the history could know, and the final read waits for the
// timeout if it fails.
func (r *run) fence(ctx context.Context) {
	if len(r.txnIDs) == 0 {
		return
	}
	cl, err := r.newClient()
	if err != nil {
		return
	}
	defer cl.Close()
	for _, id := range r.txnIDs {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = int32(r.cfg.TxnTimeout.Milliseconds())
		req.ProducerID, req.ProducerEpoch = -1, -1
		fctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
		resp, err := req.RequestWith(fctx, cl)
		cancel()
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			r.cfg.Logger.Warn("fence transactional id", "transactional_id", id, "err", err)
		}
	}
}

// endMarkers sends one record to each partition, outside any
// transaction, once every producer has stopped, and returns the offset
// after each as the end the final read must reach. A read_committed
// consumer cannot tell where a partition ends from the records it is
// given (the last offsets are transaction markers, or records of aborted
// transactions, which it never returns); the marker is the last record
// it must read, and it can read it only once every transaction before it
// has ended. The sends are in the history like any other (values
// "end-<partition>-<attempt>"); each is tried up to three times.
func (wk *worker) endMarkers(ctx context.Context) ([]history.Offset, error) {
	s, err := wk.cfg.NewSender(wk.cfg.Brokers, wk.producerOpts()...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var targets []history.Offset
	for p := range wk.cfg.Partitions {
		for attempt := 0; ; attempt++ {
			if attempt == 3 || ctx.Err() != nil {
				return nil, fmt.Errorf("final read: no end marker on partition %d", p)
			}
			rec := &kgo.Record{Topic: wk.cfg.Topic, Partition: p, Key: []byte("end"), Value: fmt.Appendf(nil, "end-%d-%d", p, attempt)}
			if wk.send(ctx, s, []*kgo.Record{rec}) == history.OK {
				targets = append(targets, tp(wk.cfg.Topic, p, rec.Offset+1))
				break
			}
		}
	}
	return targets, nil
}

func sortedParts(ps []int32) []int32 {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}
