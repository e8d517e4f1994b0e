// Package sharecoord runs share groups (KIP-932) on an agent: the
// membership of the share groups it coordinates (internal/sharegroup),
// the share partitions it leads (internal/sharepart), each loaded from
// and written to the metadata store's ShareStore, and the members' share
// sessions. It reads no records itself: ShareFetch hands it a function
// that does.
//
// A share group's membership belongs to its group coordinator (the same
// rendezvous rule as consumer groups); a share partition belongs to the
// partition's nominal leader, where clients send ShareFetch and
// ShareAcknowledge. Membership and acquisition locks live in memory only;
// a share partition's start offset, acknowledged and archived records and
// delivery counts are written to the store before an acknowledgement is
// answered, so an agent that takes a share partition over loses none and
// never delivers an acknowledged record again (docs/share-groups.md).
package sharecoord

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharegroup"
	"github.com/floe-io/floe/internal/sharepart"
)

// Store is what share groups need from the metadata store.
type Store interface {
	metastore.ShareStore
	metastore.GroupConfigStore
}

// configReadTimeout bounds a read of a group's configs on the heartbeat
// path.
const configReadTimeout = 5 * time.Second

// DefaultMaxSessions is group.share.max.share.sessions.
const DefaultMaxSessions = 2000

// DefaultMaxGroups bounds the share groups an agent keeps in memory, as
// coordinator and as share-partition leader (each count apart).
const DefaultMaxGroups = 10_000

// errTooManyGroups reports a group that would pass Options.MaxGroups with
// none to evict; it is answered COORDINATOR_NOT_AVAILABLE, which clients
// retry.
var errTooManyGroups = errors.New("too many share groups in memory")

// Options configure a Coordinator; zero values take Kafka's defaults.
type Options struct {
	Group     sharegroup.Config
	Partition sharepart.Config
	// Reset is share.auto.offset.reset (default latest).
	Reset sharepart.Reset
	// ReadCommitted is share.isolation.level read_committed: a share
	// partition ends at the last stable offset, and the caller's reads
	// list the offsets of aborted transactions and markers to skip
	// (default read_uncommitted, as Kafka).
	ReadCommitted bool
	// MaxSessions bounds the share sessions this agent keeps.
	MaxSessions int
	// MaxGroups bounds the share groups kept in memory (default
	// DefaultMaxGroups), so that a client naming ever new groups cannot
	// grow the agent: past it, a group without members (as coordinator)
	// or not in use (as share-partition leader; its locks are lost, its
	// stored state is kept) is dropped, or the request is answered
	// COORDINATOR_NOT_AVAILABLE.
	MaxGroups int
	// Owns reports whether this agent coordinates the group (default:
	// all).
	Owns   func(group string) bool
	Logger *slog.Logger
	// Registerer receives the share-group metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// TP names a partition.
type TP struct {
	Topic     metastore.TopicID
	Partition int32
}

// Coordinator runs this agent's share groups and share partitions. Safe
// for concurrent use.
type Coordinator struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu       sync.Mutex // guards the maps below and every sharegroup.Group
	groups   map[string]*sharegroup.Group
	states   map[string]*groupStates
	sessions map[sessionKey]*session

	metrics *metrics
	configs configCache
	// writes counts the store writes of share-partition states.
	writes atomic.Int64
}

// Writes is the number of share-partition state writes this agent made
// (each one WriteShareStates call, for any number of partitions).
func (c *Coordinator) Writes() int64 { return c.writes.Load() }

