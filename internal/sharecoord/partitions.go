package sharecoord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharepart"
)

// Concurrency. Requests of one group run concurrently on an agent: each
// share partition has its own mutex, held only while its state machine
// runs (never across a record read or a store write), and the group's
// writes go through one committer that batches them (group commit):
// every change waiting to be stored when a write starts goes into the
// next one, one WriteShareStates call for all the group's partitions
// that changed. Lock order: Coordinator.mu before groupStates.mu;
// committer.mu before partState.mu; none is held across I/O.
//
// What is durable before an answer (docs/share-groups.md): an
// acknowledgement, always (Acknowledge returns only after the write that
// holds it); a new share partition's start offset, before its first
// records are handed out (so that the next owner starts at the same
// place); and an acquisition, before its records are handed out: the
// write compares the version this agent last wrote, so an agent that
// lost the partition to another (which wrote since) cannot deliver, even
// while the agents' views of who leads it disagree (the fence). A
// request's acknowledgements and acquisitions go into one write
// (Changes). Releases, lock expiries and the archiving of skipped offsets
// are not waited for: they ride along with the next write. Losing them
// loses a delivery in progress (the record comes back available with the
// delivery count of the last write, and is delivered again) or a
// decision the next owner makes again from the log.

// groupStates are one group's share partitions that this agent leads.
type groupStates struct {
	// users counts the requests using the entry (under Coordinator.mu);
	// only an entry nobody uses is evicted.
	users int
	// evicted is set when the entry is dropped from Coordinator.states
	// (idle, or a write failed so memory may be ahead of the store); a
	// request holding it answers an error rather than acquire from, or
	// acknowledge into, memory the store no longer follows.
	evicted atomic.Bool
	// generation is the agents' view generation (Options.ViewGeneration)
	// the entry was created under; under another one it is dropped.
	generation uint64

	// load is held while the stored states are read, the first time.
	load   sync.Mutex
	loaded bool

	mu    sync.Mutex // guards parts
	parts map[TP]*partState

	// cfg is the group's configs as the share partitions last applied
	// them (under mu).
	cfg GroupConfig

	commit committer
	// inFlight is the sum of the parts' in-flight offsets as last
	// observed, read by the metrics.
	inFlight atomic.Int64
}

type partState struct {
	mu         sync.Mutex
	p          *sharepart.Partition
	version    int64 // of the last write; only the committer's write moves it
	stateEpoch int32
	// changes counts the changes to be stored; stored is the value of
	// changes that the last successful write held.
	changes, stored uint64
	// fresh is set on a share partition created here until its first
	// write: its start offset is not durable yet.
	fresh bool
	// seen and inFlight are what the metrics last observed.
	seen     sharepart.Counts
	inFlight int64
}

// errEvicted answers a request whose group's states were dropped from
// memory while it ran (a write failed, or another agent's write was
// seen): the client retries, and the next request loads the store.
var errEvicted = errors.New("share partition states dropped from memory")

func (c *Coordinator) groupStates(group string) (*groupStates, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.opts.ViewGeneration()
	gs := c.states[group]
	if gs != nil && gs.generation != gen {
		// The live agents changed since these states were read: one of
		// the group's share partitions may have been led elsewhere in
		// the meantime (this agent lost it and got it back), and what
		// was acknowledged there is in the store, not here. Requests
		// still holding the old entry find it evicted.
		gs.evicted.Store(true)
		delete(c.states, group)
		gs = nil
		c.metrics.viewReloads.Inc()
	}
	if gs == nil {
		if len(c.states) >= c.opts.MaxGroups && !c.evictIdleStates() {
			return nil, errTooManyGroups
		}
		gs = &groupStates{parts: map[TP]*partState{}, generation: gen}
		c.states[group] = gs
	}
	gs.users++
	return gs, nil
}

// done ends a request's use of gs.
func (c *Coordinator) done(gs *groupStates) {
	c.mu.Lock()
	gs.users--
	c.mu.Unlock()
}

// evictIdleStates drops one group's share partitions that no request is
// using. Its stored state stays; its locks are lost, so its acquired
// records are delivered again. c.mu is held.
func (c *Coordinator) evictIdleStates() bool {
	for name, gs := range c.states {
		if gs.users == 0 {
			gs.evicted.Store(true)
			delete(c.states, name)
			return true
		}
	}
	return false
}

