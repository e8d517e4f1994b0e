package workload

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/history"
)

// Sender is how a producer process sends: an idempotent producer's, or
// a transactional one's (TxnSender, txn.go), whose Txn names the
// transaction its next Send runs in so that the recorder can stamp it on
// the send's lines.
type Sender interface {
	// Txn returns the transactional id of the next Send, "" for none.
	Txn() string
	// Send produces records (one partition) and returns once each has an
	// outcome; on success their Offset fields hold the acknowledged
	// offsets.
	Send(ctx context.Context, records []*kgo.Record) error
	Close()
}

// NewIdempotentSender makes a Sender on an idempotent producer that
// sends each record to the partition it names, uncompressed (so that a
// proxy can rewrite batches).
func NewIdempotentSender(brokers []string, opts ...kgo.Opt) (Sender, error) {
	all := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, err
	}
	return idempotent{cl}, nil
}

type idempotent struct{ cl *kgo.Client }

func (idempotent) Txn() string { return "" }

func (s idempotent) Send(ctx context.Context, records []*kgo.Record) error {
	return s.cl.ProduceSync(ctx, records...).FirstErr()
}

func (s idempotent) Close() { s.cl.Close() }

// definitelyRejected says whether a send error means the records were
// certainly not written: the cluster refused them for what they are.
// Anything else (timeouts, lost connections, retriable errors) is
// indeterminate.
func definitelyRejected(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidTopicException,
		kerr.TopicAuthorizationFailed, kerr.InvalidRecord, kerr.InvalidRequiredAcks, kerr.CorruptMessage} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// produce sends until ctx ends: each send goes to one partition with 1 to
// MaxRecordsPerSend records, with values unique to the run:
// "p<process>-<n>".
func (wk *worker) produce(ctx context.Context) error {
	s, err := wk.cfg.NewSender(wk.cfg.Brokers, append(wk.cfg.ClientOpts,
		kgo.RecordDeliveryTimeout(wk.cfg.OpTimeout), kgo.ProduceRequestTimeout(wk.cfg.OpTimeout))...)
	if err != nil {
		return err
	}
	defer s.Close()
	for ctx.Err() == nil {
		part := wk.rng.Int32N(wk.cfg.Partitions)
		n := 1 + wk.rng.IntN(wk.cfg.MaxRecordsPerSend)
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
		if wk.send(ctx, s, records) == history.Info {
			wk.process += wk.stride
			wk.n = 0
		}
		wk.pause(ctx, wk.cfg.SendPause)
	}
	return nil
}