// New returns a Coordinator.
func New(store Store, opts Options) *Coordinator {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxGroups <= 0 {
		opts.MaxGroups = DefaultMaxGroups
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
	opts.Group = opts.Group.WithDefaults()
	c := &Coordinator{
		store: store, opts: opts, log: opts.Logger,
		groups:   map[string]*sharegroup.Group{},
		states:   map[string]*groupStates{},
		sessions: map[sessionKey]*session{},
	}
	c.metrics = newMetrics(c, opts.Registerer)
	return c
}

// Heartbeat handles a ShareGroupHeartbeat for a group this agent
// coordinates (NOT_COORDINATOR otherwise). img is the cluster's topics.
func (c *Coordinator) Heartbeat(group string, img consumer.Image, r sharegroup.HeartbeatRequest) sharegroup.HeartbeatResponse {
	if !c.opts.Owns(group) {
		return sharegroup.HeartbeatResponse{Err: kerr.NotCoordinator.Code, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
	}
	ctx, cancel := context.WithTimeout(context.Background(), configReadTimeout)
	cfg := c.Config(ctx, group)
	cancel()
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		if len(c.groups) >= c.opts.MaxGroups && !c.evictEmptyGroup(now, img) {
			return sharegroup.HeartbeatResponse{Err: kerr.CoordinatorNotAvailable.Code, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
		}
		g = sharegroup.New(group, cfg.Group)
		c.groups[group] = g
	}
	g.SetConfig(cfg.Group)
	for _, id := range g.Tick(now, img) {
		c.log.Info("share group member expired", "group", group, "member", id)
	}
	resp, changed := g.Heartbeat(now, img, r)
	if changed {
		c.log.Debug("share group changed", "group", group, "epoch", g.Epoch(), "members", g.Len())
	}
	return resp
}

// evictEmptyGroup drops one group without members (after expiring
// sessions), reporting whether it found one. c.mu is held.
func (c *Coordinator) evictEmptyGroup(now time.Time, img consumer.Image) bool {
	for name, g := range c.groups {
		g.Tick(now, img)
		if g.Len() == 0 {
			delete(c.groups, name)
			return true
		}
	}
	return false
}

// Describe describes a share group: GROUP_ID_NOT_FOUND if this agent
// has none by that name, NOT_COORDINATOR if it is not its coordinator.
func (c *Coordinator) Describe(group string, img consumer.Image) (sharegroup.Description, int16) {
	if !c.opts.Owns(group) {
		return sharegroup.Description{}, kerr.NotCoordinator.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		return sharegroup.Description{}, kerr.GroupIDNotFound.Code
	}
	g.Tick(c.opts.Now(), img)
	return g.Describe(), 0
}

// Groups lists the share groups this agent coordinates, with their
// state (Empty or Stable), sorted by name.
func (c *Coordinator) Groups() [][2]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][2]string
	for name, g := range c.groups {
		if !c.opts.Owns(name) {
			continue
		}
		out = append(out, [2]string{name, g.Describe().State})
	}
	slices.SortFunc(out, func(a, b [2]string) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	return out
}

// errCode maps a store error to a partition error code.
func errCode(err error) int16 {
	switch {
	case errors.Is(err, metastore.ErrShareVersionConflict):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, errTooManyGroups):
		return kerr.CoordinatorNotAvailable.Code
	}
	return kerr.UnknownServerError.Code
}

// DeleteGroup deletes a share group without members, with every share
// partition's state in the store (DeleteGroups): NON_EMPTY_GROUP while
// members remain, NOT_COORDINATOR on another agent. isShare is false when
// neither this agent nor the store knows a share group by that name, for
// the caller to try the consumer groups. Agents leading the group's share
// partitions find their next write refused and start them again.
func (c *Coordinator) DeleteGroup(ctx context.Context, group string) (code int16, isShare bool) {
	if !c.opts.Owns(group) {
		return kerr.NotCoordinator.Code, false
	}
	c.mu.Lock()
	g := c.groups[group]
	c.mu.Unlock()
	if g != nil && g.Len() > 0 {
		return kerr.NonEmptyGroup.Code, true
	}
	if g == nil {
		stored, err := c.store.LoadShareStates(ctx, group)
		if err != nil {
			return errCode(err), true
		}
		if len(stored) == 0 {
			return 0, false
		}
	}
	if err := c.store.DeleteShareStates(ctx, group, nil); err != nil {
		return errCode(err), true
	}
	c.mu.Lock()
	if g := c.groups[group]; g != nil && g.Len() == 0 {
		delete(c.groups, group)
	}
	if gs := c.states[group]; gs != nil {
		// Dropped even while requests use it: they answer an error
		// (their group is evicted), and a write already under way is
		// refused by the store.
		gs.evicted.Store(true)
		delete(c.states, group)
	}
	c.mu.Unlock()
	c.log.Info("share group deleted", "group", group)
	return 0, true
}