// evict drops gs from memory if it is still the group's entry.
func (c *Coordinator) evict(group string, gs *groupStates) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs.evicted.Store(true)
	if c.states[group] == gs {
		delete(c.states, group)
	}
}

// take returns the group's states, loading them from the store the
// first time; the caller calls c.done when finished with them.
func (c *Coordinator) take(ctx context.Context, group string) (*groupStates, error) {
	gs, err := c.groupStates(group)
	if err != nil {
		return nil, err
	}
	cfg := c.Config(ctx, group)
	gs.load.Lock()
	defer gs.load.Unlock()
	if gs.loaded {
		gs.apply(cfg)
		return gs, nil
	}
	stored, err := c.store.LoadShareStates(ctx, group)
	if err != nil {
		c.done(gs)
		return nil, err
	}
	parts := map[TP]*partState{}
	for _, st := range stored {
		p, err := sharepart.Restore(cfg.Partition, toSnapshot(st))
		if err != nil {
			c.log.Error("share partition state unreadable, starting it again", "group", group, "partition", st.Partition, "err", err)
			continue
		}
		tp := TP{st.TopicID, st.Partition}
		ps := &partState{p: p, version: st.Version, stateEpoch: st.StateEpoch}
		parts[tp] = ps
		c.observe(gs, ps)
	}
	gs.mu.Lock()
	gs.parts = parts
	gs.cfg = cfg
	gs.mu.Unlock()
	gs.loaded = true
	return gs, nil
}

// apply makes the share partitions follow changed group configs.
func (gs *groupStates) apply(cfg GroupConfig) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.cfg == cfg {
		return
	}
	gs.cfg = cfg
	for _, ps := range gs.parts {
		ps.mu.Lock()
		ps.p.SetConfig(cfg.Partition)
		ps.mu.Unlock()
	}
}

// part returns a share partition's state, nil if there is none.
func (gs *groupStates) part(tp TP) *partState {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.parts[tp]
}

func toSnapshot(st metastore.ShareState) sharepart.Snapshot {
	s := sharepart.Snapshot{StartOffset: st.StartOffset, Batches: make([]sharepart.Batch, len(st.Batches))}
	for i, b := range st.Batches {
		s.Batches[i] = sharepart.Batch{First: b.First, Last: b.Last, State: sharepart.State(b.State), DeliveryCount: b.DeliveryCount}
	}
	return s
}

// fromSnapshot captures ps for a write; ps.mu is held.
func fromSnapshot(tp TP, ps *partState) metastore.ShareState {
	s := ps.p.Snapshot()
	st := metastore.ShareState{TopicID: tp.Topic, Partition: tp.Partition, StateEpoch: ps.stateEpoch,
		StartOffset: s.StartOffset, Version: ps.version, Batches: make([]metastore.ShareBatch, len(s.Batches))}
	for i, b := range s.Batches {
		st.Batches[i] = metastore.ShareBatch{First: b.First, Last: b.Last, State: int8(b.State), DeliveryCount: b.DeliveryCount}
	}
	return st
}

// committer batches a group's writes: changes marked while a write is
// in flight go into the next one.
type committer struct {
	mu      sync.Mutex
	dirty   map[TP]*partState
	waiters []chan error
	running bool
}

// storeWriteTimeout bounds one write of a group's states.
const storeWriteTimeout = 30 * time.Second

// changed records a change of ps (ps.mu held) to be stored, returning
// the count a write must reach for it to be durable.
func (ps *partState) changed() uint64 {
	ps.changes++
	return ps.changes
}

// mark queues ps for the next write without waiting for it: a change
// that need not be durable before anything is answered.
func (c *Coordinator) mark(gs *groupStates, tp TP, ps *partState) {
	gs.commit.mu.Lock()
	if gs.commit.dirty == nil {
		gs.commit.dirty = map[TP]*partState{}
	}
	gs.commit.dirty[tp] = ps
	gs.commit.mu.Unlock()
}

// want is a change a request waits to see stored.
type want struct {
	tp      TP
	ps      *partState
	changes uint64
}

