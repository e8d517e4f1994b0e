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
// ShareAcknowledge. A group's membership is written to the store
// (ShareStore.SaveShareGroup) at every change of members or assignment,
// before the answer, so that a coordinator that takes the group over
// continues it; heartbeats that change nothing write nothing.
// Acquisition locks live in memory only; a share partition's start
// offset, acknowledged and archived records and delivery counts are
// written to the store before an acknowledgement is answered and before
// acquired records are handed out, at the version this agent last wrote,
// so an agent that takes a share partition over loses none and never
// delivers an acknowledged record again, and an agent another has
// replaced delivers nothing (docs/share-groups.md).
package sharecoord

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
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
// path, and storeTimeout a load or save of a group's membership.
const (
	configReadTimeout = 5 * time.Second
	storeTimeout      = 5 * time.Second
)

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
	// MaxListLoads bounds the stored groups one ListGroups loads to tell
	// Empty from Stable (default DefaultMaxListLoads); past it, groups
	// are listed as Unknown.
	MaxListLoads int
	// Owns reports whether this agent coordinates the group (default:
	// all).
	Owns func(group string) bool
	// ViewGeneration moves on whenever the set of live agents changes
	// (cluster.Membership.Generation; default: never). Share-partition
	// states loaded under another generation are dropped and read again
	// from the store: their partition may have been led by another agent
	// in between, which acknowledged records this memory still holds as
	// available.
	ViewGeneration func() uint64
	Logger         *slog.Logger
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

	mu     sync.Mutex // guards the maps below and every sharegroup.Group
	groups map[string]*sharegroup.Group
	// versions holds the stored membership record's version of every
	// group in groups (0: none stored yet), for SaveShareGroup.
	versions map[string]int64
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
	if opts.MaxListLoads <= 0 {
		opts.MaxListLoads = DefaultMaxListLoads
	}
	if opts.ViewGeneration == nil {
		opts.ViewGeneration = func() uint64 { return 0 }
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
		versions: map[string]int64{},
		states:   map[string]*groupStates{},
		sessions: map[sessionKey]*session{},
	}
	c.metrics = newMetrics(c, opts.Registerer)
	return c
}

// Heartbeat handles a ShareGroupHeartbeat for a group this agent
// coordinates (NOT_COORDINATOR otherwise). img is the cluster's topics.
func (c *Coordinator) Heartbeat(group string, img consumer.Image, r sharegroup.HeartbeatRequest) sharegroup.HeartbeatResponse {
	resp := c.heartbeat(group, img, r)
	if resp.Err != 0 {
		name := "UNKNOWN"
		if e, ok := kerr.ErrorForCode(resp.Err).(*kerr.Error); ok {
			name = e.Message
		}
		c.metrics.heartbeatErrors.WithLabelValues(name).Inc()
		if resp.Err == kerr.FencedMemberEpoch.Code || resp.Err == kerr.UnknownMemberID.Code {
			c.log.Info("share group heartbeat refused", "group", group, "member", r.MemberID, "epoch", r.MemberEpoch, "err", name)
		}
	}
	return resp
}

