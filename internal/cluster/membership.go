// Package cluster knows which agents are alive and decides, from that
// list alone, which agent answers for what: the coordinator of a consumer
// group, the "leader" a client is told to send a partition's requests to.
// Every agent computes the same answers from the same live list
// (rendezvous hashing), so nothing is negotiated and nothing is moved when
// agents come and go: only the keys owned by the agent that changed move.
//
// Membership is a lease in the metadata store, renewed by heartbeats; an
// agent that stops heartbeating drops out when its lease expires.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/metastore"
)

// Options configure a Membership.
type Options struct {
	Host string
	Port int32
	// PeerAddr is the HOST:PORT of the agent's peer listener ("": none).
	PeerAddr string
	// Listeners maps Kafka listener names to advertised HOST:PORTs (nil
	// for an agent with one listener, Host:Port).
	Listeners map[string]string
	Zone      string
	Roles     []string
	// Version is the agent's build, shown on the other agents' consoles.
	Version string
	// NodeID, if >= 0, asks for a fixed broker id; otherwise the store
	// assigns one.
	NodeID int32
	// OutageManifest is the outage manifest name the agent writes under
	// ("" for none), held in its registration so that no two live agents
	// use one name (metastore.AgentInfo.OutageManifest).
	OutageManifest string
	// HeartbeatInterval (default 1s) and TTL (default 5s): an agent is
	// considered dead TTL after its last heartbeat.
	HeartbeatInterval time.Duration
	TTL               time.Duration
	Logger            *slog.Logger
}

// Membership is this agent's registration and its view of the live agents.
type Membership struct {
	reg  metastore.AgentRegistry
	opts Options
	log  *slog.Logger

	mu   sync.RWMutex
	self metastore.AgentInfo
	// admin and started are what Announce set; every heartbeat carries
	// them, also one that was under way when they were set.
	admin   string
	started time.Time
	live    []metastore.AgentInfo // sorted by NodeID, always includes self
	// generation moves on whenever the set of live agents changes (see
	// Generation).
	generation uint64
}

// Join registers the agent and reads the live list once. Call Run to keep
// the registration alive and the list fresh, and Leave on shutdown.
func Join(ctx context.Context, reg metastore.AgentRegistry, opts Options) (*Membership, error) {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{reg: reg, opts: opts, log: opts.Logger}
	m.self = metastore.AgentInfo{
		ID: uuid.NewString(), NodeID: opts.NodeID, Host: opts.Host, Port: opts.Port,
		Zone: opts.Zone, Roles: opts.Roles, PeerAddr: opts.PeerAddr, Listeners: opts.Listeners, Version: opts.Version,
		OutageManifest: opts.OutageManifest,
	}
	err := m.heartbeat(ctx)
	if errors.Is(err, metastore.ErrOutageManifestTaken) {
		err = m.awaitOutageManifest(ctx, err)
	}
	if err != nil {
		return nil, fmt.Errorf("join cluster: %w", err)
	}
	return m, nil
}

// awaitOutageManifest retries a first heartbeat refused because another
// registration holds the agent's outage manifest name, for one TTL and a
// heartbeat interval. The holder may be this agent's previous run, killed
// a moment ago: its registration lapses within a TTL (every agent
// heartbeats with the same TTL). A name still held after that belongs to
// an agent that is heartbeating, and the refusal is returned.
func (m *Membership) awaitOutageManifest(ctx context.Context, refused error) error {
	wait := m.opts.TTL + m.opts.HeartbeatInterval
	m.log.Warn("outage manifest name held by another registration; waiting for it to lapse (it may be this agent's previous run)",
		"name", m.opts.OutageManifest, "wait", wait, "err", refused)
	deadline := time.Now().Add(wait)
	poll := min(m.opts.HeartbeatInterval, 250*time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while waiting for the outage manifest name: %v)", ctx.Err(), refused)
		case <-time.After(poll):
		}
		err := m.heartbeat(ctx)
		if !errors.Is(err, metastore.ErrOutageManifestTaken) {
			return err
		}
		refused = err
	}
	return fmt.Errorf("%w; still held after %v, so that agent is alive: two agents under one name would replay and delete "+
		"each other's manifests (give this agent another --outage-manifest-name, or stop the other; docs/operations.md)", refused, wait)
}

func (m *Membership) heartbeat(ctx context.Context) error {
	m.mu.RLock()
	self := m.self
	self.Admin, self.Started = m.admin, m.started
	m.mu.RUnlock()
	got, err := m.reg.Heartbeat(ctx, self, m.opts.TTL)
	if err != nil {
		return err
	}
	live, err := m.reg.LiveAgents(ctx)
	if err != nil {
		return err
	}
	live = current(live, got)
	if !slices.ContainsFunc(live, func(a metastore.AgentInfo) bool { return a.ID == got.ID }) {
		live = append(live, got)
		slices.SortFunc(live, func(a, b metastore.AgentInfo) int { return int(a.NodeID) - int(b.NodeID) })
	}
	m.mu.Lock()
	changed := !sameAgents(live, m.live)
	if changed {
		m.generation++
	}
	m.self, m.live = got, live
	m.mu.Unlock()
	if changed {
		m.log.Info("cluster membership", "self", got.NodeID, "live", nodeIDs(live))
	}
	return nil
}

