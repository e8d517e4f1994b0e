// Package coordinator runs consumer groups on an agent: it wraps each
// group's pure state machine (internal/groups for the classic protocol,
// internal/groups/consumer for KIP-848's consumer protocol) with a turn
// and a lock (docs/locking.md), a timer, the connections waiting for a
// rebalance, and the metadata store, which holds the committed offsets
// and each group's durable state.
//
// A group is either classic or consumer: the first request of either
// protocol decides, and an empty group changes protocol when a request of
// the other protocol arrives. A classic group with members becomes a
// consumer group when a ConsumerGroupHeartbeat joins it, and a consumer
// group left with classic members only becomes classic again, as
// group.consumer.migration.policy allows (KIP-848's online migration);
// classic members of a consumer group are served by its state machine.
//
// An agent coordinates the groups it owns (rendezvous hashing over the
// live agents; Options.Owns). It keeps membership in memory only: if the
// agent dies, the group's new owner loads the last stored state, so a
// stable group's members carry on with the same generation; a rebalance
// that was in flight is lost and its members rejoin. Committed offsets are
// written to the store before a commit is acknowledged, so none is lost.
//
// Two agents that both believe they own a group (while membership views
// converge) cannot overwrite each other's group state: SaveGroup compares
// versions, and a coordinator whose version is stale drops the group and
// answers NOT_COORDINATOR. Member commits also check the stored version
// first, so a deposed coordinator cannot accept a commit from a
// generation the new one has replaced.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
)

// Store is what the coordinator needs from the metadata store.
type Store interface {
	metastore.GroupStore
	// PendingTxnOffsets: OffsetFetch with RequireStable.
	PendingTxnOffsets(ctx context.Context, group string) ([]metastore.TopicPartition, error)
	Topics(ctx context.Context) ([]metastore.Topic, error)
	Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error)
}