func (c *Coordinator) heartbeat(group string, img consumer.Image, r sharegroup.HeartbeatRequest) sharegroup.HeartbeatResponse {
	fail := func(code int16) sharegroup.HeartbeatResponse {
		return sharegroup.HeartbeatResponse{Err: code, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
	}
	if !c.opts.Owns(group) {
		// The group moved: a copy kept here would be stale when it
		// comes back, so the next coordination here loads it again.
		c.mu.Lock()
		c.forgetGroup(group)
		c.mu.Unlock()
		return fail(kerr.NotCoordinator.Code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), configReadTimeout)
	cfg := c.Config(ctx, group)
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	g, code := c.group(ctx, group, cfg.Group, now, img, true)
	if code != 0 {
		return fail(code)
	}
	g.SetConfig(cfg.Group)
	expired := g.Tick(now, img)
	for _, id := range expired {
		c.log.Info("share group member expired", "group", group, "member", id)
	}
	resp, changed := g.Heartbeat(now, img, r)
	if g.TakeDirty() {
		// Written before the answer: a member is never told an epoch
		// or assignment the next coordinator would not know.
		if code := c.save(ctx, g); code != 0 {
			return fail(code)
		}
	}
	if changed {
		c.log.Debug("share group changed", "group", group, "epoch", g.Epoch(), "members", g.Len())
	}
	return resp
}

// group returns the group from memory or, the first time this agent
// coordinates it (it started here, took it over from an agent that died,
// or it moved here), from its stored membership record: members continue
// at their epochs, their sessions starting now. With create, a group
// neither here nor stored starts empty; without, it is nil. c.mu is held.
func (c *Coordinator) group(ctx context.Context, name string, cfg sharegroup.Config, now time.Time, img consumer.Image, create bool) (*sharegroup.Group, int16) {
	if g := c.groups[name]; g != nil {
		return g, 0
	}
	if len(c.groups) >= c.opts.MaxGroups && !c.evictEmptyGroup(ctx, now, img) {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	rec, found, err := c.store.LoadShareGroup(ctx, name)
	if err != nil {
		c.log.Warn("share group: loading membership", "group", name, "err", err)
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	var g *sharegroup.Group
	switch {
	case found:
		if g, err = sharegroup.Restore(name, cfg, rec.Data, now); err != nil {
			// The record's version is kept, so the next change
			// overwrites it; members rejoin (UNKNOWN_MEMBER_ID).
			c.log.Warn("share group: stored membership unreadable, starting empty", "group", name, "err", err)
			g = sharegroup.New(name, cfg)
		} else {
			c.log.Info("share group loaded", "group", name, "epoch", g.Epoch(), "members", g.Len())
			if g.Len() > 0 {
				c.metrics.loaded.Inc()
			}
		}
	case create:
		g = sharegroup.New(name, cfg)
	default:
		return nil, 0
	}
	c.groups[name], c.versions[name] = g, rec.Version
	return g, 0
}

// save writes the group's membership at its version. On failure the
// group leaves memory (the next request loads it again) and the answer
// is NOT_COORDINATOR when another agent wrote it meanwhile (clients find
// the coordinator again), else COORDINATOR_NOT_AVAILABLE. c.mu is held.
func (c *Coordinator) save(ctx context.Context, g *sharegroup.Group) int16 {
	name := g.Name()
	data, err := g.Snapshot()
	if err == nil && len(data) > metastore.MaxShareGroupRecordBytes {
		// Too big to store (thousands of members or subscribed topics):
		// the group goes on in memory, and its stale record is deleted so
		// that a next coordinator starts it empty rather than from an
		// old membership.
		c.log.Warn("share group membership too large to store; a next coordinator starts it empty", "group", name, "bytes", len(data))
		data = nil
	}
	if err == nil {
		var v int64
		v, err = c.store.SaveShareGroup(ctx, name, metastore.ShareGroupRecord{Data: data, Version: c.versions[name]})
		if err == nil {
			c.versions[name] = v
			return 0
		}
	}
	c.forgetGroup(name)
	if errors.Is(err, metastore.ErrShareVersionConflict) {
		c.log.Info("share group written by another coordinator", "group", name, "err", err)
		return kerr.NotCoordinator.Code
	}
	c.log.Warn("share group: saving membership", "group", name, "err", err)
	return kerr.CoordinatorNotAvailable.Code
}

// forgetGroup drops a group's membership from memory. c.mu is held.
func (c *Coordinator) forgetGroup(name string) {
	delete(c.groups, name)
	delete(c.versions, name)
}

// evictEmptyGroup drops one group without members (after expiring
// sessions, which it stores), reporting whether it found one. c.mu is
// held.
func (c *Coordinator) evictEmptyGroup(ctx context.Context, now time.Time, img consumer.Image) bool {
	for name, g := range c.groups {
		if g.Tick(now, img); g.TakeDirty() && c.save(ctx, g) != 0 {
			continue // save dropped it; its record keeps the members
		}
		if g.Len() == 0 {
			c.forgetGroup(name)
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
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	g, code := c.group(ctx, group, c.opts.Group, now, img, false)
	switch {
	case code != 0:
		return sharegroup.Description{}, code
	case g == nil:
		return sharegroup.Description{}, kerr.GroupIDNotFound.Code
	}
	g.Tick(now, img)
	if g.TakeDirty() {
		if code := c.save(ctx, g); code != 0 {
			return sharegroup.Description{}, code
		}
	}
	return g.Describe(), 0
}

// Groups lists the share groups this agent coordinates and has in
// memory, with their state (Empty or Stable), sorted by name.
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
	sortGroups(out)
	return out
}

// DefaultMaxListLoads bounds the stored groups one ListGroups loads;
// stateUnknown is the state it lists the others with (Kafka's share
// group state for one it cannot tell).
const (
	DefaultMaxListLoads = 1000
	stateUnknown        = "Unknown"
)

func sortGroups(groups [][2]string) {
	slices.SortFunc(groups, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
}

// ListGroups lists the share groups this agent coordinates, with their
// state, sorted by name (ListGroups): those in memory and those only in
// the store (a group another coordinator ran, or this one before it
// restarted, not touched here since). A stored group's membership is
// loaded as the group's next request would load it: one with members
// stays in memory, Stable, with the members' sessions starting now; one
// without is Empty. At most Options.MaxListLoads stored groups are loaded per
// call (a client may have made many groups); the others are listed as
// Unknown. A store that fails lists what is in memory.
func (c *Coordinator) ListGroups(ctx context.Context) [][2]string {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	names, err := c.store.ListShareGroups(ctx)
	if err != nil {
		c.log.Warn("share groups: listing the stored groups", "err", err)
		return c.Groups()
	}
	var stored [][2]string
	loads := 0
	for _, name := range names {
		if !c.opts.Owns(name) {
			continue
		}
		c.mu.Lock()
		_, loaded := c.groups[name]
		c.mu.Unlock()
		if loaded {
			continue // listed by Groups
		}
		if loads >= c.opts.MaxListLoads {
			stored = append(stored, [2]string{name, stateUnknown})
			continue
		}
		loads++
		members, _, _, code := c.members(ctx, name)
		if code != 0 {
			c.log.Warn("share groups: loading a stored group to list it", "group", name, "err", code)
			continue
		}
		state := sharegroup.StateEmpty
		if members > 0 {
			state = sharegroup.StateStable
		}
		stored = append(stored, [2]string{name, state})
	}
	out := c.Groups()
	for _, g := range stored {
		if !slices.ContainsFunc(out, func(o [2]string) bool { return o[0] == g[0] }) {
			out = append(out, g)
		}
	}
	sortGroups(out)
	return out
}

// errCode maps a store error to a partition error code.
func errCode(err error) int16 {
	switch {
	case errors.Is(err, metastore.ErrShareVersionConflict), errors.Is(err, errEvicted):
		// Another agent wrote the share partition since this one did,
		// or this one dropped its memory because another may have: it
		// does not lead it (now), and its acquisitions are gone.
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
	members, version, found, code := c.members(ctx, group)
	switch {
	case code != 0:
		return code, true
	case members > 0:
		return kerr.NonEmptyGroup.Code, true
	}
	if !found {
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
	if version > 0 {
		// At the version seen empty: a member that joined meanwhile
		// makes this fail, and the group stays.
		if _, err := c.store.SaveShareGroup(ctx, group, metastore.ShareGroupRecord{Version: version}); err != nil {
			if errors.Is(err, metastore.ErrShareVersionConflict) {
				return kerr.NonEmptyGroup.Code, true
			}
			return errCode(err), true
		}
	}
	c.mu.Lock()
	if g := c.groups[group]; g != nil && g.Len() == 0 {
		c.forgetGroup(group)
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
	_, _, known, code := c.members(ctx, group)
	if code != 0 {
		return nil, code
	}
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
	if code := c.checkEmpty(ctx, group); code != 0 {
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
	if code := c.checkEmpty(ctx, group); code != 0 {
		return code
	}
	if err := c.store.DeleteShareStates(ctx, group, tps); err != nil {
		return errCode(err)
	}
	c.forgetStates(group)
	return 0
}

// checkEmpty is the group check of the share-offset admin APIs.
func (c *Coordinator) checkEmpty(ctx context.Context, group string) int16 {
	if !c.opts.Owns(group) {
		return kerr.NotCoordinator.Code
	}
	members, _, _, code := c.members(ctx, group)
	switch {
	case code != 0:
		return code
	case members > 0:
		return kerr.NonEmptyGroup.Code
	}
	return 0
}

// members counts a group's members, in memory or, when this agent has
// not loaded the group, in its stored record (whose members' sessions
// then start: a group taken over is not empty until they expire). found
// reports that the group is in memory or stored; version is the stored
// record's.
func (c *Coordinator) members(ctx context.Context, group string) (members int, version int64, found bool, code int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[group]; g != nil {
		return g.Len(), c.versions[group], true, 0
	}
	rec, found, err := c.store.LoadShareGroup(ctx, group)
	if err != nil {
		return 0, 0, false, errCode(err)
	}
	if !found {
		return 0, 0, false, 0
	}
	g, err := sharegroup.Restore(group, c.opts.Group, rec.Data, c.opts.Now())
	if err != nil {
		c.log.Warn("share group: stored membership unreadable", "group", group, "err", err)
		return 0, rec.Version, true, 0
	}
	if g.Len() > 0 && len(c.groups) < c.opts.MaxGroups {
		c.groups[group], c.versions[group] = g, rec.Version
	}
	return g.Len(), rec.Version, true, 0
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
