package txn

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
)

// The request versions from which clients know PRODUCER_FENCED (KIP-588);
// older ones are told INVALID_PRODUCER_EPOCH, which they treat alike.
const (
	initFencedFrom          = 4
	addPartitionsFencedFrom = 2
	addOffsetsFencedFrom    = 2
	endFencedFrom           = 2
)

// The request versions from which TRANSACTION_ABORTABLE is known
// (KIP-890): a partition or group missing from the transaction is
// answered with it, older versions get INVALID_TXN_STATE.
const (
	addPartitionsAbortableFrom = 5
	offsetCommitAbortableFrom  = 4
)

// EndTxnVersion2 is the first EndTxn version of transaction version 2
// (KIP-890 part 2): every end bumps the producer epoch. TxnOffsetCommit
// from OffsetCommitImplicitFrom adds its group to the transaction itself.
const (
	EndTxnVersion2           = 5
	OffsetCommitImplicitFrom = 5
)

// Exhausted reports an epoch past which a producer id is not bumped any
// more: the next InitProducerId or transaction version 2 end moves to a
// new producer id at epoch 0. Kafka keeps the last epoch (MaxInt16) for
// fencing a producer that holds MaxInt16-1.
func Exhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

func fenced(version, from int16) int16 {
	if version >= from {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

func abortable(version, from int16) int16 {
	if version >= from {
		return kerr.TransactionAbortable.Code
	}
	return kerr.InvalidTxnState.Code
}

// Deadline is when an Ongoing transaction times out; zero for a record in
// another state.
func Deadline(t metastore.Txn) time.Time {
	if t.State != metastore.TxnOngoing {
		return time.Time{}
	}
	return t.StartedAt.Add(time.Duration(t.TimeoutMs) * time.Millisecond)
}

// Expired reports an Ongoing transaction that has outlived its timeout.
func Expired(t metastore.Txn, now time.Time) bool {
	d := Deadline(t)
	return !d.IsZero() && !now.Before(d)
}

// Expire decides the abort of a transaction that has outlived its
// timeout: it ends with an epoch bump, which fences its producer. The
// producer is remembered as the last one, so that it alone may carry on:
// under transaction version 2 its EndTxn(abort) is answered as a retry
// with the new epoch, and its InitProducerId with its id and epoch
// (KIP-360) gets the new epoch too; anything else it sends is fenced. The
// Effect is zero when there is nothing to abort.
func Expire(cur metastore.Txn, found bool, in Input) Effect {
	if !found || !Expired(cur, in.Now) {
		return Effect{}
	}
	return fenceAbort(cur, in, metastore.TxnCompleteAbort, cur.ProducerEpoch, "timeout")
}

// fenceAbort aborts cur's ongoing transaction, bumping the epoch so that
// its producer is fenced, and stores the record in state with
// lastEpoch as the last producer epoch (-1 when the producer of cur must
// not recover: a new instance took over). When the bumped epoch could not
// be handed out (the epoch was exhausted), the record continues under a
// new producer id at epoch 0.
func fenceAbort(cur metastore.Txn, in Input, state metastore.TxnState, lastEpoch int16, reason string) Effect {
	markerEpoch := cur.ProducerEpoch
	if markerEpoch < math.MaxInt16 {
		markerEpoch++
	}
	next := completed(cur, state, in.Now)
	next.LastProducerID, next.LastProducerEpoch = cur.ProducerID, lastEpoch
	if Exhausted(cur.ProducerEpoch) {
		if in.NewProducerID < 0 {
			return Effect{NeedProducerID: true}
		}
		next.ProducerID, next.ProducerEpoch = in.NewProducerID, 0
	} else {
		next.ProducerEpoch = markerEpoch
	}
	return Effect{End: &Ending{
		Next: next, ProducerID: cur.ProducerID, MarkerEpoch: markerEpoch,
		Partitions: cur.Partitions, Groups: cur.Groups, Reason: reason,
	}}
}

// completed is cur once its transaction is over: in state, with no
// partitions or groups. Version stays: it is the version replaced.
func completed(cur metastore.Txn, state metastore.TxnState, now time.Time) metastore.Txn {
	next := cur
	next.State = state
	next.Partitions, next.Groups, next.StartedAt = nil, nil, time.Time{}
	next.UpdatedAt = now
	return next
}

// expireFirst is the effect of a request that finds its transaction past
// its timeout: abort it, then decide the request again.
func expireFirst(cur metastore.Txn, found bool, in Input) (Effect, bool) {
	e := Expire(cur, found, in)
	if e.End == nil && !e.NeedProducerID {
		return Effect{}, false
	}
	e.Again = e.End != nil
	return e, true
}

// InitProducerID decides an InitProducerId with a transactional id, as
// Kafka's TransactionCoordinator does, with one difference: an ongoing
// transaction is aborted and the bumped epoch handed out at once, in one
// step, where Kafka answers CONCURRENT_TRANSACTIONS and bumps again on
// the retry. A producer that asks with the id and epoch of the current
// producer (KIP-360) recovers it; any other epoch is fenced, and an
// ongoing transaction is then left alone.
func InitProducerID(cfg Config, cur metastore.Txn, found bool, r InitProducerIDRequest, in Input) (InitProducerIDResponse, Effect) {
	cfg = cfg.WithDefaults()
	fail := func(code int16) (InitProducerIDResponse, Effect) {
		return InitProducerIDResponse{Err: code, ProducerID: -1, ProducerEpoch: -1}, Effect{}
	}
	if r.TransactionalID == "" {
		return fail(kerr.InvalidRequest.Code)
	}
	if r.TimeoutMs <= 0 || time.Duration(r.TimeoutMs)*time.Millisecond > cfg.MaxTimeout {
		return fail(kerr.InvalidTransactionTimeout.Code)
	}
	var expected bool
	switch {
	case r.ProducerID == -1 && r.ProducerEpoch == -1:
	case r.ProducerID == -1 || r.ProducerEpoch == -1:
		return fail(kerr.InvalidRequest.Code)
	default:
		expected = true
	}
	if e, ok := expireFirst(cur, found, in); ok {
		return InitProducerIDResponse{}, e
	}
	if !found {
		// A new id, or one that expired: a producer asking with its old
		// id and epoch gets a new id, as Kafka answers a record it has
		// just created.
		if in.NewProducerID < 0 {
			return InitProducerIDResponse{}, Effect{NeedProducerID: true}
		}
		next := metastore.Txn{
			TransactionalID: r.TransactionalID,
			ProducerID:      in.NewProducerID, ProducerEpoch: 0,
			LastProducerID: -1, LastProducerEpoch: -1,
			State: metastore.TxnEmpty, TimeoutMs: r.TimeoutMs, UpdatedAt: in.Now,
		}
		return InitProducerIDResponse{ProducerID: next.ProducerID, ProducerEpoch: 0}, Effect{Save: &next}
	}
	// A given producer must be the current one, or the one before an id
	// rotation (a retry whose answer was lost).
	if expected && r.ProducerID != cur.ProducerID && (r.ProducerID != cur.LastProducerID || !Exhausted(r.ProducerEpoch)) {
		return fail(fenced(r.Version, initFencedFrom))
	}

	if cur.State == metastore.TxnOngoing {
		if expected && (r.ProducerID != cur.ProducerID || r.ProducerEpoch != cur.ProducerEpoch) {
			return fail(fenced(r.Version, initFencedFrom))
		}
		// A new instance forgets the last epoch; the current producer
		// recovering keeps it, so that a retry gets the same answer.
		last := int16(-1)
		if expected {
			last = cur.ProducerEpoch
		}
		e := fenceAbort(cur, in, metastore.TxnEmpty, last, "fence")
		if e.NeedProducerID {
			return InitProducerIDResponse{}, e
		}
		next := &e.End.Next
		next.TimeoutMs = r.TimeoutMs
		return InitProducerIDResponse{ProducerID: next.ProducerID, ProducerEpoch: next.ProducerEpoch}, e
	}

	next := completed(cur, metastore.TxnEmpty, in.Now)
	next.TimeoutMs = r.TimeoutMs
	switch {
	case Exhausted(cur.ProducerEpoch) && (!expected || r.ProducerEpoch == cur.ProducerEpoch):
		if in.NewProducerID < 0 {
			return InitProducerIDResponse{}, Effect{NeedProducerID: true}
		}
		next.ProducerID, next.ProducerEpoch = in.NewProducerID, 0
		next.LastProducerID, next.LastProducerEpoch = cur.ProducerID, -1
		if expected {
			next.LastProducerEpoch = cur.ProducerEpoch
		}
	case !expected:
		// A new producer instance: bump, and forget the last epoch, so
		// that the instance before it can no longer recover.
		next.ProducerEpoch = cur.ProducerEpoch + 1
		next.LastProducerID, next.LastProducerEpoch = cur.ProducerID, -1
	case r.ProducerEpoch == cur.ProducerEpoch:
		next.ProducerEpoch = cur.ProducerEpoch + 1
		next.LastProducerID, next.LastProducerEpoch = cur.ProducerID, cur.ProducerEpoch
	case r.ProducerEpoch == cur.LastProducerEpoch:
		// A retry of a bump whose answer was lost: the same answer.
	default:
		return fail(fenced(r.Version, initFencedFrom))
	}
	return InitProducerIDResponse{ProducerID: next.ProducerID, ProducerEpoch: next.ProducerEpoch}, Effect{Save: &next}
}

// checkProducer is the producer check shared by AddPartitionsToTxn,
// AddOffsetsToTxn and TxnOffsetCommit.
func checkProducer(cur metastore.Txn, found bool, id int64, epoch int16, fencedCode int16) int16 {
	switch {
	case !found || id != cur.ProducerID:
		return kerr.InvalidProducerIDMapping.Code
	case epoch != cur.ProducerEpoch:
		return fencedCode
	}
	return 0
}

// AddPartitions decides an AddPartitionsToTxn for one transactional id.
// The first partition or group added starts the transaction (and its
// timeout).
func AddPartitions(cur metastore.Txn, found bool, r AddPartitionsRequest, in Input) (AddPartitionsResponse, Effect) {
	all := func(code int16) AddPartitionsResponse {
		errs := make([]int16, len(r.Partitions))
		for i := range errs {
			errs[i] = code
		}
		return AddPartitionsResponse{Err: code, Errs: errs}
	}
	if r.TransactionalID == "" {
		return all(kerr.InvalidRequest.Code), Effect{}
	}
	if e, ok := expireFirst(cur, found, in); ok {
		return AddPartitionsResponse{}, e
	}
	if code := checkProducer(cur, found, r.ProducerID, r.ProducerEpoch, fenced(r.Version, addPartitionsFencedFrom)); code != 0 {
		return all(code), Effect{}
	}
	if r.VerifyOnly {
		resp := AddPartitionsResponse{Errs: make([]int16, len(r.Partitions))}
		for i, tp := range r.Partitions {
			if cur.State != metastore.TxnOngoing || !HasPartition(cur, tp) {
				resp.Errs[i] = abortable(r.Version, addPartitionsAbortableFrom)
			}
		}
		return resp, Effect{}
	}
	ongoing := cur.State == metastore.TxnOngoing
	if len(r.Partitions) == 0 || ongoing && hasAll(cur, r.Partitions) {
		return all(0), Effect{}
	}
	next := start(cur, in.Now)
	next.Partitions = mergePartitions(next.Partitions, r.Partitions)
	return all(0), Effect{Save: &next}
}

// start is cur with its transaction Ongoing: a record in another state
// starts a new one now, with no partitions or groups.
func start(cur metastore.Txn, now time.Time) metastore.Txn {
	next := cur
	if cur.State != metastore.TxnOngoing {
		next.State, next.StartedAt = metastore.TxnOngoing, now
		next.Partitions, next.Groups = nil, nil
	}
	next.UpdatedAt = now
	return next
}

// AddOffsets decides an AddOffsetsToTxn: the group joins the transaction,
// so that TxnOffsetCommit may commit its offsets in it.
func AddOffsets(cur metastore.Txn, found bool, r AddOffsetsRequest, in Input) (int16, Effect) {
	if r.TransactionalID == "" {
		return kerr.InvalidRequest.Code, Effect{}
	}
	if e, ok := expireFirst(cur, found, in); ok {
		return 0, e
	}
	if code := checkProducer(cur, found, r.ProducerID, r.ProducerEpoch, fenced(r.Version, addOffsetsFencedFrom)); code != 0 {
		return code, Effect{}
	}
	if cur.State == metastore.TxnOngoing && HasGroup(cur, r.Group) {
		return 0, Effect{}
	}
	next := start(cur, in.Now)
	next.Groups = mergeGroups(next.Groups, r.Group)
	return 0, Effect{Save: &next}
}

// EndTxn decides an EndTxn. Under transaction version 1 (v0-v4) the
// epoch stays; a retry of an end that completed the same way is answered
// as success. Under transaction version 2 (v5+) every end bumps the epoch
// (or moves to a new producer id once it is exhausted) and answers the
// producer to continue with; a retry is recognised by coming from the
// producer the last end replaced, and an abort of no transaction at all
// is a valid end of its own.
func EndTxn(cur metastore.Txn, found bool, r EndTxnRequest, in Input) (EndTxnResponse, Effect) {
	fail := func(code int16) (EndTxnResponse, Effect) {
		return EndTxnResponse{Err: code, ProducerID: -1, ProducerEpoch: -1}, Effect{}
	}
	ok := func() (EndTxnResponse, Effect) {
		return EndTxnResponse{ProducerID: cur.ProducerID, ProducerEpoch: cur.ProducerEpoch}, Effect{}
	}
	if r.TransactionalID == "" {
		return fail(kerr.InvalidRequest.Code)
	}
	if e, ok := expireFirst(cur, found, in); ok {
		return EndTxnResponse{}, e
	}
	if !found {
		return fail(kerr.InvalidProducerIDMapping.Code)
	}
	if r.Version < EndTxnVersion2 {
		switch {
		case r.ProducerID != cur.ProducerID:
			return fail(kerr.InvalidProducerIDMapping.Code)
		case r.ProducerEpoch != cur.ProducerEpoch:
			return fail(fenced(r.Version, endFencedFrom))
		}
		switch cur.State {
		case metastore.TxnOngoing:
			next := completed(cur, endState(r.Commit), in.Now)
			return EndTxnResponse{ProducerID: next.ProducerID, ProducerEpoch: next.ProducerEpoch},
				Effect{End: ending(cur, next, cur.ProducerEpoch, r.Commit)}
		case metastore.TxnCompleteCommit, metastore.TxnCompleteAbort:
			if endState(r.Commit) == cur.State {
				return ok()
			}
		}
		return fail(kerr.InvalidTxnState.Code)
	}

	// A retry is from the producer the last end replaced: the record's
	// last producer, one epoch below the current one or, past an
	// exhausted epoch, the id rotated away from. Kafka looks at the
	// epochs alone; the last producer is what tells a retry from a
	// zombie that a new instance fenced before a version 1 end.
	last := cur.LastProducerEpoch >= 0 && r.ProducerID == cur.LastProducerID && r.ProducerEpoch == cur.LastProducerEpoch
	retryOnOverflow := last && r.ProducerID != cur.ProducerID && Exhausted(r.ProducerEpoch) && cur.ProducerEpoch == 0
	if r.ProducerID != cur.ProducerID && !retryOnOverflow {
		return fail(kerr.InvalidProducerIDMapping.Code)
	}
	retryOnBump := last && r.ProducerID == cur.ProducerID && cur.ProducerEpoch == r.ProducerEpoch+1
	retry := retryOnBump || retryOnOverflow
	same := r.ProducerID == cur.ProducerID && r.ProducerEpoch == cur.ProducerEpoch
	switch cur.State {
	case metastore.TxnOngoing, metastore.TxnEmpty:
		if !same {
			return fail(kerr.ProducerFenced.Code)
		}
	default:
		if !same && !retry {
			return fail(kerr.ProducerFenced.Code)
		}
	}
	switch {
	case cur.State == metastore.TxnOngoing:
		return endBumping(cur, r.Commit, in)
	case cur.State == metastore.TxnCompleteCommit && r.Commit:
		if retry {
			return ok()
		}
	case cur.State == metastore.TxnCompleteAbort && !r.Commit:
		if retry {
			return ok()
		}
		return endBumping(cur, false, in)
	case cur.State == metastore.TxnCompleteAbort && r.Commit && retry:
		// A commit the coordinator aborted under it (a timeout), sent
		// before the abort bumped the epoch: fenced, which clients
		// recover from, rather than the fatal INVALID_TXN_STATE
		// (KAFKA-20785).
		return fail(kerr.ProducerFenced.Code)
	case !r.Commit && !retry:
		// An abort of no transaction (Empty, or after a commit): a
		// valid end of its own under transaction version 2.
		return endBumping(cur, false, in)
	}
	return fail(kerr.InvalidTxnState.Code)
}

func endState(commit bool) metastore.TxnState {
	if commit {
		return metastore.TxnCompleteCommit
	}
	return metastore.TxnCompleteAbort
}

func ending(cur, next metastore.Txn, markerEpoch int16, commit bool) *Ending {
	reason := "abort"
	if commit {
		reason = "commit"
	}
	return &Ending{
		Next: next, ProducerID: cur.ProducerID, MarkerEpoch: markerEpoch, Commit: commit,
		Partitions: cur.Partitions, Groups: cur.Groups, Reason: reason,
	}
}

// endBumping ends cur's transaction (possibly empty) under transaction
// version 2: the epoch moves on, the markers carry the new one.
func endBumping(cur metastore.Txn, commit bool, in Input) (EndTxnResponse, Effect) {
	next := completed(cur, endState(commit), in.Now)
	next.LastProducerID, next.LastProducerEpoch = cur.ProducerID, cur.ProducerEpoch
	markerEpoch := cur.ProducerEpoch + 1
	if Exhausted(cur.ProducerEpoch) {
		if in.NewProducerID < 0 {
			return EndTxnResponse{}, Effect{NeedProducerID: true}
		}
		next.ProducerID, next.ProducerEpoch = in.NewProducerID, 0
	} else {
		next.ProducerEpoch = markerEpoch
	}
	return EndTxnResponse{ProducerID: next.ProducerID, ProducerEpoch: next.ProducerEpoch},
		Effect{End: ending(cur, next, markerEpoch, commit)}
}

// CommitOffsets decides the transactional checks of a TxnOffsetCommit,
// after the group coordinator's (KIP-447): the producer must be the
// current one (INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH: the
// request has no version that knows PRODUCER_FENCED) and the group must
// be in the ongoing transaction; from v5 (transaction version 2) the
// request adds it itself, starting the transaction if needed. A zero code
// with no Effect means the store may record the offsets now; with a Save,
// once it is stored. The store checks the producer and group again
// atomically with the write.
func CommitOffsets(cur metastore.Txn, found bool, r OffsetCommitRequest, in Input) (int16, Effect) {
	if r.TransactionalID == "" {
		return kerr.InvalidRequest.Code, Effect{}
	}
	if code := checkProducer(cur, found, r.ProducerID, r.ProducerEpoch, kerr.InvalidProducerEpoch.Code); code != 0 {
		return code, Effect{}
	}
	if cur.State == metastore.TxnOngoing && HasGroup(cur, r.Group) {
		return 0, Effect{}
	}
	if r.Version < OffsetCommitImplicitFrom {
		return abortable(r.Version, offsetCommitAbortableFrom), Effect{}
	}
	next := start(cur, in.Now)
	next.Groups = mergeGroups(next.Groups, r.Group)
	return 0, Effect{Save: &next}
}

// ComparePartitions orders partitions by topic id (bytewise), then
// partition: the order of Txn.Partitions.
func ComparePartitions(a, b metastore.TopicPartition) int {
	return cmp.Or(bytes.Compare(a.TopicID[:], b.TopicID[:]), cmp.Compare(a.Partition, b.Partition))
}

// HasPartition reports whether tp was added to t's transaction.
func HasPartition(t metastore.Txn, tp metastore.TopicPartition) bool {
	_, ok := slices.BinarySearchFunc(t.Partitions, tp, ComparePartitions)
	return ok
}

// HasGroup reports whether group was added to t's transaction.
func HasGroup(t metastore.Txn, group string) bool {
	_, ok := slices.BinarySearch(t.Groups, group)
	return ok
}

func hasAll(t metastore.Txn, tps []metastore.TopicPartition) bool {
	for _, tp := range tps {
		if !HasPartition(t, tp) {
			return false
		}
	}
	return true
}

// mergePartitions returns a new sorted list of have and add without
// repeats.
func mergePartitions(have, add []metastore.TopicPartition) []metastore.TopicPartition {
	out := make([]metastore.TopicPartition, 0, len(have)+len(add))
	out = append(append(out, have...), add...)
	slices.SortFunc(out, ComparePartitions)
	return slices.Compact(out)
}

func mergeGroups(have []string, add string) []string {
	out := append(slices.Clone(have), add)
	slices.Sort(out)
	return slices.Compact(out)
}