// current drops, of the registrations that share an address or a node
// id, all but the one renewed last (the latest Expires), and never self:
// only one process can listen at an address, and two brokers with one id
// would confuse clients, so the others are earlier incarnations that died
// (killed, their leases not yet expired). Every agent drops them, not
// only the restarted one, so that their views agree as soon as they have
// seen the new incarnation instead of a lease TTL later: while they
// disagreed, each told clients another agent coordinated a group, and a
// client's LeaveGroup bounced between them until it gave up (floe
// torture, docs/correctness.md).
func current(live []metastore.AgentInfo, self metastore.AgentInfo) []metastore.AgentInfo {
	supersedes := func(a, b metastore.AgentInfo) bool {
		switch {
		case a.ID == b.ID || b.ID == self.ID:
			return false
		case a.Host == b.Host && a.Port == b.Port, a.NodeID == b.NodeID:
			return a.ID == self.ID || a.Expires.After(b.Expires)
		}
		return false
	}
	return slices.DeleteFunc(slices.Clone(live), func(b metastore.AgentInfo) bool {
		return slices.ContainsFunc(live, func(a metastore.AgentInfo) bool { return supersedes(a, b) })
	})
}

// sameAgents reports whether two live lists (sorted by node id) hold the
// same registrations.
func sameAgents(a, b []metastore.AgentInfo) bool {
	return slices.EqualFunc(a, b, func(x, y metastore.AgentInfo) bool { return x.ID == y.ID })
}

func nodeIDs(as []metastore.AgentInfo) []int32 {
	out := make([]int32, len(as))
	for i, a := range as {
		out[i] = a.NodeID
	}
	return out
}

// Run heartbeats until ctx ends. A failed heartbeat is logged and retried
// at the next tick; the agent keeps its last view meanwhile.
func (m *Membership) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			hctx, cancel := context.WithTimeout(ctx, m.opts.TTL)
			if err := m.heartbeat(hctx); errors.Is(err, metastore.ErrOutageManifestTaken) {
				// Only after this agent's registration lapsed (the
				// store unreachable or this process paused for a TTL)
				// and another agent took the name: this one stays out
				// of the live list until an operator stops one.
				m.log.Error("heartbeat refused: another live agent took this agent's outage manifest name; stop one of them", "err", err)
			} else if err != nil && ctx.Err() == nil {
				m.log.Warn("heartbeat failed", "err", err)
			}
			cancel()
		}
	}
}

// Announce records in the agent's registration the base URL of its admin
// API ("" for none) and when it began serving, and heartbeats at once so
// that the other agents' consoles see them. A failed heartbeat is
// returned; the next one carries them anyway.
func (m *Membership) Announce(ctx context.Context, admin string, started time.Time) error {
	m.mu.Lock()
	m.admin, m.started = admin, started
	m.mu.Unlock()
	return m.heartbeat(ctx)
}

// Leave deregisters the agent, so others stop routing to it at once.
func (m *Membership) Leave(ctx context.Context) error {
	return m.reg.Deregister(ctx, m.Self().ID)
}

// Self is this agent's registration.
func (m *Membership) Self() metastore.AgentInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.self
}

// Live is the last known list of live agents, sorted by node id.
// Generation counts the changes of the set of live agents this agent has
// seen: what a partition's or a key's owner is can only have changed
// when it moves on. An owner that led something, lost it and got it
// back has seen it move at least twice; state it kept in memory from
// before may be behind what the other owner stored meanwhile.
func (m *Membership) Generation() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.generation
}

func (m *Membership) Live() []metastore.AgentInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.live
}

// Owner returns the live agent that owns key: the one with the highest
// rendezvous score. All agents with the same live list agree.
func (m *Membership) Owner(key string) metastore.AgentInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Owner(m.live, key)
}

// Owner picks the agent with the highest rendezvous score for key.
//
// Agents are ranked by their advertised address, not by the id each
// process makes at start: an agent restarted at its address (a crash and
// a supervisor's restart, a rolling deploy) takes back exactly what it
// owned, instead of a random share of every agent's groups, transactions
// and share partitions. Under frequent restarts a group then moves only
// while its owner is down, and back; ranked by process id it moved at
// every restart of any agent, and each move restored its members with
// fresh session timeouts, so members that had gone never expired
// (docs/correctness.md, floe torture --faults kill). Two live
// registrations at one address are never both in a view (current).
// Agents without an address (tests) are ranked by id.
func Owner(agents []metastore.AgentInfo, key string) metastore.AgentInfo {
	var best metastore.AgentInfo
	var bestScore uint64
	for i, a := range agents {
		if s := score(key, rank(a)); i == 0 || s > bestScore {
			best, bestScore = a, s
		}
	}
	return best
}

// rank is what Owner ranks an agent by: its advertised address, which a
// restart keeps.
func rank(a metastore.AgentInfo) string {
	if a.Host == "" {
		return a.ID
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

func score(key, agentID string) uint64 {
	d := xxhash.New()
	d.WriteString(key)
	d.Write([]byte{0})
	d.WriteString(agentID)
	return d.Sum64()
}