// persist waits until the changes of ws are stored: by a write already
// under way, or by the next one, which this call starts when none is
// running. It fails when the write holding them fails (the group is then
// dropped from memory) or ctx ends first (the change may still be
// stored).
func (c *Coordinator) persist(ctx context.Context, group string, gs *groupStates, ws []want) error {
	if len(ws) == 0 {
		return nil
	}
	cm := &gs.commit
	done := make(chan error, 1)
	cm.mu.Lock()
	if cm.dirty == nil {
		cm.dirty = map[TP]*partState{}
	}
	pending := false
	for _, w := range ws {
		w.ps.mu.Lock()
		stored := w.ps.stored
		w.ps.mu.Unlock()
		if stored < w.changes {
			cm.dirty[w.tp] = w.ps
			pending = true
		}
	}
	if !pending {
		cm.mu.Unlock()
		return nil
	}
	cm.waiters = append(cm.waiters, done)
	if !cm.running {
		cm.running = true
		go c.flush(group, gs)
	}
	cm.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush writes the group's dirty partitions until none are left, each
// write answering the waiters that were queued when it started.
func (c *Coordinator) flush(group string, gs *groupStates) {
	cm := &gs.commit
	for {
		cm.mu.Lock()
		if len(cm.waiters) == 0 {
			// Marked changes without a waiter ride along with the next
			// write someone waits for.
			cm.running = false
			cm.mu.Unlock()
			return
		}
		dirty, waiters := cm.dirty, cm.waiters
		cm.dirty, cm.waiters = map[TP]*partState{}, nil
		cm.mu.Unlock()
		err := c.writeStates(group, gs, dirty)
		for _, w := range waiters {
			w <- err
		}
		if err != nil {
			cm.mu.Lock()
			rest := cm.waiters
			cm.waiters, cm.dirty, cm.running = nil, nil, false
			cm.mu.Unlock()
			for _, w := range rest {
				w <- err
			}
			return
		}
	}
}

// writeStates stores the states of parts in one call; on failure the
// group's memory is dropped, as it may be ahead of the store or of
// another agent's.
func (c *Coordinator) writeStates(group string, gs *groupStates, parts map[TP]*partState) error {
	if gs.evicted.Load() {
		return errEvicted
	}
	if len(parts) == 0 {
		return nil
	}
	tps := make([]TP, 0, len(parts))
	states := make([]metastore.ShareState, 0, len(parts))
	marks := make([]uint64, 0, len(parts))
	for tp, ps := range parts {
		ps.mu.Lock()
		tps = append(tps, tp)
		states = append(states, fromSnapshot(tp, ps))
		marks = append(marks, ps.changes)
		ps.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeWriteTimeout)
	defer cancel()
	versions, err := c.store.WriteShareStates(ctx, group, states)
	if err != nil {
		c.log.Warn("share partition states not written; reloading them", "group", group, "partitions", len(tps), "err", err)
		c.evict(group, gs)
		return err
	}
	c.writes.Add(1)
	for i, tp := range tps {
		ps := parts[tp]
		ps.mu.Lock()
		ps.version = versions[i]
		ps.stored = max(ps.stored, marks[i])
		ps.fresh = false
		ps.mu.Unlock()
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
	// Batches, when set, are the record batches of Records in order:
	// their offsets and where each ends in Records. Acquire then hands
	// out whole batches (MaxRecords is a soft limit, as in Kafka's
	// batch-optimized acquire mode) and returns only the batches that
	// hold acquired records, so a client decodes each batch about once
	// rather than once per fetch that takes a part of it.
	Batches []Batch
}

// Batch is one record batch of a Read.
type Batch struct {
	First, Last int64
	// End is the byte offset in Read.Records after the batch.
	End int
}

// ReadFunc reads records of a partition from offset from.
type ReadFunc func(ctx context.Context, from int64) (Read, error)

// Fetched is what a ShareFetch returns for one partition.
type Fetched struct {
	Records  []byte
	Acquired []sharepart.Acquisition
}

// maxSkippingReads bounds the reads of one Acquire that found only
// offsets to skip, or lost the records it read to a concurrent request,
// so that a long aborted transaction costs a few requests rather than
// one read per request.
const maxSkippingReads = 4

// Acquire hands member up to maxRecords records of a partition: it
// creates the share partition at share.auto.offset.reset the first time
// (and stores it), moves its start over records retention removed, reads
// from the first record it could hand out and acquires what was read.
// The read runs without the partition's lock, so requests of one group
// acquire concurrently; what another request took meanwhile is not
// acquired twice (the state machine decides under the lock).
//
// The acquisition is stored before Acquire returns (see AcquireInto).
func (c *Coordinator) Acquire(ctx context.Context, group, member string, tp TP, maxRecords int, offs Offsets, read ReadFunc) (Fetched, int16) {
	return c.acquireStored(ctx, group, member, tp, maxRecords, false, offs, read)
}

// AcquireStrict is Acquire in the record-limit acquire mode (ShareFetch
// v2, KIP-1206): never more than maxRecords, even inside a batch.
func (c *Coordinator) AcquireStrict(ctx context.Context, group, member string, tp TP, maxRecords int, offs Offsets, read ReadFunc) (Fetched, int16) {
	return c.acquireStored(ctx, group, member, tp, maxRecords, true, offs, read)
}

func (c *Coordinator) acquireStored(ctx context.Context, group, member string, tp TP, maxRecords int, strict bool, offs Offsets, read ReadFunc) (Fetched, int16) {
	ch := c.Changes(group)
	f, code := c.AcquireInto(ctx, ch, member, tp, maxRecords, strict, offs, read)
	if failed := ch.Store(ctx); failed[tp] != 0 {
		return Fetched{}, failed[tp]
	}
	return f, code
}

// AcquireInto is Acquire (strict: AcquireStrict) that leaves the
// acquisition's write to ch: its records may be handed to the member
// only once ch.Store reports the partition stored. A write that fails
// (another agent wrote the partition since this one last did: it leads
// it now) drops the group's memory here, acquisitions included, and the
// records must not be sent.
func (c *Coordinator) AcquireInto(ctx context.Context, ch *Changes, member string, tp TP, maxRecords int, strict bool, offs Offsets, read ReadFunc) (Fetched, int16) {
	group := ch.group
	gs, err := c.take(ctx, group)
	if err != nil {
		return Fetched{}, errCode(err)
	}
	defer c.done(gs)
	ps, err := c.partition(ctx, group, gs, tp, offs)
	if err != nil {
		return Fetched{}, errCode(err)
	}
	for range maxSkippingReads {
		if gs.evicted.Load() {
			return Fetched{}, errCode(errEvicted)
		}
		ps.mu.Lock()
		now := c.opts.Now()
		ps.p.AdvanceStart(offs.LogStart)
		from := ps.p.NextCandidate(now)
		c.observe(gs, ps)
		ps.mu.Unlock()
		if from >= offs.End {
			return Fetched{}, 0
		}
		rd, err := read(ctx, from)
		if err != nil {
			return Fetched{}, errCode(err)
		}
		ps.mu.Lock()
		before := ps.p.Counts().Archived
		end := min(rd.End, offs.End)
		acq := ps.p.AcquireFrom(c.opts.Now(), member, maxRecords, from, end, rd.Skip)
		if b, ok := batchOf(rd.Batches, lastOf(acq)); ok && !strict && b.Last > lastOf(acq) && b.Last < end {
			// The limit fell inside a batch: take the rest of it too.
			more := ps.p.AcquireFrom(c.opts.Now(), member, int(b.Last-lastOf(acq)), lastOf(acq)+1, b.Last+1, rd.Skip)
			acq = appendAcquisitions(acq, more)
		}
		if ps.p.Counts().Archived != before {
			ps.changed()
		}
		var w want
		if len(acq) > 0 {
			w = want{tp, ps, ps.changed()}
		}
		next := ps.p.NextCandidate(c.opts.Now())
		c.observe(gs, ps)
		ps.mu.Unlock()
		if len(rd.Skip) > 0 {
			c.mark(gs, tp, ps)
		}
		if len(acq) > 0 {
			ch.add(gs, w)
			return Fetched{Records: trim(rd, acq), Acquired: acq}, 0
		}
		if next >= offs.End || next <= from {
			// Nothing left to hand out, or nothing moved on: read again
			// only past offsets skipped or taken by another request.
			return Fetched{}, 0
		}
	}
	return Fetched{}, 0
}

// HeldBy reports whether tp's share partition has nothing to hand out
// below end only because its in-flight window is full, partly of records
// member holds (sharepart.Partition.HeldBy): a ShareFetch of member that
// waited for records would wait for its own acknowledgements, which the
// client sends with its next request. False when the agent holds no
// state for the partition.
func (c *Coordinator) HeldBy(ctx context.Context, group, member string, tp TP, end int64) bool {
	gs, err := c.take(ctx, group)
	if err != nil {
		return false
	}
	defer c.done(gs)
	ps := gs.part(tp)
	if ps == nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	held := ps.p.HeldBy(c.opts.Now(), member, end)
	c.observe(gs, ps)
	return held
}

// partition returns tp's share partition, creating it at
// share.auto.offset.reset and storing it before it is used.
func (c *Coordinator) partition(ctx context.Context, group string, gs *groupStates, tp TP, offs Offsets) (*partState, error) {
	gs.mu.Lock()
	ps := gs.parts[tp]
	if ps == nil {
		start := gs.cfg.Reset.StartOffset(c.opts.Now(), offs.LogStart, offs.End, offs.ForTime)
		ps = &partState{p: sharepart.New(gs.cfg.Partition, start), fresh: true}
		ps.changed()
		gs.parts[tp] = ps
		c.log.Info("share partition started", "group", group, "partition", tp.Partition, "start", start)
	}
	gs.mu.Unlock()
	ps.mu.Lock()
	fresh := ps.fresh
	ps.mu.Unlock()
	if fresh {
		// Until its first write, a new share partition's start offset
		// is not durable: every request waits for it.
		if err := c.persist(ctx, group, gs, []want{{tp, ps, 1}}); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// Acknowledge applies member's acknowledgements and stores every share
// partition they changed before answering, per partition: 0,
// INVALID_RECORD_STATE (records the member does not hold),
// INVALID_REQUEST (malformed batches), or the write's error. The write
// is shared with the group's other requests (group commit).
func (c *Coordinator) Acknowledge(ctx context.Context, group, member string, acks map[TP][]sharepart.AckBatch) map[TP]int16 {
	ch := c.Changes(group)
	codes := c.AcknowledgeInto(ctx, ch, member, acks)
	for tp, code := range ch.Store(ctx) {
		codes[tp] = code
	}
	return codes
}

// AcknowledgeInto applies member's acknowledgements in memory and
// returns their codes, leaving their write to ch: the codes must not be
// answered before ch.Store, whose failures replace them. The caller may
// read and acquire records meanwhile (the ShareFetch of the
// acknowledgements), whose acquisitions then go into the same write.
func (c *Coordinator) AcknowledgeInto(ctx context.Context, ch *Changes, member string, acks map[TP][]sharepart.AckBatch) map[TP]int16 {
	codes := make(map[TP]int16, len(acks))
	gs, err := c.take(ctx, ch.group)
	if err != nil {
		for tp := range acks {
			codes[tp] = errCode(err)
		}
		return codes
	}
	defer c.done(gs)
	if gs.evicted.Load() {
		for tp := range acks {
			codes[tp] = errCode(errEvicted)
		}
		return codes
	}
	for tp, batches := range acks {
		ps := gs.part(tp)
		if ps == nil {
			codes[tp] = kerr.InvalidRecordState.Code
			continue
		}
		ps.mu.Lock()
		codes[tp] = ps.p.Acknowledge(c.opts.Now(), member, batches)
		var w want
		if codes[tp] == 0 {
			w = want{tp, ps, ps.changed()}
		}
		c.observe(gs, ps)
		ps.mu.Unlock()
		if codes[tp] == 0 {
			ch.add(gs, w)
		}
	}
	return codes
}

// Changes collects what one request changed in memory and must store
// before it answers (acknowledgements, acquisitions), so that they go
// into one write, shared with the group's concurrent requests. Not safe
// for concurrent use; every Changes with changes must be Stored (the
// group's memory stays in use until then).
type Changes struct {
	c     *Coordinator
	group string
	pend  []pendingWant
}

type pendingWant struct {
	gs *groupStates
	w  want
}

// Changes starts collecting a request's changes of group.
func (c *Coordinator) Changes(group string) *Changes { return &Changes{c: c, group: group} }

// add queues a change; gs stays in use (not evicted as idle) until
// Store has written it.
func (ch *Changes) add(gs *groupStates, w want) {
	ch.c.mu.Lock()
	gs.users++
	ch.c.mu.Unlock()
	ch.pend = append(ch.pend, pendingWant{gs, w})
}

// Store writes the changes collected since the last Store and returns
// the partitions whose write failed, with the error code to answer
// (NOT_LEADER_OR_FOLLOWER when another agent wrote the partition since
// this one did); nil when all are stored.
func (ch *Changes) Store(ctx context.Context) map[TP]int16 {
	pend := ch.pend
	ch.pend = nil
	if len(pend) == 0 {
		return nil
	}
	// Usually one entry: the group's memory is replaced only when it was
	// dropped, and a write to dropped memory fails (errEvicted).
	var order []*groupStates
	by := map[*groupStates][]want{}
	for _, p := range pend {
		if _, ok := by[p.gs]; !ok {
			order = append(order, p.gs)
		}
		by[p.gs] = append(by[p.gs], p.w)
	}
	defer func() {
		for _, p := range pend {
			ch.c.done(p.gs)
		}
	}()
	var failed map[TP]int16
	for _, gs := range order {
		if err := ch.c.persist(ctx, ch.group, gs, by[gs]); err != nil {
			if failed == nil {
				failed = map[TP]int16{}
			}
			for _, w := range by[gs] {
				failed[w.tp] = errCode(err)
			}
		}
	}
	return failed
}

// Release makes the records member holds on tps available again: its
// share session closed, or its connection. The share partitions are
// stored before it returns (a session's end is rare, and the group may
// be dropped from memory next, ForgetIdle, which must not lose the
// delivery counts of the records released).
func (c *Coordinator) Release(ctx context.Context, group, member string, tps []TP) error {
	if len(tps) == 0 {
		return nil
	}
	gs, err := c.take(ctx, group)
	if err != nil {
		return fmt.Errorf("release %s's records of group %s: %w", member, group, err)
	}
	defer c.done(gs)
	var ws []want
	for _, tp := range tps {
		if ps := gs.part(tp); ps != nil {
			ps.mu.Lock()
			ps.p.ReleaseMember(member)
			// Written even when this member held nothing: the
			// partition may hold other changes not stored yet.
			ws = append(ws, want{tp, ps, ps.changed()})
			c.observe(gs, ps)
			ps.mu.Unlock()
		}
	}
	if err := c.persist(ctx, group, gs, ws); err != nil {
		return fmt.Errorf("store the release of %s's records of group %s: %w", member, group, err)
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
	defer c.done(gs)
	ps := gs.part(tp)
	if ps == nil {
		return PartitionState{}, false, nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.p.Expire(c.opts.Now())
	c.observe(gs, ps)
	return PartitionState{Start: ps.p.Start(), Next: ps.p.Next(), Records: ps.p.Records()}, true, nil
}

func lastOf(acq []sharepart.Acquisition) int64 {
	if len(acq) == 0 {
		return -1
	}
	return acq[len(acq)-1].Last
}

// batchOf finds the batch holding offset off.
func batchOf(batches []Batch, off int64) (Batch, bool) {
	i, found := slices.BinarySearchFunc(batches, off, func(b Batch, off int64) int {
		switch {
		case b.Last < off:
			return -1
		case b.First > off:
			return 1
		}
		return 0
	})
	if !found {
		return Batch{}, false
	}
	return batches[i], true
}

// appendAcquisitions appends more to acq, merging runs that meet with
// the same delivery count.
func appendAcquisitions(acq, more []sharepart.Acquisition) []sharepart.Acquisition {
	for _, a := range more {
		if n := len(acq); n > 0 && acq[n-1].Last+1 == a.First && acq[n-1].DeliveryCount == a.DeliveryCount {
			acq[n-1].Last = a.Last
			continue
		}
		acq = append(acq, a)
	}
	return acq
}

// trim returns the batches of rd that hold acquired offsets, from the
// first such batch to the last: the records read past the last acquired
// one are not sent.
func trim(rd Read, acq []sharepart.Acquisition) []byte {
	if len(rd.Batches) == 0 || len(acq) == 0 {
		return rd.Records
	}
	first, last := acq[0].First, lastOf(acq)
	start, end := 0, len(rd.Records)
	for i, b := range rd.Batches {
		if b.Last < first {
			start = b.End
		}
		if b.First <= last && b.Last >= last {
			end = b.End
			break
		}
		if i == len(rd.Batches)-1 {
			end = b.End
		}
	}
	if start > end || end > len(rd.Records) {
		return rd.Records
	}
	return rd.Records[start:end]
}
