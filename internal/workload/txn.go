package workload

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/history"
)

// TxnSender is a transactional producer's Sender: its sends run in the
// transaction Begin starts and End commits or aborts.
type TxnSender interface {
	Sender
	// Begin starts a transaction; name is what Txn returns until End.
	Begin(name string) error
	// End commits (commit set) or aborts the transaction. After an error
	// the sender should be closed: a new one with the same transactional
	// id fences it and aborts what it left open.
	End(ctx context.Context, commit bool) error
}

// NewTransactionalSender makes a TxnSender on a franz-go producer with
// transactionalID, sending each record to the partition it names,
// uncompressed, as the idempotent sender does.
func NewTransactionalSender(brokers []string, transactionalID string, opts ...kgo.Opt) (TxnSender, error) {
	cl, err := kgo.NewClient(slices.Concat([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.TransactionalID(transactionalID),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, opts)...)
	if err != nil {
		return nil, err
	}
	return &transactional{cl: cl}, nil
}

var _ TxnSender = (*transactional)(nil)

type transactional struct {
	cl   *kgo.Client
	name string
}

func (s *transactional) Txn() string { return s.name }

func (s *transactional) Begin(name string) error {
	if err := s.cl.BeginTransaction(); err != nil {
		return err
	}
	s.name = name
	return nil
}

func (s *transactional) Send(ctx context.Context, records []*kgo.Record) error {
	return s.cl.ProduceSync(ctx, records...).FirstErr()
}

func (s *transactional) End(ctx context.Context, commit bool) error {
	s.name = ""
	if commit {
		return s.cl.EndTransaction(ctx, kgo.TryCommit)
	}
	if err := s.cl.AbortBufferedRecords(ctx); err != nil {
		return err
	}
	return s.cl.EndTransaction(ctx, kgo.TryAbort)
}

func (s *transactional) Close() { s.cl.Close() }

// endRefused says whether an error ending a transaction is the
// coordinator's definite answer (or the client's refusal to try), so
// that the commit certainly did not happen: franz-go's
// OPERATION_NOT_ATTEMPTED, or a Kafka error that is not retriable (a
// fenced producer, an invalid state). Anything else (a timeout, a lost
// connection, a retriable error that outlived the retries, an unknown
// server error) leaves the outcome unknown.
func endRefused(err error) bool {
	if errors.Is(err, kerr.OperationNotAttempted) {
		return true
	}
	var ke *kerr.Error
	return errors.As(err, &ke) && !ke.Retriable && ke.Code != kerr.UnknownServerError.Code
}

// producerOpts are a producer's client options: the run's, and the
// operation timeout as the records' delivery and request timeouts.
func (wk *worker) producerOpts() []kgo.Opt {
	return slices.Concat(wk.cfg.ClientOpts, []kgo.Opt{
		kgo.RecordDeliveryTimeout(wk.cfg.OpTimeout), kgo.ProduceRequestTimeout(wk.cfg.OpTimeout),
	})
}

// records makes n records for partition part, with the process's next
// values ("p<process>-<n>", as produce's).
func (wk *worker) records(part int32, n int) []*kgo.Record {
	records := make([]*kgo.Record, n)
	for i := range records {
		records[i] = &kgo.Record{
			Topic:     wk.cfg.Topic,
			Partition: part,
			Key:       fmt.Appendf(nil, "k%d", wk.n%8),
			Value:     fmt.Appendf(nil, "p%d-%d", wk.process, wk.n),
		}
		wk.n++
	}
	return records
}

// send sends records through s and records the send, in s's current
// transaction if it has one; it returns how the send ended. Both
// workloads' producers send through it.
func (wk *worker) send(ctx context.Context, s Sender, records []*kgo.Record) history.Type {
	txn := s.Txn()
	wk.write(history.Op{Type: history.Invoke, F: history.Send, Process: wk.process, Txn: txn, Records: fromRecords(records, false)})
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wk.cfg.OpTimeout)
	err := s.Send(opCtx, records)
	cancel()
	done := history.Op{Type: history.OK, F: history.Send, Process: wk.process, Txn: txn}
	switch {
	case err == nil:
		done.Records = fromRecords(records, true)
	case definitelyRejected(err):
		done.Type, done.Error = history.Fail, err.Error()
	default:
		done.Type, done.Error = history.Info, err.Error()
	}
	wk.write(done)
	wk.count(func(s *Summary) { s.Sends++ })
	return done.Type
}

// newProcess continues the worker under a new process number: its old
// requests may still land, so its later operations are not ordered
// after them.
func (wk *worker) newProcess() {
	wk.process += wk.stride
	wk.n = 0
}

// txnPlan is one transaction's schedule, drawn before it starts so that
// what the cluster answers does not change the next transactions'.
type txnPlan struct {
	sends   []sendPlan
	ownRead bool // read the transaction's own partitions before ending it
	abort   bool
}

type sendPlan struct {
	part int32
	n    int
}

