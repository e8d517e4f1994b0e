package sharecoord

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharepart"
)

// groupStates are one group's share partitions that this agent leads.
// turn serialises everything done to them, store I/O and record reads
// included, so a share partition's changes and writes keep one order.
type groupStates struct {
	turn   chan struct{}
	loaded bool
	parts  map[TP]*partState
	// evicted is set (with c.mu and the turn held) when the entry is
	// dropped from Coordinator.states; a request that reaches its turn
	// afterwards looks the group up again.
	evicted bool
	// inFlight is the sum of the parts' in-flight offsets as last
	// observed, read by the metrics without the turn.
	inFlight atomic.Int64
}

type partState struct {
	p          *sharepart.Partition
	version    int64
	stateEpoch int32
	// seen and inFlight are what the metrics last observed.
	seen     sharepart.Counts
	inFlight int64
}

func (c *Coordinator) groupStates(group string) (*groupStates, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := c.states[group]
	if gs == nil {
		if len(c.states) >= c.opts.MaxGroups && !c.evictIdleStates() {
			return nil, errTooManyGroups
		}
		gs = &groupStates{turn: make(chan struct{}, 1), parts: map[TP]*partState{}}
		c.states[group] = gs
	}
	return gs, nil
}

// evictIdleStates drops one group's share partitions that no request is
// using. Its stored state stays; its locks are lost, so its acquired
// records are delivered again. c.mu is held.
func (c *Coordinator) evictIdleStates() bool {
	for name, gs := range c.states {
		select {
		case gs.turn <- struct{}{}:
			gs.evicted = true
			delete(c.states, name)
			<-gs.turn
			return true
		default:
		}
	}
	return false
}

