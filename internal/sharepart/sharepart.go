// Package sharepart is the state of one share partition (KIP-932): which
// records of a topic partition a share group has delivered, to whom, how
// often, and which it is done with. It is a pure state machine: time is
// an input, nothing here does I/O, and the caller persists Snapshots and
// reads the records whose offsets Acquire hands out.
//
// The share-partition start offset (SPSO) is the first offset the group
// is not done with; every offset below it is acknowledged or archived.
// The in-flight window holds one entry per offset from the SPSO up to
// Next (exclusive, one past the share-partition end offset): records
// available for delivery, acquired by a member until a lock deadline,
// acknowledged, or archived. The window never holds more than
// Config.MaxRecordLocks offsets, so memory and every loop here are
// bounded by configuration, never by a peer.
package sharepart

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is the delivery state of one in-flight record.
type State uint8

// The values are Kafka's record state codes (as its share-group state
// records write them).
const (
	Available    State = 0
	Acquired     State = 1
	Acknowledged State = 2
	Archived     State = 4
)

func (s State) String() string {
	switch s {
	case Available:
		return "available"
	case Acquired:
		return "acquired"
	case Acknowledged:
		return "acknowledged"
	case Archived:
		return "archived"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// AckType is an acknowledgement type as ShareFetch and ShareAcknowledge
// carry it.
type AckType int8

const (
	// Gap marks an offset the client did not receive because no record
	// exists there (compaction, control batches); it is archived.
	Gap     AckType = 0
	Accept  AckType = 1
	Release AckType = 2
	Reject  AckType = 3
	// Renew (KIP-1222, ShareFetch and ShareAcknowledge v2) keeps the
	// record acquired by its member and starts its lock again: the
	// member needs longer to process it. The delivery count is unchanged.
	Renew AckType = 4
)

// Defaults as Apache Kafka 4.x has them.
const (
	DefaultLockDuration       = 30 * time.Second
	DefaultDeliveryCountLimit = 5
	DefaultMaxRecordLocks     = 2000
	// MaxWindow bounds a restored window whatever the configuration,
	// so a damaged snapshot cannot size an allocation.
	MaxWindow = 1 << 20
)

// Config holds the share-group configs a share partition obeys.
type Config struct {
	// LockDuration is share.record.lock.duration.ms.
	LockDuration time.Duration
	// DeliveryCountLimit is share.delivery.count.limit: a record whose
	// delivery count reaches it is archived instead of made available.
	DeliveryCountLimit int
	// MaxRecordLocks is group.share.partition.max.record.locks: the most
	// offsets the in-flight window holds.
	MaxRecordLocks int
}

func (c Config) withDefaults() Config {
	if c.LockDuration <= 0 {
		c.LockDuration = DefaultLockDuration
	}
	if c.DeliveryCountLimit <= 0 {
		c.DeliveryCountLimit = DefaultDeliveryCountLimit
	}
	if c.DeliveryCountLimit > 1<<15-1 {
		c.DeliveryCountLimit = 1<<15 - 1
	}
	if c.MaxRecordLocks <= 0 {
		c.MaxRecordLocks = DefaultMaxRecordLocks
	}
	if c.MaxRecordLocks > MaxWindow {
		c.MaxRecordLocks = MaxWindow
	}
	return c
}

type record struct {
	state      State
	deliveries int16
	member     string
	deadline   time.Time
}

// Partition is one share partition's state.
type Partition struct {
	cfg   Config
	start int64
	// window[i] is offset start+i.
	window []record
	counts Counts
}

// Counts are running totals of what happened to a partition's records
// since New or Restore, for metrics; they are not part of a Snapshot.
type Counts struct {
	// Acquired counts deliveries: records handed to a member.
	Acquired int64
	// Accepted, Released and Rejected count acknowledgements by type;
	// Released also counts records given back when their member's
	// session closed.
	Accepted, Released, Rejected int64
	// LockExpired counts deliveries whose lock expired.
	LockExpired int64
	// Archived counts records archived for any reason: rejected,
	// acknowledged as gaps, at the delivery limit, or skipped by a
	// read_committed group.
	Archived int64
}

// Counts returns the partition's running totals.
func (p *Partition) Counts() Counts { return p.counts }

// New starts a share partition with no history at offset start, which
// the caller chose by share.auto.offset.reset (see InitialOffset).
func New(cfg Config, start int64) *Partition {
	if start < 0 {
		start = 0
	}
	return &Partition{cfg: cfg.withDefaults(), start: start}
}

// SetConfig applies changed group configs. Records in flight keep their
// delivery counts; a lowered limit archives them when their current
// delivery ends, as Kafka does.
func (p *Partition) SetConfig(cfg Config) { p.cfg = cfg.withDefaults() }

// Start is the share-partition start offset.
func (p *Partition) Start() int64 { return p.start }

// Next is one past the share-partition end offset: the first offset
// never acquired.
func (p *Partition) Next() int64 { return p.start + int64(len(p.window)) }

// InFlight is the number of offsets in the window.
func (p *Partition) InFlight() int { return len(p.window) }

// Acquisition is a run of offsets handed to one member, all with the same
// delivery count (as ShareFetch's AcquiredRecords).
type Acquisition struct {
	First, Last   int64
	DeliveryCount int16
}

// Acquire hands member up to maxRecords records at now: available
// records in the window first, oldest first, then new offsets, all below
// logEnd (the high watermark, the last stable offset, or the end of the
// records the caller has read for the member), as far as the window
// bound allows. Lock deadlines passed by now are applied first.
// The caller reads the records at the returned offsets; an offset where
// no record exists is acknowledged by the client as a Gap.
func (p *Partition) Acquire(now time.Time, member string, maxRecords int, logEnd int64) []Acquisition {
	return p.AcquireSkipping(now, member, maxRecords, logEnd, nil)
}

// Span is a run of offsets First..Last.
type Span struct{ First, Last int64 }

// AcquireSkipping is Acquire where the offsets of skip (sorted, not
// overlapping) are archived instead of acquired when Acquire would reach
// them: the records of aborted transactions and the transaction markers
// of a read_committed share group, which no member may be handed. An
// offset of skip held by a member is left to it. Archived offsets count
// against the window bound but not against maxRecords; the start offset
// moves over them as over any finished offset.
func (p *Partition) AcquireSkipping(now time.Time, member string, maxRecords int, logEnd int64, skip []Span) []Acquisition {
	return p.AcquireFrom(now, member, maxRecords, 0, logEnd, skip)
}

// AcquireFrom is AcquireSkipping that hands out no offset below from:
// the caller read the log from there (NextCandidate), and a record made
// available below it since (released by another request meanwhile) was
// not read, so it is left for the next fetch.
func (p *Partition) AcquireFrom(now time.Time, member string, maxRecords int, from, logEnd int64, skip []Span) []Acquisition {
	p.Expire(now)
	if len(skip) > 0 {
		defer p.advance()
	}
	skipped := func(off int64) bool {
		for len(skip) > 0 && skip[0].Last < off {
			skip = skip[1:]
		}
		return len(skip) > 0 && skip[0].First <= off
	}
	if maxRecords <= 0 || member == "" {
		return nil
	}
	deadline := now.Add(p.cfg.LockDuration)
	var out []Acquisition
	add := func(off int64, r *record) {
		p.counts.Acquired++
		r.state = Acquired
		r.member = member
		r.deadline = deadline
		if r.deliveries < 1<<15-1 {
			r.deliveries++
		}
		if n := len(out); n > 0 && out[n-1].Last == off-1 && out[n-1].DeliveryCount == r.deliveries {
			out[n-1].Last = off
		} else {
			out = append(out, Acquisition{First: off, Last: off, DeliveryCount: r.deliveries})
		}
		maxRecords--
	}
	for i := max(from-p.start, 0); i < int64(len(p.window)); i++ {
		if maxRecords == 0 || p.start+i >= logEnd {
			return out
		}
		if p.window[i].state == Available {
			if skipped(p.start + int64(i)) {
				p.settle(&p.window[i], Archived)
				continue
			}
			add(p.start+i, &p.window[i])
		}
	}
	for maxRecords > 0 && len(p.window) < p.cfg.MaxRecordLocks && p.Next() < logEnd && p.Next() >= from {
		if skipped(p.Next()) {
			p.window = append(p.window, record{state: Archived})
			p.counts.Archived++
			continue
		}
		p.window = append(p.window, record{})
		add(p.Next()-1, &p.window[len(p.window)-1])
	}
	return out
}

// AckBatch acknowledges offsets First..Last: Types has one type for the
// whole range or one per offset.
type AckBatch struct {
	First, Last int64
	Types       []AckType
}

// Acknowledge applies member's acknowledgements at now, all or nothing:
// every offset named must be acquired by member (INVALID_RECORD_STATE
// otherwise) and the batches must be ascending, not overlapping and well
// formed (INVALID_REQUEST). It answers a Kafka error code, 0 when the
// acknowledgements were applied (and the state is to be persisted).
func (p *Partition) Acknowledge(now time.Time, member string, batches []AckBatch) int16 {
	p.Expire(now)
	prev := int64(math.MinInt64)
	for i, b := range batches {
		if b.First > b.Last || i > 0 && b.First <= prev {
			return kerr.InvalidRequest.Code
		}
		prev = b.Last
		if b.First < p.start || b.Last >= p.Next() {
			return kerr.InvalidRecordState.Code
		}
		n := b.Last - b.First + 1
		if len(b.Types) != 1 && int64(len(b.Types)) != n {
			return kerr.InvalidRequest.Code
		}
		for _, ty := range b.Types {
			if ty < Gap || ty > Renew {
				return kerr.InvalidRequest.Code
			}
		}
		for off := b.First; off <= b.Last; off++ {
			r := &p.window[off-p.start]
			if r.state != Acquired || r.member != member {
				return kerr.InvalidRecordState.Code
			}
		}
	}
	for _, b := range batches {
		for off := b.First; off <= b.Last; off++ {
			ty := b.Types[0]
			if len(b.Types) > 1 {
				ty = b.Types[off-b.First]
			}
			r := &p.window[off-p.start]
			switch ty {
			case Accept:
				p.counts.Accepted++
				p.settle(r, Acknowledged)
			case Gap:
				p.settle(r, Archived)
			case Reject:
				p.counts.Rejected++
				p.settle(r, Archived)
			case Release:
				p.counts.Released++
				p.release(r)
			case Renew:
				r.deadline = now.Add(p.cfg.LockDuration)
			}
		}
	}
	p.advance()
	return 0
}

// ReleaseMember makes every record member holds available again (or
// archived at the delivery limit): the member left the group, or its
// share session closed. It reports whether anything changed.
func (p *Partition) ReleaseMember(member string) bool {
	changed := false
	for i := range p.window {
		if r := &p.window[i]; r.state == Acquired && r.member == member {
			p.counts.Released++
			p.release(r)
			changed = true
		}
	}
	p.advance()
	return changed
}

// Expire ends the acquisitions whose lock deadline is not after now:
// their records become available, or archived at the delivery limit.
// It reports whether anything changed.
func (p *Partition) Expire(now time.Time) bool {
	changed := false
	for i := range p.window {
		if r := &p.window[i]; r.state == Acquired && !r.deadline.After(now) {
			p.counts.LockExpired++
			p.release(r)
			changed = true
		}
	}
	p.advance()
	return changed
}

// HeldBy reports whether, at now, nothing below logEnd can be acquired
// only because the window is full (no record in it is available, and
// there are offsets past it below logEnd) while member holds records in
// it: member's own acknowledgements are what would make room. A
// ShareFetch of that member need not wait for records, since the
// acknowledgements it is waiting for travel behind it.
func (p *Partition) HeldBy(now time.Time, member string, logEnd int64) bool {
	p.Expire(now)
	if len(p.window) < p.cfg.MaxRecordLocks || p.Next() >= logEnd || member == "" {
		return false
	}
	holds := false
	for i := range p.window {
		switch r := &p.window[i]; r.state {
		case Available:
			return false
		case Acquired:
			holds = holds || r.member == member
		}
	}
	return holds
}

// NextDeadline is the earliest lock deadline, or zero when no record is
// acquired.
func (p *Partition) NextDeadline() time.Time {
	var next time.Time
	for i := range p.window {
		if r := &p.window[i]; r.state == Acquired && (next.IsZero() || r.deadline.Before(next)) {
			next = r.deadline
		}
	}
	return next
}

// AdvanceStart moves the start offset up to logStart when the log's
// records below it are gone (retention, DeleteRecords): the share
// partition is done with offsets that no longer exist. It reports
// whether anything changed.
func (p *Partition) AdvanceStart(logStart int64) bool {
	if logStart <= p.start {
		return false
	}
	if logStart >= p.Next() {
		p.window = p.window[:0]
	} else {
		p.window = p.window[logStart-p.start:]
	}
	p.start = logStart
	return true
}

func (p *Partition) settle(r *record, s State) {
	if s == Archived {
		p.counts.Archived++
	}
	r.state = s
	r.member = ""
	r.deadline = time.Time{}
}

// release ends a delivery attempt that did not succeed.
func (p *Partition) release(r *record) {
	if int(r.deliveries) >= p.cfg.DeliveryCountLimit {
		p.settle(r, Archived)
		return
	}
	p.settle(r, Available)
}

// advance moves the start offset over the prefix the group is done with.
func (p *Partition) advance() {
	n := 0
	for n < len(p.window) && (p.window[n].state == Acknowledged || p.window[n].state == Archived) {
		n++
	}
	if n == 0 {
		return
	}
	p.start += int64(n)
	if n == len(p.window) {
		p.window = p.window[:0]
		return
	}
	// Copy down rather than reslice, so the backing array does not
	// creep forward and grow without bound.
	p.window = p.window[:copy(p.window, p.window[n:])]
}

// Record describes one in-flight offset, for tests and describe calls.
type Record struct {
	Offset        int64
	State         State
	DeliveryCount int16
	Member        string
	Deadline      time.Time
}

// Records lists the in-flight window.
func (p *Partition) Records() []Record {
	out := make([]Record, len(p.window))
	for i, r := range p.window {
		out[i] = Record{Offset: p.start + int64(i), State: r.state, DeliveryCount: r.deliveries, Member: r.member, Deadline: r.deadline}
	}
	return out
}

// Batch is a run of in-flight offsets with one state and delivery count,
// as a Snapshot stores them.
type Batch struct {
	First, Last   int64
	State         State
	DeliveryCount int16
}

// Snapshot is what survives a change of owner: the start offset and the
// whole in-flight window as runs. Acquisitions are not kept: an acquired
// record is stored as available with the delivery count it has, so a new
// owner delivers it again (the attempt counts towards the limit, and one
// at the limit is archived on Restore) and never delivers an
// acknowledged or archived record.
type Snapshot struct {
	StartOffset int64
	Batches     []Batch
}

// Snapshot captures the state to persist.
func (p *Partition) Snapshot() Snapshot {
	s := Snapshot{StartOffset: p.start}
	for i, r := range p.window {
		st := r.state
		if st == Acquired {
			st = Available
		}
		off := p.start + int64(i)
		if n := len(s.Batches); n > 0 && s.Batches[n-1].Last == off-1 && s.Batches[n-1].State == st && s.Batches[n-1].DeliveryCount == r.deliveries {
			s.Batches[n-1].Last = off
			continue
		}
		s.Batches = append(s.Batches, Batch{First: off, Last: off, State: st, DeliveryCount: r.deliveries})
	}
	return s
}

// ErrBadSnapshot is returned by Restore for a snapshot no Partition
// could have written.
var ErrBadSnapshot = errors.New("sharepart: bad snapshot")

// Restore rebuilds a share partition from a snapshot. Offsets between
// batches (none are written, but a hand-edited store may lack them) come
// back available with no deliveries.
func Restore(cfg Config, s Snapshot) (*Partition, error) {
	p := New(cfg, s.StartOffset)
	if s.StartOffset < 0 {
		return nil, fmt.Errorf("%w: start offset %d", ErrBadSnapshot, s.StartOffset)
	}
	prev := s.StartOffset - 1
	for _, b := range s.Batches {
		if b.First <= prev || b.Last < b.First || b.Last-s.StartOffset >= MaxWindow {
			return nil, fmt.Errorf("%w: batch %d-%d after %d", ErrBadSnapshot, b.First, b.Last, prev)
		}
		if b.State != Available && b.State != Acknowledged && b.State != Archived || b.DeliveryCount < 0 {
			return nil, fmt.Errorf("%w: batch %d-%d state %d count %d", ErrBadSnapshot, b.First, b.Last, b.State, b.DeliveryCount)
		}
		prev = b.Last
	}
	if n := len(s.Batches); n > 0 {
		p.window = make([]record, s.Batches[n-1].Last-s.StartOffset+1)
	}
	for _, b := range s.Batches {
		st := b.State
		// An available record at the delivery limit was acquired when
		// the snapshot was taken (or the limit was lowered since): that
		// delivery ended with its owner, and was its last.
		if st == Available && int(b.DeliveryCount) >= p.cfg.DeliveryCountLimit {
			st = Archived
		}
		for off := b.First; off <= b.Last; off++ {
			p.window[off-s.StartOffset] = record{state: st, deliveries: b.DeliveryCount}
		}
	}
	p.advance()
	return p, nil
}

// NextCandidate is the first offset Acquire would hand out at now: the
// oldest available record in the window, or Next. The caller reads the
// log from there before acquiring.
func (p *Partition) NextCandidate(now time.Time) int64 {
	p.Expire(now)
	for i := range p.window {
		if p.window[i].state == Available {
			return p.start + int64(i)
		}
	}
	return p.Next()
}