func (wk *worker) planTxn() txnPlan {
	var p txnPlan
	for range 1 + wk.rng.IntN(wk.cfg.MaxSendsPerTxn) {
		part := wk.rng.Int32N(wk.cfg.Partitions)
		p.sends = append(p.sends, sendPlan{part, 1 + wk.rng.IntN(wk.cfg.MaxRecordsPerSend)})
	}
	p.ownRead = wk.rng.IntN(4) == 0
	p.abort = wk.rng.IntN(wk.cfg.AbortOneIn) == 0
	return p
}

// ownReadWait is how long a transactional producer's read of its own
// open transaction waits: long enough for a new client's first fetch.
const ownReadWait = 400 * time.Millisecond

// produceTxn runs transactions until ctx ends, each named
// "<transactional id>#<n>" in the history. Each sends 1 to
// MaxSendsPerTxn sends (each to one partition, 1 to MaxRecordsPerSend
// records), reads its own writes now and then (a read_committed
// consumer at the first offset it wrote on each partition, which must
// find nothing), and commits or, one time in AbortOneIn, aborts. A
// transaction with a send that did not succeed is aborted, whatever was
// drawn. After any error the producer continues with a new client (its
// InitProducerId fences the old one and aborts what it left open) under
// a new process number.
func (wk *worker) produceTxn(ctx context.Context) error {
	opts := slices.Concat(wk.producerOpts(), []kgo.Opt{kgo.TransactionTimeout(wk.cfg.TxnTimeout)})
	s, err := wk.cfg.NewTxnSender(wk.cfg.Brokers, wk.txnID, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	renew := func() error {
		s.Close()
		s = nil
		wk.newProcess()
		next, err := wk.cfg.NewTxnSender(wk.cfg.Brokers, wk.txnID, opts...)
		if err != nil {
			return err
		}
		s = next
		return nil
	}
	for k := 0; ctx.Err() == nil; k++ {
		plan := wk.planTxn()
		name := fmt.Sprintf("%s#%d", wk.txnID, k)
		if err := s.Begin(name); err != nil {
			// BeginTransaction is the client's own state; the history
			// has nothing to record.
			wk.cfg.Logger.Warn("begin transaction", "transactional_id", wk.txnID, "err", err)
			if err := renew(); err != nil {
				return err
			}
			wk.pause(ctx, 100*time.Millisecond)
			continue
		}
		ok := true
		first := map[int32]int64{} // partition → the transaction's first offset there
		for i, sp := range plan.sends {
			if i > 0 && ctx.Err() != nil {
				break
			}
			records := wk.records(sp.part, sp.n)
			if wk.send(ctx, s, records) != history.OK {
				ok = false
				break
			}
			if _, seen := first[sp.part]; !seen {
				first[sp.part] = records[0].Offset
			}
		}
		if ok && plan.ownRead && len(first) > 0 {
			wk.readOwn(ctx, name, first)
		}
		if !wk.endTxn(ctx, s, name, ok && !plan.abort) || !ok {
			if err := renew(); err != nil {
				return err
			}
		}
		wk.pause(ctx, wk.cfg.SendPause)
	}
	return nil
}

// endTxn commits or aborts s's transaction and records it; it returns
// whether the end succeeded.
func (wk *worker) endTxn(ctx context.Context, s TxnSender, name string, commit bool) bool {
	f := history.TxnAbort
	if commit {
		f = history.TxnCommit
	}
	wk.write(history.Op{Type: history.Invoke, F: f, Process: wk.process, Txn: name})
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wk.cfg.OpTimeout)
	err := s.End(opCtx, commit)
	cancel()
	done := history.Op{Type: history.OK, F: f, Process: wk.process, Txn: name}
	switch {
	case err == nil:
	case endRefused(err):
		done.Type, done.Error = history.Fail, err.Error()
	default:
		done.Type, done.Error = history.Info, err.Error()
	}
	wk.write(done)
	wk.count(func(s *Summary) {
		if commit {
			s.TxnCommits++
		} else {
			s.TxnAborts++
		}
	})
	return err == nil
}

// readOwn reads, inside transaction txn, from the first offset the
// transaction wrote on each partition, at read_committed: the
// transaction is open, so the last stable offset is at or below those
// offsets and the poll must return nothing.
func (wk *worker) readOwn(ctx context.Context, txn string, first map[int32]int64) {
	var offs []history.Offset
	assign := map[int32]kgo.Offset{}
	for _, p := range sortedParts(slices.Collect(maps.Keys(first))) {
		offs = append(offs, tp(wk.cfg.Topic, p, first[p]))
		assign[p] = kgo.NewOffset().At(first[p])
	}
	wk.write(history.Op{Type: history.Invoke, F: history.Assign, Process: wk.process, Offsets: offs, Isolation: history.ReadCommitted})
	cl, err := wk.newClient(append(consumerOpts(history.ReadCommitted), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{wk.cfg.Topic: assign}))...)
	if err != nil {
		wk.write(history.Op{Type: history.Fail, F: history.Assign, Process: wk.process, Offsets: offs, Isolation: history.ReadCommitted, Error: err.Error()})
		return
	}
	defer cl.Close()
	wk.write(history.Op{Type: history.OK, F: history.Assign, Process: wk.process, Offsets: offs, Isolation: history.ReadCommitted})
	wk.pollWith(ctx, cl, pollOptions{txn: txn, wait: ownReadWait})
}