// take waits for the group's turn and loads its stored states the first
// time.
func (c *Coordinator) take(ctx context.Context, group string) (*groupStates, error) {
	var gs *groupStates
	for {
		var err error
		if gs, err = c.groupStates(group); err != nil {
			return nil, err
		}
		select {
		case gs.turn <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		evicted := gs.evicted
		c.mu.Unlock()
		if !evicted {
			break
		}
		<-gs.turn
	}
	if gs.loaded {
		return gs, nil
	}
	stored, err := c.store.LoadShareStates(ctx, group)
	if err != nil {
		<-gs.turn
		return nil, err
	}
	gs.parts = map[TP]*partState{}
	for _, st := range stored {
		p, err := sharepart.Restore(c.opts.Partition, toSnapshot(st))
		if err != nil {
			c.log.Error("share partition state unreadable, starting it again", "group", group, "partition", st.Partition, "err", err)
			continue
		}
		tp := TP{st.TopicID, st.Partition}
		gs.parts[tp] = &partState{p: p, version: st.Version, stateEpoch: st.StateEpoch}
		c.observe(gs, tp, gs.parts[tp])
	}
	gs.loaded = true
	return gs, nil
}

// forget drops the group's states from memory, so the next request loads
// them from the store again: another agent wrote them, or a write failed
// and memory is ahead of the store.
func (gs *groupStates) forget() {
	gs.loaded = false
	gs.parts = map[TP]*partState{}
	gs.inFlight.Store(0)
}

func toSnapshot(st metastore.ShareState) sharepart.Snapshot {
	s := sharepart.Snapshot{StartOffset: st.StartOffset, Batches: make([]sharepart.Batch, len(st.Batches))}
	for i, b := range st.Batches {
		s.Batches[i] = sharepart.Batch{First: b.First, Last: b.Last, State: sharepart.State(b.State), DeliveryCount: b.DeliveryCount}
	}
	return s
}

func fromSnapshot(tp TP, ps *partState) metastore.ShareState {
	s := ps.p.Snapshot()
	st := metastore.ShareState{TopicID: tp.Topic, Partition: tp.Partition, StateEpoch: ps.stateEpoch,
		StartOffset: s.StartOffset, Version: ps.version, Batches: make([]metastore.ShareBatch, len(s.Batches))}
	for i, b := range s.Batches {
		st.Batches[i] = metastore.ShareBatch{First: b.First, Last: b.Last, State: int8(b.State), DeliveryCount: b.DeliveryCount}
	}
	return st
}

// write stores the states of tps in one call; on failure the group's
// memory is dropped, as it may be ahead of the store or another agent's.
func (c *Coordinator) write(ctx context.Context, group string, gs *groupStates, tps []TP) error {
	if len(tps) == 0 {
		return nil
	}
	states := make([]metastore.ShareState, len(tps))
	for i, tp := range tps {
		states[i] = fromSnapshot(tp, gs.parts[tp])
	}
	versions, err := c.store.WriteShareStates(ctx, group, states)
	if err != nil {
		c.log.Warn("share partition states not written; reloading them", "group", group, "partitions", len(tps), "err", err)
		gs.forget()
		return err
	}
	for i, tp := range tps {
		gs.parts[tp].version = versions[i]
	}
	return nil
}

// Offsets are a partition's bounds as a share fetch sees them.
type Offsets struct {
	LogStart int64
	// End is the first offset a share group may not deliver yet: the
	// high watermark (read_uncommitted) or the last stable offset
	// (read_committed).
	End int64
	// ForTime, when set, is the first offset whose record's timestamp is
	// at or after ms (End when none is), for share.auto.offset.reset
	// by_duration; it is called only for a share partition's start.
	ForTime func(ms int64) int64
}

// Read is what a ReadFunc returns.
type Read struct {
	// Records are whole batches, at least one if there is one.
	Records []byte
	// End is the offset after the last record returned.
	End int64
	// Skip lists offsets of Records no member may be handed (records of
	// aborted transactions and transaction markers, for a read_committed
	// group), sorted; they are archived.
	Skip []sharepart.Span
}

// ReadFunc reads records of a partition from offset from.
type ReadFunc func(ctx context.Context, from int64) (Read, error)

// Fetched is what a ShareFetch returns for one partition.
type Fetched struct {
	Records  []byte
	Acquired []sharepart.Acquisition
}

// maxSkippingReads bounds the reads of one Acquire that found only
// offsets to skip, so that a long aborted transaction costs a few
// requests rather than one read per request.
const maxSkippingReads = 4

// Acquire hands member up to maxRecords records of a partition: it
// creates the share partition at share.auto.offset.reset the first time
// (and stores it), moves its start over records retention removed, reads
// from the first record it could hand out and acquires what was read.
func (c *Coordinator) Acquire(ctx context.Context, group, member string, tp TP, maxRecords int, offs Offsets, read ReadFunc) (Fetched, int16) {
	gs, err := c.take(ctx, group)
	if err != nil {
		return Fetched{}, errCode(err)
	}
	defer func() { <-gs.turn }()
	now := c.opts.Now()
	ps := gs.parts[tp]
	if ps == nil {
		start := c.opts.Reset.StartOffset(now, offs.LogStart, offs.End, offs.ForTime)
		ps = &partState{p: sharepart.New(c.opts.Partition, start)}
		gs.parts[tp] = ps
		if err := c.write(ctx, group, gs, []TP{tp}); err != nil {
			return Fetched{}, errCode(err)
		}
		c.log.Info("share partition started", "group", group, "partition", tp.Partition, "start", start)
	}
	defer c.observe(gs, tp, ps)
	ps.p.AdvanceStart(offs.LogStart)
	for range maxSkippingReads {
		from := ps.p.NextCandidate(now)
		if from >= offs.End {
			return Fetched{}, 0
		}
		rd, err := read(ctx, from)
		if err != nil {
			return Fetched{}, errCode(err)
		}
		acq := ps.p.AcquireSkipping(now, member, maxRecords, min(rd.End, offs.End), rd.Skip)
		if len(acq) > 0 {
			return Fetched{Records: rd.Records, Acquired: acq}, 0
		}
		if len(rd.Skip) == 0 || ps.p.NextCandidate(now) <= from {
			return Fetched{}, 0
		}
	}
	return Fetched{}, 0
}

// Acknowledge applies member's acknowledgements and stores every share
// partition they changed in one write before answering, per partition:
// 0, INVALID_RECORD_STATE (records the member does not hold),
// INVALID_REQUEST (malformed batches), or the write's error.
func (c *Coordinator) Acknowledge(ctx context.Context, group, member string, acks map[TP][]sharepart.AckBatch) map[TP]int16 {
	codes := make(map[TP]int16, len(acks))
	gs, err := c.take(ctx, group)
	if err != nil {
		for tp := range acks {
			codes[tp] = errCode(err)
		}
		return codes
	}
	defer func() { <-gs.turn }()
	now := c.opts.Now()
	var changed []TP
	for tp, batches := range acks {
		ps := gs.parts[tp]
		if ps == nil {
			codes[tp] = kerr.InvalidRecordState.Code
			continue
		}
		codes[tp] = ps.p.Acknowledge(now, member, batches)
		c.observe(gs, tp, ps)
		if codes[tp] == 0 {
			changed = append(changed, tp)
		}
	}
	if err := c.write(ctx, group, gs, changed); err != nil {
		for _, tp := range changed {
			codes[tp] = errCode(err)
		}
	}
	return codes
}

// Release makes the records member holds on tps available again: its
// share session closed, or it forgot the partitions.
func (c *Coordinator) Release(ctx context.Context, group, member string, tps []TP) error {
	gs, err := c.take(ctx, group)
	if err != nil {
		return fmt.Errorf("release %s's records of group %s: %w", member, group, err)
	}
	defer func() { <-gs.turn }()
	for _, tp := range tps {
		if ps := gs.parts[tp]; ps != nil {
			ps.p.ReleaseMember(member)
			c.observe(gs, tp, ps)
		}
	}
	return nil
}

// PartitionState describes one share partition, for tests and tools.
type PartitionState struct {
	Start, Next int64
	Records     []sharepart.Record
}

// Partition describes a share partition this agent holds; ok is false
// when it holds none.
func (c *Coordinator) Partition(ctx context.Context, group string, tp TP) (PartitionState, bool, error) {
	gs, err := c.take(ctx, group)
	if err != nil {
		return PartitionState{}, false, err
	}
	defer func() { <-gs.turn }()
	ps := gs.parts[tp]
	if ps == nil {
		return PartitionState{}, false, nil
	}
	ps.p.Expire(c.opts.Now())
	return PartitionState{Start: ps.p.Start(), Next: ps.p.Next(), Records: ps.p.Records()}, true, nil
}
