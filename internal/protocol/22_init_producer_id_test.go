package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitProducerID(t *testing.T) {
	f := start(t)
	initPID := func(version int16, txn *string, id int64, epoch int16) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = txn
		req.TransactionTimeoutMillis = 60_000
		req.ProducerID, req.ProducerEpoch = id, epoch
		return do[*kmsg.InitProducerIDResponse](f, version, req)
	}

	seen := map[int64]bool{}
	for _, v := range []int16{0, 2, 4} {
		r := initPID(v, nil, -1, -1)
		expectCode(t, "idempotent producer", r.ErrorCode, 0)
		if r.ProducerID < 0 || r.ProducerEpoch != 0 || seen[r.ProducerID] {
			t.Errorf("v%d: producer id %d epoch %d; want a new id with epoch 0", v, r.ProducerID, r.ProducerEpoch)
		}
		seen[r.ProducerID] = true
	}

	// A producer that passes its id and epoch after an error (KIP-360) gets
	// an id and epoch it has not used: Kafka hands idempotent producers a
	// new id, Floe bumps the epoch of the same id; either serves the client.
	first := initPID(4, nil, -1, -1)
	again := initPID(4, nil, first.ProducerID, first.ProducerEpoch)
	expectCode(t, "re-init", again.ErrorCode, 0)
	if again.ProducerID == first.ProducerID && again.ProducerEpoch == first.ProducerEpoch {
		t.Errorf("re-init answered the same id and epoch %d/%d", again.ProducerID, again.ProducerEpoch)
	}

	// A transactional id gets a fresh producer at epoch 0; asking again
	// fences it: same id, next epoch. An empty id is INVALID_REQUEST.
	r := initPID(4, kmsg.StringPtr("tx"), -1, -1)
	expectCode(t, "transactional id", r.ErrorCode, 0)
	if r.ProducerID < 0 || r.ProducerEpoch != 0 {
		t.Errorf("transactional: producer id %d epoch %d, want a new id at epoch 0", r.ProducerID, r.ProducerEpoch)
	}
	r2 := initPID(5, kmsg.StringPtr("tx"), -1, -1)
	expectCode(t, "transactional id again", r2.ErrorCode, 0)
	if r2.ProducerID != r.ProducerID || r2.ProducerEpoch != 1 {
		t.Errorf("transactional again: producer id %d epoch %d, want %d/1", r2.ProducerID, r2.ProducerEpoch, r.ProducerID)
	}
	r3 := initPID(4, kmsg.StringPtr(""), -1, -1)
	expectCode(t, "empty transactional id", r3.ErrorCode, kerr.InvalidRequest.Code)
}
