// Package checker decides whether a recorded history (package history)
// shows a Kafka-semantics anomaly: acknowledged records lost, duplicated,
// reordered, offsets that disagree, consumers that skip or go back,
// group commits that regress or skip, and read_committed consumers that
// see what transactions did not commit, or part of what they did. It is
// pure: ops in, a Result out; it never reads files or talks to a cluster.
//
// The anomaly definitions follow Jepsen's Kafka workload (lost-write,
// duplicate, inconsistent-offsets, poll-skip, nonmonotonic-poll, G1a as
// aborted-read, precommitted reads as own-uncommitted-read), adapted to
// what Floe promises; docs/correctness.md lists them with examples.
package checker

// Kind names an anomaly (or, for the indeterminate classes, a note).
type Kind string

const (
	// LostWrite: a send was acknowledged, the final read completed, and
	// the value is not in it.
	LostWrite Kind = "lost-write"
	// Duplicate: one value read at two or more offsets.
	Duplicate Kind = "duplicate"
	// InconsistentOffset: two or more values read at one offset.
	InconsistentOffset Kind = "inconsistent-offset"
	// AckOffsetMismatch: a send's acknowledgement put a value at one
	// offset, and reads find it only at another.
	AckOffsetMismatch Kind = "ack-offset-mismatch"
	// Reordered: one producer's values, sent in order to one partition
	// (in one send, or in sends where the earlier was acknowledged before
	// the later began), sit at offsets in the other order.
	Reordered Kind = "reordered"
	// PollSkip: a consumer's consecutive reads of a partition jump over
	// an offset that holds a value (known from any read or ack), with no
	// assignment, seek or rebalance in between.
	PollSkip Kind = "poll-skip"
	// NonmonotonicPoll: a consumer reads an offset at or below the one it
	// read before on that partition, with no assignment, seek or
	// rebalance in between.
	NonmonotonicPoll Kind = "nonmonotonic-poll"
	// CommitRegressed: a group committed offset o for a partition after
	// another commit of offset o' > o had completed; or the group's
	// committed offset, read back, is below an acknowledged commit that
	// had completed before the read began (and is no other commit's
	// offset, which could have landed late).
	CommitRegressed Kind = "commit-regressed"
	// CommitSkip: a group committed offset o (or its committed offset
	// read back was o) while a record below o, in the final read, had not
	// been read by any consumer of the group.
	CommitSkip Kind = "commit-skip"
	// CommitUnknown: the group's committed offset, read back, is one no
	// member ever committed.
	CommitUnknown Kind = "commit-unknown"
	// FailedAppeared: a send that failed definitely (not info) is read.
	FailedAppeared Kind = "failed-appeared"
	// UnexpectedValue: a read returned a value no send carried.
	UnexpectedValue Kind = "unexpected-value"
	// IncompleteFinalRead: the final read gave up before reaching the end
	// offsets, so lost writes cannot be decided.
	IncompleteFinalRead Kind = "incomplete-final-read"
	// MalformedHistory: the history breaks its own rules (a completion
	// with no invocation, a value sent twice).
	MalformedHistory Kind = "malformed-history"
)

// Transactional anomalies: they need sends that name their transaction
// (history.Op.Txn), the transactions' ends (history.TxnCommit,
// history.TxnAbort) and consumers that say their isolation level.
const (
	// AbortedRead: a read_committed consumer read a value of a
	// transaction that did not commit (its process aborted it, its commit
	// failed, or it never asked to commit), or read it before the
	// transaction's commit was even asked for.
	AbortedRead Kind = "aborted-read"
	// TornTransaction: a read_committed reader that read a range of a
	// partition completely saw some but not all of a committed (or
	// possibly committed) transaction's values in it; or the final read,
	// which reads every partition completely, has some of a
	// transaction's values and not the others.
	TornTransaction Kind = "torn-transaction"
	// OwnUncommittedRead: a transactional process read its own writes
	// before their transaction committed, through a read_committed
	// consumer (a poll made inside the transaction returned one of its
	// values).
	OwnUncommittedRead Kind = "own-uncommitted-read"
	// ReadPastOpenTransaction: a read_committed consumer read a value at
	// an offset above the first offset of another transaction that was
	// still open when the poll returned (it committed, and its commit was
	// asked for only later): the last stable offset was at or below that
	// first offset, so nothing past it could be returned.
	ReadPastOpenTransaction Kind = "read-past-open-transaction"
)

// Notes that classify indeterminate sends; they are not anomalies.
const (
	// IndeterminateAppeared: a send ended info and its value was read.
	IndeterminateAppeared Kind = "indeterminate-appeared"
	// IndeterminateLost: a send ended info and its value is not in the
	// final read.
	IndeterminateLost Kind = "indeterminate-lost"
)

// Unchecked are the anomaly kinds the checker knows but cannot look for
// yet, with the reason. None today: the transactional kinds are checked
// since the workload records transactions.
var Unchecked = map[Kind]string{}
