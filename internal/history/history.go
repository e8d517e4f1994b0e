// Package history is the format of a recorded test history: one JSON
// object per line, each an operation's invocation or its completion, in
// the order the recorder saw them. The workload driver writes it, the
// checker reads it. The format is described in docs/correctness.md.
//
// A history is evidence: it must say what clients asked for and what they
// were told, never what the cluster "really" did. The package does no
// checking and never talks to a cluster.
package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Type says whether a line is an invocation or how the operation ended.
type Type string

const (
	Invoke Type = "invoke" // the client is about to ask
	OK     Type = "ok"     // it happened
	Fail   Type = "fail"   // it certainly did not happen
	// Info: the outcome is unknown (a timeout, a lost connection). Jepsen
	// calls it info; a send that ends so may or may not be in the log.
	Info Type = "info"
)

// Func is what an operation does.
type Func string

const (
	// Start is the first line: Meta says how the history was made.
	Start Func = "start"
	// Send produces Records (one partition, one or more records). The
	// invocation carries the values; an ok completion carries the offsets
	// the cluster acknowledged.
	Send Func = "send"
	// Poll is one poll of a consumer; its completion carries the records
	// read, in the order the client returned them.
	Poll Func = "poll"
	// Assign gives a consumer partitions directly; Offsets are the
	// partitions and the offsets it starts at (-1: not known).
	Assign Func = "assign"
	// Subscribe joins a consumer to Group.
	Subscribe Func = "subscribe"
	// Rebalance is a single ok line (no invocation): the group gave the
	// consumer Offsets (partitions, offset -1) and took Revoked. Positions
	// of those partitions restart from the group's committed offsets.
	Rebalance Func = "rebalance"
	// Commit commits Offsets (next offset to read, per partition) for
	// Group.
	Commit Func = "commit"
	// Committed reads Group's committed offsets (OffsetFetch); an ok
	// completion carries them in Offsets, -1 for a partition with none.
	Committed Func = "committed"
	// Drain closes the final read: the consumer that read every
	// partition from offset 0 (its Assign and Polls carry Final) reports
	// ok when every partition reached the end offsets in Offsets, info
	// when it gave up first.
	Drain Func = "drain"
	// TxnCommit asks to commit the transaction Txn (EndTxn with commit):
	// ok, it committed; fail, it certainly did not; info, unknown.
	TxnCommit Func = "txn-commit"
	// TxnAbort aborts the transaction Txn. Whatever its completion says,
	// the transaction never commits: its process never asked to.
	TxnAbort Func = "txn-abort"
	// SharePoll is one poll of a share consumer of Group (KIP-932); its
	// completion carries the records delivered, each with its delivery
	// count.
	SharePoll Func = "share-poll"
	// ShareAck acknowledges Records (one partition, delivered to this
	// process) of Group with Ack: ok, the cluster confirmed it (the
	// partition's acknowledgement result was a success); fail, it
	// refused it; info, unknown.
	ShareAck Func = "share-ack"
)

// Acknowledgement types of a ShareAck.
const (
	AckAccept  = "accept"
	AckRelease = "release"
	AckReject  = "reject"
)

// Isolation levels of a consumer, on its Assign or Subscribe.
const (
	// ReadUncommitted is Kafka's default, and what an Assign or
	// Subscribe without Isolation means.
	ReadUncommitted = "read_uncommitted"
	// ReadCommitted consumers must see only committed transactions'
	// records, and nothing past a transaction still open.
	ReadCommitted = "read_committed"
)

// Record is one record sent or read. Offset is -1 when not known (an
// invocation, or a send whose acknowledgement carried none).
type Record struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key,omitempty"`
	Value     string `json:"value"`
	// DeliveryCount is the delivery count a share group delivered the
	// record with (SharePoll), 0 elsewhere.
	DeliveryCount int16 `json:"delivery_count,omitempty"`
}

// Offset is a partition and an offset in it.
type Offset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// TP returns the record's partition.
func (r Record) TP() TopicPartition { return TopicPartition{r.Topic, r.Partition} }

// TP returns the offset's partition.
func (o Offset) TP() TopicPartition { return TopicPartition{o.Topic, o.Partition} }

// Meta describes the run; it is carried by the Start line.
type Meta struct {
	Workload   string `json:"workload"`
	Seed       int64  `json:"seed"`
	Brokers    string `json:"brokers,omitempty"`
	Topic      string `json:"topic"`
	Partitions int32  `json:"partitions"`
	Duration   string `json:"duration,omitempty"`
}

// Op is one line of a history.
type Op struct {
	// Index counts lines from 0; the line number is Index+1.
	Index   int   `json:"index"`
	Type    Type  `json:"type"`
	F       Func  `json:"f"`
	Process int   `json:"process"`
	Time    int64 `json:"time"` // nanoseconds since the history began
	// Group is the consumer group of Subscribe, Rebalance, Commit and
	// Committed.
	Group string `json:"group,omitempty"`
	// Txn names the transaction a Send, TxnCommit, TxnAbort or Poll ran
	// in: unique in the history (the workload writes "<transactional
	// id>#<n>"). A Send without it is not transactional; a Poll with it
	// was made by the transaction's own process while the transaction
	// was open.
	Txn string `json:"txn,omitempty"`
	// Isolation is the isolation level of the consumer an Assign or
	// Subscribe starts (ReadCommitted or ReadUncommitted; empty means
	// ReadUncommitted); the process's Polls read at it until its next
	// Assign or Subscribe.
	Isolation string `json:"isolation,omitempty"`
	// Final marks the Assign and Polls of the final read.
	Final bool `json:"final,omitempty"`
	// Ack is a ShareAck's acknowledgement type (AckAccept, ...).
	Ack     string   `json:"ack,omitempty"`
	Records []Record `json:"records,omitempty"`
	Offsets []Offset `json:"offsets,omitempty"`
	Revoked []Offset `json:"revoked,omitempty"`
	Error   string   `json:"error,omitempty"`
	Meta    *Meta    `json:"meta,omitempty"`
}

// Line is the op's 1-based line number in its file.
func (o Op) Line() int { return o.Index + 1 }

// Writer appends ops to a history, numbering and timing them. It is safe
// for concurrent use; lines are written in the order Write is called.
type Writer struct {
	mu    sync.Mutex
	w     *bufio.Writer
	enc   *json.Encoder
	start time.Time
	next  int
	err   error
}

// NewWriter starts a history on w.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriter(w)
	return &Writer{w: bw, enc: json.NewEncoder(bw), start: time.Now()}
}

// Write sets op's Index and Time and appends it, returning the op as
// written. The first error sticks and is returned by every later call.
func (w *Writer) Write(op Op) (Op, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return op, w.err
	}
	op.Index = w.next
	op.Time = int64(time.Since(w.start))
	w.next++
	if err := w.enc.Encode(op); err != nil {
		w.err = fmt.Errorf("history line %d: %w", op.Line(), err)
	}
	return op, w.err
}

// Flush writes buffered lines through.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

// Read parses a whole history. Blank lines are skipped; an op's Index is
// set from its line so that evidence points at the file as it is.
func Read(r io.Reader) ([]Op, error) {
	var ops []Op
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var op Op
		if err := json.Unmarshal(b, &op); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		op.Index = line - 1
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("history line %d: longer than 64 MiB", len(ops)+1)
		}
		return nil, err
	}
	return ops, nil
}
