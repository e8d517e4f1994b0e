package protocol

// Produce v12+: transaction version 2 (KIP-890 part 2) adds a
// transactional batch's partition to its producer's transaction
// implicitly. A client that uses it sends no AddPartitionsToTxn: the
// agent asks the transaction coordinator to add the partitions before it
// appends the batches, as a Kafka broker sends AddPartitionsToTxn to the
// coordinator before it writes them (AddPartitionsToTxnManager). The add
// checks the producer: a batch of an older epoch, a late one from a
// transaction that has ended since (whose end bumped the epoch), is
// refused and never starts a transaction of its own. The metadata store
// checks again in the batch's commit (docs/transactions.md), so a
// transaction that ends between the add and the commit refuses the batch
// rather than keeping it without a marker.
//
// Kafka's answers: the coordinator's PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH to the producer, the coordinator being
// unavailable or elsewhere is NOT_ENOUGH_REPLICAS (retriable), and a
// request whose transactional batches name more than one producer is
// INVALID_PRODUCER_ID_MAPPING.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/txn"
)

// produceAppend is a partition of a produce request whose batches are
// valid, to be appended to the open segment.
type produceAppend struct {
	pp        *producePartition
	topic     metastore.Topic
	partition int32
	batches   [][]byte
}

// implicitAddTimeout bounds how long a produce waits for the coordinator
// to add its partitions (the wait for the transactional id's turn
// included); the connection reads nothing more meanwhile.
const implicitAddTimeout = 30 * time.Second

// addProducedToTxn adds the partitions of the transactional batches of a
// Produce v12+ request to their producer's transaction, and sets the
// error of each partition it could not add (those are not appended).
func (h *Handler) addProducedToTxn(ctx context.Context, r *kmsg.ProduceRequest, appends []produceAppend) {
	if r.TransactionID == nil {
		// The store refuses transactional batches of no transaction.
		return
	}
	var (
		txnAppends []*produceAppend
		parts      []metastore.TopicPartition
		producerID int64
		epoch      int16
		mixed      bool
	)
	for i := range appends {
		a := &appends[i]
		for _, b := range a.batches {
			hdr, err := recordbatch.ParseHeader(b)
			if err != nil || !hdr.IsTransactional() {
				continue
			}
			switch {
			case len(txnAppends) == 0:
				producerID, epoch = hdr.ProducerID, hdr.ProducerEpoch
			case hdr.ProducerID != producerID || hdr.ProducerEpoch != epoch:
				mixed = true
			}
			txnAppends = append(txnAppends, a)
			parts = append(parts, metastore.TopicPartition{TopicID: a.topic.ID, Partition: a.partition})
			break
		}
	}
	if len(txnAppends) == 0 {
		return
	}
	fail := func(a *produceAppend, code int16, msg string) {
		a.pp.resp.ErrorCode = code
		if msg != "" {
			a.pp.resp.ErrorMessage = &msg
		}
	}
	if mixed {
		for _, a := range txnAppends {
			fail(a, kerr.InvalidProducerIDMapping.Code, "Transactional records contained more than one producer ID")
		}
		return
	}
	txns, code := h.txnsOrErr()
	var res txn.AddPartitionsResponse
	if code == 0 {
		actx, cancel := context.WithTimeout(ctx, implicitAddTimeout)
		res = txns.AddProducedPartitions(actx, txn.AddPartitionsRequest{
			// AddPartitionsToTxn v5 is what a Kafka broker sends for it.
			Version: 5, TransactionalID: *r.TransactionID,
			ProducerID: producerID, ProducerEpoch: epoch, Partitions: parts,
		})
		cancel()
	}
	for i, a := range txnAppends {
		c := code
		if c == 0 && i < len(res.Errs) {
			c = res.Errs[i]
		}
		if c == 0 {
			continue
		}
		switch c {
		case kerr.ProducerFenced.Code:
			// Producers expect INVALID_PRODUCER_EPOCH on a produce.
			fail(a, kerr.InvalidProducerEpoch.Code, "")
		case kerr.InvalidTxnState.Code:
			fail(a, c, "Partition was not added to the transaction")
		case kerr.ConcurrentTransactions.Code, kerr.CoordinatorLoadInProgress.Code,
			kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code:
			fail(a, kerr.NotEnoughReplicas.Code,
				"Unable to verify the partition has been added to the transaction. Underlying error: "+codeText(c))
		default:
			fail(a, c, "")
		}
	}
}

// codeText names a Kafka error code as Kafka's Errors enum does.
func codeText(code int16) string {
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return ke.Message
	}
	return "UNKNOWN_SERVER_ERROR"
}