// Options configure a Coordinator. Zero values take Kafka's defaults.
type Options struct {
	// Groups are the state machines' settings. Defaults: initial
	// rebalance delay 3s, session timeouts between 6s and 30m.
	Groups groups.Config
	// Consumer are the KIP-848 consumer groups' settings. Defaults:
	// session timeout 45s, heartbeat interval 5s, assignors uniform and
	// range, no size limit.
	Consumer consumer.Config
	// OffsetsRetention is offsets.retention.minutes: offsets of a group
	// without members older than this are deleted (default 7 days).
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms
	// (default 10 minutes).
	RetentionCheckInterval time.Duration
	// LagInterval is how often the lag gauges are refreshed from the store
	// (default 30s). Commits update them at once as well.
	LagInterval time.Duration
	// MaxGroups bounds the groups kept in memory at once (0: unlimited).
	// A request for a group beyond it is answered COORDINATOR_NOT_AVAILABLE
	// until idle groups are swept out; a client asking for many group
	// names cannot grow the coordinator without bound.
	MaxGroups int
	// Owns reports whether this agent coordinates group (default: all).
	Owns func(group string) bool
	// Racks returns the racks every partition can be read in, for the
	// consumer groups' rack-aware assignment (the zones of the live
	// agents that serve fetches); nil: racks unknown.
	Racks func() []string
	// Registerer receives the lag metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Coordinator runs the groups this agent owns. Safe for concurrent use.
type Coordinator struct {
	store   Store
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	tokens  atomic.Uint64

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// entry is one group in memory.
//
// turn is the group's turn, a one-slot semaphore: only its holder (a
// request, the group's timer, the background sweep, Close) changes the
// group, and it alone does the group's store I/O. The turn is held
// across that I/O on purpose: it keeps the group's transitions, its saves
// (each names the version the previous one returned) and the replies that
// wait for them in one order. Unlike a mutex, it is waited for with the
// request's context, and readers (List) need not wait for it.
//
// mu guards the fields below for readers without the turn (List); a
// field changes only with both held. mu is never held across I/O or a
// callback: the holder of the turn releases it around them (outside).
//
// Lock order (docs/locking.md): entry.turn, then entry.mu, then
// Coordinator.mu; nothing waits for a turn while holding a mutex.
type entry struct {
	turn chan struct{}
	mu   sync.Mutex
	name string
	// Exactly one of g (classic protocol) and cg (consumer protocol) is
	// set once the entry is loaded.
	g       *groups.Group
	cg      *consumer.Group
	version int64 // of the stored record; 0 when none
	stored  bool  // a record or offsets existed when loaded, or a save happened
	loadErr error
	dead    bool
	waiters map[groups.Token]chan groups.Reply
	timer   *time.Timer
}

// ErrNotCoordinator reports a group this agent does not coordinate.
var ErrNotCoordinator = errors.New("not the coordinator of this group")

// ErrTooManyGroups reports a group that would pass Options.MaxGroups; it
// is answered COORDINATOR_NOT_AVAILABLE, which clients retry.
var ErrTooManyGroups = errors.New("too many groups")

// New starts a coordinator; Close stops it.
func New(store Store, opts Options) *Coordinator {
	if opts.Groups.InitialRebalanceDelay < 0 {
		opts.Groups.InitialRebalanceDelay = 0
	} else if opts.Groups.InitialRebalanceDelay == 0 {
		opts.Groups.InitialRebalanceDelay = 3 * time.Second
	}
	if opts.Groups.MinSessionTimeout == 0 {
		opts.Groups.MinSessionTimeout = 6 * time.Second
	}
	if opts.Groups.MaxSessionTimeout == 0 {
		opts.Groups.MaxSessionTimeout = 30 * time.Minute
	}
	opts.Consumer = opts.Consumer.WithDefaults()
	if opts.OffsetsRetention <= 0 {
		opts.OffsetsRetention = 7 * 24 * time.Hour
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = 10 * time.Minute
	}
	if opts.LagInterval <= 0 {
		opts.LagInterval = 30 * time.Second
	}
	if opts.Owns == nil {
		opts.Owns = func(string) bool { return true }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Coordinator{
		store: store, opts: opts, log: opts.Logger, metrics: NewMetrics(opts.Registerer),
		entries: map[string]*entry{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go c.run()
	return c
}

// Config is the state machines' configuration in effect.
func (c *Coordinator) Config() groups.Config { return c.opts.Groups }

// Close answers every waiting request with NOT_COORDINATOR (members find
// the group's next coordinator) and stops the background work.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	entries := c.entries
	c.entries = map[string]*entry{}
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	for _, e := range entries {
		e.turn <- struct{}{} // waits for the I/O in flight, as requests end
		e.mu.Lock()
		c.kill(e, kerr.NotCoordinator.Code, groups.Effects{})
		c.unlock(e)
	}
}

func newMemberID(clientID string) string {
	return clientID + "-" + uuid.NewString()
}

// newConsumerMemberID makes the member ids of ConsumerGroupHeartbeat v0
// (from v1 members choose their own).
func newConsumerMemberID() string { return uuid.NewString() }

// lock returns the group's entry with its turn and its mutex held,
// loading it from the store when it is not in memory. The caller calls
// c.unlock(e). Waiting for another holder's turn ends with ctx.
func (c *Coordinator) lock(ctx context.Context, name string) (*entry, error) {
	if !c.opts.Owns(name) {
		return nil, ErrNotCoordinator
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrNotCoordinator
		}
		e, ok := c.entries[name]
		if !ok && c.opts.MaxGroups > 0 && len(c.entries) >= c.opts.MaxGroups {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %d groups in memory", ErrTooManyGroups, c.opts.MaxGroups)
		}
		if !ok {
			// A new entry is published with its turn already taken, so
			// no one touches it until it is loaded; the store is read
			// with no lock held.
			e = &entry{name: name, turn: make(chan struct{}, 1), waiters: map[groups.Token]chan groups.Reply{}}
			e.turn <- struct{}{}
			c.entries[name] = e
			c.mu.Unlock()
			rec, found, err := c.store.LoadGroup(ctx, name)
			e.mu.Lock()
			if err != nil {
				e.dead = true
				c.forget(e)
				c.unlock(e)
				return nil, fmt.Errorf("load group %q: %w", name, err)
			}
			c.install(e, rec, found)
			return e, nil
		}
		c.mu.Unlock()
		if err := e.takeTurn(ctx); err != nil {
			return nil, err
		}
		e.mu.Lock()
		if !e.dead {
			return e, nil
		}
		// Dropped while we waited: load it again.
		c.unlock(e)
	}
}

// takeTurn waits for the group's turn or the end of ctx. A free turn is
// taken even if ctx has ended, as the mutex it replaces was.
func (e *entry) takeTurn(ctx context.Context) error {
	select {
	case e.turn <- struct{}{}:
		return nil
	default:
	}
	select {
	case e.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlock releases what lock returned: the entry's mutex and its turn.
func (c *Coordinator) unlock(e *entry) {
	e.mu.Unlock()
	<-e.turn
}

// outside runs io, the group's store I/O or a callback, with e.mu
// released and the turn kept: no one else changes the group meanwhile,
// and List is not held up by it. e.mu is held again when it returns.
func (e *entry) outside(io func()) {
	e.mu.Unlock()
	defer e.mu.Lock()
	io()
}

func (c *Coordinator) forget(e *entry) {
	c.mu.Lock()
	if c.entries[e.name] == e {
		delete(c.entries, e.name)
	}
	c.mu.Unlock()
}

// install sets up a new entry from its stored record, e locked.
func (c *Coordinator) install(e *entry, rec metastore.Group, found bool) {
	now := c.opts.Now()
	if !found {
		e.g = groups.New(e.name, c.opts.Groups, newMemberID)
		return
	}
	if consumer.IsSnapshot(rec.Data) {
		snap, err := consumer.UnmarshalSnapshot(rec.Data)
		if err == nil {
			e.cg, err = consumer.Restore(e.name, c.opts.Consumer, newConsumerMemberID, snap, now)
		}
		if err != nil {
			c.log.Error("unreadable consumer group record, starting the group empty", "group", e.name, "err", err)
			e.cg = consumer.New(e.name, c.opts.Consumer, newConsumerMemberID)
		}
	} else {
		snap, err := groups.UnmarshalSnapshot(rec.Data)
		if err == nil {
			e.g, err = groups.Restore(e.name, c.opts.Groups, newMemberID, snap, now)
		}
		if err != nil {
			// A record we cannot read must not block the group forever:
			// start it empty (offsets are separate and stay).
			c.log.Error("unreadable group record, starting the group empty", "group", e.name, "err", err)
			e.g = groups.New(e.name, c.opts.Groups, newMemberID)
		}
	}
	e.version, e.stored = rec.Version, true
	switch {
	case e.cg != nil && e.cg.Len() > 0:
		c.log.Info("consumer group loaded", "group", e.name, "state", e.cg.State(), "epoch", e.cg.Epoch(), "members", e.cg.Len())
	case e.g != nil && e.g.Len() > 0:
		c.log.Info("group loaded", "group", e.name, "state", e.g.State(), "generation", e.g.Generation(), "members", e.g.Len())
		c.trace(e, "restored")
	}
	c.arm(e)
}

// members is the number of members of either protocol.
func (e *entry) members() int {
	if e.cg != nil {
		return e.cg.Len()
	}
	return e.g.Len()
}

// idle reports a group without members or requests in flight.
func (e *entry) idle() bool {
	if e.cg != nil {
		return e.cg.Idle()
	}
	return e.g.Idle()
}

// empty reports a group in the Empty state (offsets may expire, the group
// may be deleted).
func (e *entry) empty() bool {
	if e.cg != nil {
		return e.cg.Len() == 0
	}
	return e.g.State() == groups.Empty && e.g.Len() == 0
}

// record encodes the group for the store.
func (e *entry) record() (metastore.Group, error) {
	rec := metastore.Group{Name: e.name, Version: e.version}
	var err error
	if e.cg != nil {
		snap := e.cg.Snapshot()
		rec.ProtocolType, rec.State = consumer.Type, snap.State
		rec.Data, err = snap.Marshal()
	} else {
		snap := e.g.Snapshot()
		rec.ProtocolType, rec.State = e.g.ProtocolType(), snap.State
		rec.Data, err = snap.Marshal()
	}
	return rec, err
}

// apply carries out a state machine's effects with e locked.
func (c *Coordinator) apply(e *entry, eff groups.Effects) {
	if eff.Persist {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.persist(ctx, e)
		cancel()
		if err != nil {
			c.log.Warn("group state not saved; giving the group up", "group", e.name, "err", err)
			c.kill(e, kerr.NotCoordinator.Code, eff)
			return
		}
	}
	for _, r := range eff.Replies {
		c.deliver(e, r)
	}
	c.arm(e)
}

func (c *Coordinator) persist(ctx context.Context, e *entry) error {
	rec, err := e.record()
	if err != nil {
		return err
	}
	var v int64
	e.outside(func() { v, err = c.store.SaveGroup(ctx, rec) })
	if err != nil {
		return fmt.Errorf("save group %q: %w", e.name, err)
	}
	e.version, e.stored = v, true
	return nil
}

// kill drops the group from memory, answering what waits (and the replies
// in eff, which were not sent) with code.
func (c *Coordinator) kill(e *entry, code int16, eff groups.Effects) {
	if e.dead {
		return
	}
	for _, r := range eff.Replies {
		c.deliver(e, failed(r, code))
	}
	if e.g != nil {
		for _, r := range e.g.Kill(code).Replies {
			c.deliver(e, r)
		}
	}
	if e.cg != nil {
		e.cg.Kill()
	}
	for tok, ch := range e.waiters {
		ch <- failed(groups.Reply{To: tok, Join: &groups.JoinResponse{}}, code)
		delete(e.waiters, tok)
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.dead = true
	c.forget(e)
	c.metrics.forget(e.name)
}

func failed(r groups.Reply, code int16) groups.Reply {
	if r.Sync != nil {
		return groups.Reply{To: r.To, Sync: &groups.SyncResponse{Err: code}}
	}
	id := ""
	if r.Join != nil {
		id = r.Join.MemberID
	}
	return groups.Reply{To: r.To, Join: &groups.JoinResponse{Err: code, MemberID: id, Generation: -1}}
}

func (c *Coordinator) deliver(e *entry, r groups.Reply) {
	if ch, ok := e.waiters[r.To]; ok {
		ch <- r
		delete(e.waiters, r.To)
	}
}

// arm sets the group's timer to its next deadline.
func (c *Coordinator) arm(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if e.dead {
		return
	}
	var next time.Time
	if e.cg != nil {
		next = e.cg.NextDeadline()
	} else {
		next = e.g.NextDeadline()
	}
	if next.IsZero() {
		return
	}
	e.timer = time.AfterFunc(max(next.Sub(c.opts.Now()), 0), func() {
		e.turn <- struct{}{}
		e.mu.Lock()
		defer c.unlock(e)
		switch {
		case e.dead:
		case e.cg != nil:
			c.applyConsumer(e, e.cg.Tick(c.opts.Now()))
		default:
			c.apply(e, e.g.Tick(c.opts.Now()))
			c.trace(e, "tick")
		}
	})
}

// trace logs, at debug level, what a call did to a classic group: the
// group's state afterwards and the members it holds, to follow a
// rebalance across agents in their logs.
func (c *Coordinator) trace(e *entry, what string, args ...any) {
	if !c.log.Enabled(context.Background(), slog.LevelDebug) || e.g == nil {
		return
	}
	var ids []string
	for _, m := range e.g.Members() {
		ids = append(ids, m.ID)
	}
	c.log.Debug("group "+what, append([]any{"group", e.name, "state", e.g.State().String(),
		"generation", e.g.Generation(), "members", ids, "dead", e.dead}, args...)...)
}

// waiter registers a token for a request that may wait.
func (c *Coordinator) waiter(e *entry) (groups.Token, chan groups.Reply) {
	tok := groups.Token(c.tokens.Add(1))
	ch := make(chan groups.Reply, 1)
	e.waiters[tok] = ch
	return tok, ch
}

func wait(ctx context.Context, ch chan groups.Reply) groups.Reply {
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return groups.Reply{}
	}
}

// errCode maps errors from lock and the store to Kafka codes.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNotCoordinator):
		return kerr.NotCoordinator.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}

// Join handles a JoinGroup; the returned function waits for its response.
func (c *Coordinator) Join(ctx context.Context, group string, r groups.JoinRequest) func(context.Context) groups.JoinResponse {
	e, err := c.lock(ctx, group)
	if err != nil {
		resp := groups.JoinResponse{Err: errCode(err), MemberID: r.MemberID, Generation: -1}
		return func(context.Context) groups.JoinResponse { return resp }
	}
	defer func() {
		if e != nil {
			c.unlock(e)
		}
	}()
	if e.cg != nil && !e.cg.Idle() {
		// A consumer group with members: the member joins it as a
		// classic member (KIP-848's online migration), which needs the
		// topics, read with the group's turn released.
		c.unlock(e)
		img, err := c.image(ctx)
		if err == nil {
			e, err = c.lock(ctx, group)
		}
		if err != nil {
			e = nil
			resp := groups.JoinResponse{Err: errCode(err), MemberID: r.MemberID, Generation: -1}
			return func(context.Context) groups.JoinResponse { return resp }
		}
		if e.cg != nil && !e.cg.Idle() {
			resp := c.classicJoin(e, img, r)
			return func(context.Context) groups.JoinResponse { return resp }
		}
	}
	if e.cg != nil {
		c.log.Info("empty consumer group becomes a classic group", "group", group)
		e.cg, e.g = nil, groups.New(group, c.opts.Groups, newMemberID)
	}
	tok, ch := c.waiter(e)
	c.apply(e, e.g.Join(c.opts.Now(), tok, r))
	c.trace(e, "join", "member", r.MemberID, "client", r.ClientID)
	return func(ctx context.Context) groups.JoinResponse {
		if rep := wait(ctx, ch); rep.Join != nil {
			return *rep.Join
		}
		return groups.JoinResponse{Err: kerr.NotCoordinator.Code, MemberID: r.MemberID, Generation: -1}
	}
}

// Sync handles a SyncGroup; the returned function waits for its response.
func (c *Coordinator) Sync(ctx context.Context, group string, r groups.SyncRequest) func(context.Context) groups.SyncResponse {
	e, err := c.lock(ctx, group)
	if err != nil {
		resp := groups.SyncResponse{Err: errCode(err)}
		return func(context.Context) groups.SyncResponse { return resp }
	}
	defer c.unlock(e)
	if e.cg != nil {
		resp := e.cg.ClassicSync(c.opts.Now(), r)
		c.arm(e)
		return func(context.Context) groups.SyncResponse { return resp }
	}
	tok, ch := c.waiter(e)
	c.apply(e, e.g.Sync(c.opts.Now(), tok, r))
	c.trace(e, "sync", "member", r.MemberID, "generation", r.Generation)
	return func(ctx context.Context) groups.SyncResponse {
		if rep := wait(ctx, ch); rep.Sync != nil {
			return *rep.Sync
		}
		return groups.SyncResponse{Err: kerr.NotCoordinator.Code}
	}
}

// Heartbeat handles a Heartbeat.
func (c *Coordinator) Heartbeat(ctx context.Context, group, memberID, instanceID string, generation int32) int16 {
	e, err := c.lock(ctx, group)
	if err != nil {
		return errCode(err)
	}
	defer c.unlock(e)
	if e.cg != nil {
		code := e.cg.ClassicHeartbeat(c.opts.Now(), memberID, instanceID, generation)
		c.arm(e)
		return code
	}
	code := e.g.Heartbeat(c.opts.Now(), memberID, instanceID, generation)
	c.arm(e)
	if code != 0 {
		c.trace(e, "heartbeat refused", "member", memberID, "generation", generation, "code", code)
	}
	return code
}

// Leave handles a LeaveGroup. A non-zero code fails the whole request.
func (c *Coordinator) Leave(ctx context.Context, group string, members []groups.LeaveMember) ([]groups.LeaveResult, int16) {
	e, err := c.lock(ctx, group)
	if err != nil {
		return nil, errCode(err)
	}
	defer c.unlock(e)
	if e.cg != nil {
		// Classic members of a consumer group; members of the consumer
		// protocol leave with ConsumerGroupHeartbeat.
		res, eff := e.cg.ClassicLeave(members)
		c.applyConsumer(e, eff)
		if e.dead {
			return nil, kerr.NotCoordinator.Code
		}
		return res, 0
	}
	res, eff := e.g.Leave(c.opts.Now(), members)
	c.apply(e, eff)
	for _, r := range res {
		c.trace(e, "leave", "member", r.MemberID, "code", r.Err)
	}
	if e.dead {
		return nil, kerr.NotCoordinator.Code
	}
	return res, 0
}