// StoredStates returns a share group's stored share-partition states for
// DescribeShareGroupOffsets: NOT_COORDINATOR on another agent,
// GROUP_ID_NOT_FOUND when neither this agent nor the store knows a share
// group by that name. They are as of the last write (every
// acknowledgement is written before it is answered).
func (c *Coordinator) StoredStates(ctx context.Context, group string) ([]metastore.ShareState, int16) {
	if !c.opts.Owns(group) {
		return nil, kerr.NotCoordinator.Code
	}
	states, err := c.store.LoadShareStates(ctx, group)
	if err != nil {
		return nil, errCode(err)
	}
	c.mu.Lock()
	known := c.groups[group] != nil
	c.mu.Unlock()
	if !known && len(states) == 0 {
		return nil, kerr.GroupIDNotFound.Code
	}
	return states, 0
}

// Lag is the number of records between a share partition's start offset
// and end that the group has not finished with (neither acknowledged nor
// archived), as KIP-1226 defines it for DescribeShareGroupOffsets v1.
func Lag(st metastore.ShareState, end int64) int64 {
	lag := end - st.StartOffset
	for _, b := range st.Batches {
		if b.State != metastore.ShareAcknowledged && b.State != metastore.ShareArchived || b.First >= end {
			continue
		}
		lag -= min(b.Last, end-1) - b.First + 1
	}
	return max(lag, 0)
}

// AlterStarts sets share partitions' start offsets (AlterShareGroupOffsets):
// their in-flight records are dropped, their state epoch moves on, and
// the share group must have no members (NON_EMPTY_GROUP). The states are
// written in one call. It answers a group error, or nil-or-zero codes per
// partition.
func (c *Coordinator) AlterStarts(ctx context.Context, group string, starts map[TP]int64) (int16, map[TP]int16) {
	if code := c.checkEmpty(group); code != 0 {
		return code, nil
	}
	stored, err := c.store.LoadShareStates(ctx, group)
	if err != nil {
		return errCode(err), nil
	}
	old := make(map[TP]metastore.ShareState, len(stored))
	for _, st := range stored {
		old[TP{st.TopicID, st.Partition}] = st
	}
	states := make([]metastore.ShareState, 0, len(starts))
	for tp, off := range starts {
		prev := old[tp]
		states = append(states, metastore.ShareState{TopicID: tp.Topic, Partition: tp.Partition,
			StateEpoch: prev.StateEpoch + 1, StartOffset: off, Version: prev.Version})
	}
	codes := make(map[TP]int16, len(starts))
	_, err = c.store.WriteShareStates(ctx, group, states)
	for tp := range starts {
		if err != nil {
			codes[tp] = errCode(err)
		} else {
			codes[tp] = 0
		}
	}
	c.forgetStates(group)
	return 0, codes
}

// DeleteStarts deletes share partitions' states (DeleteShareGroupOffsets):
// they start again by share.auto.offset.reset. The group must have no
// members.
func (c *Coordinator) DeleteStarts(ctx context.Context, group string, tps []metastore.TopicPartition) int16 {
	if code := c.checkEmpty(group); code != 0 {
		return code
	}
	if err := c.store.DeleteShareStates(ctx, group, tps); err != nil {
		return errCode(err)
	}
	c.forgetStates(group)
	return 0
}

// checkEmpty is the group check of the share-offset admin APIs.
func (c *Coordinator) checkEmpty(group string) int16 {
	if !c.opts.Owns(group) {
		return kerr.NotCoordinator.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[group]; g != nil && g.Len() > 0 {
		return kerr.NonEmptyGroup.Code
	}
	return 0
}

// forgetStates drops this agent's copy of a group's share partitions if
// no request is using it (one that is will find its next write refused).
func (c *Coordinator) forgetStates(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := c.states[group]
	if gs == nil || gs.users > 0 {
		return
	}
	gs.evicted.Store(true)
	delete(c.states, group)
}
