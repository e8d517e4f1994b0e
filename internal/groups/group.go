// Package groups is the classic Kafka consumer-group protocol as a pure
// state machine: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the
// generation checks of OffsetCommit, for one group.
//
// It never does I/O, starts no goroutine and reads no clock: every call
// takes the current time and returns Effects (responses for requests that
// were waiting, whether the group must be persisted now). The caller (the
// coordinator runtime) owns locking, timers, the metadata store and the
// connections. Member metadata and assignments are opaque bytes, passed
// through untouched, so that client-side assignors (range, round-robin,
// sticky, cooperative-sticky) work unchanged.
//
// Behaviour follows Apache Kafka's classic group coordinator, including
// KIP-345 (static membership, batched leave), KIP-394 (member id required
// on first join), KIP-429 (cooperative rebalancing: nothing to do on the
// server beyond correct generations and pass-through) and KIP-814
// (SkipAssignment for a static leader rejoining a stable group).
package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a group's state, named as Kafka names it.
type State int

// The states of a classic group.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseState returns the state with Kafka's name s.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// Config holds the broker-side settings of groups.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members,
	// extended by the same amount while members keep arriving, up to the
	// rebalance timeout. Kafka's default is 3s.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout
	// members ask for (group.min/max.session.timeout.ms; Kafka: 6s, 30m).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxSize is group.max.size; 0 means unlimited.
	MaxSize int
}

// Token identifies a request waiting for its response. The caller makes
// them unique; 0 means "no request".
type Token uint64

// Protocol is one assignment protocol a member supports, with its
// metadata (for "consumer" groups, the member's subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Version          int16 // MEMBER_ID_REQUIRED from v4, SkipAssignment from v9
	MemberID         string
	InstanceID       string // group.instance.id; "" for a dynamic member
	ClientID         string
	ClientHost       string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	ProtocolType     string
	Protocols        []Protocol
}

// JoinResponse is a JoinGroup response. Members is filled for the leader.
type JoinResponse struct {
	Err            int16
	MemberID       string
	Generation     int32
	ProtocolType   string
	Protocol       string
	Leader         string
	SkipAssignment bool
	Members        []JoinMember
}

// JoinMember is one member as the leader sees it in a JoinGroup response.
type JoinMember struct {
	ID         string
	InstanceID string
	Metadata   []byte
}

// SyncRequest is a SyncGroup request. Assignments is set by the leader.
type SyncRequest struct {
	MemberID     string
	InstanceID   string
	Generation   int32
	ProtocolType string // "" when the request has none (before v5)
	Protocol     string
	Assignments  map[string][]byte
}

// SyncResponse is a SyncGroup response.
type SyncResponse struct {
	Err          int16
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// LeaveMember is one member in a LeaveGroup request.
type LeaveMember struct {
	MemberID   string
	InstanceID string
}

// Reply answers a waiting request: exactly one of Join and Sync is set.
type Reply struct {
	To   Token
	Join *JoinResponse
	Sync *SyncResponse
}

// Effects is what the caller must do after a call, in this order: persist
// the group (Snapshot) if Persist is set, then send Replies. If persisting
// fails, the caller must not send the replies as they are: it drops the
// group from memory and answers every waiting request with
// NOT_COORDINATOR, so that members rediscover the coordinator and rejoin
// from the last stored state.
type Effects struct {
	Persist bool
	Replies []Reply
}

func (e *Effects) join(to Token, r JoinResponse) {
	if to != 0 {
		e.Replies = append(e.Replies, Reply{To: to, Join: &r})
	}
}

func (e *Effects) sync(to Token, r SyncResponse) {
	if to != 0 {
		e.Replies = append(e.Replies, Reply{To: to, Sync: &r})
	}
}

// member is a group member.
type member struct {
	id, instanceID       string
	clientID, clientHost string
	sessionTimeout       time.Duration
	rebalanceTimeout     time.Duration
	protocolType         string
	protocols            []Protocol
	assignment           []byte
	joinVersion          int16

	joining  Token // JoinGroup waiting for the rebalance to complete
	syncing  Token // SyncGroup waiting for the leader's assignment
	deadline time.Time
	isNew    bool // joined since the rebalance began (initial delay extension)
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

// pendingMember got MEMBER_ID_REQUIRED and has not rejoined yet.
type pendingMember struct {
	id       string
	deadline time.Time
}

// Group is one classic group. It is not safe for concurrent use.
type Group struct {
	name string
	cfg  Config

	state        State
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	order        []string          // member ids in join order: the next leader is the first
	static       map[string]string // instance id → member id
	pending      map[string]pendingMember
	// pendingSync are members of the current generation that have not
	// sent SyncGroup yet; they are removed at syncDeadline.
	pendingSync map[string]bool

	joinDeadline   time.Time // PreparingRebalance: rebalance timeout
	delayDeadline  time.Time // PreparingRebalance from Empty: initial delay
	delayRemaining time.Duration
	syncDeadline   time.Time
	emptySince     time.Time

	nextID func(clientID string) string
}

// New returns an empty group. newMemberID makes member ids (Kafka uses
// clientID + "-" + a UUID); it is the only source of randomness.
func New(name string, cfg Config, newMemberID func(clientID string) string) *Group {
	return &Group{
		name: name, cfg: cfg, state: Empty,
		members: map[string]*member{}, static: map[string]string{},
		pending: map[string]pendingMember{}, pendingSync: map[string]bool{},
		nextID: newMemberID,
	}
}

// Name is the group id.
func (g *Group) Name() string { return g.name }

// State is the current state.
func (g *Group) State() State { return g.state }

// Generation is the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// ProtocolType is the protocol type ("consumer", …), "" before any member.
func (g *Group) ProtocolType() string { return g.protocolType }

// Protocol is the selected protocol, "" unless a generation is running.
func (g *Group) Protocol() string { return g.protocol }

// Leader is the leader's member id, "" if none.
func (g *Group) Leader() string { return g.leader }

// Len is the number of members (not counting pending ones).
func (g *Group) Len() int { return len(g.members) }

// Idle reports an empty group with nothing in flight: a coordinator may
// drop it from memory and load it again from the store when needed.
func (g *Group) Idle() bool {
	return g.state == Empty && len(g.pending) == 0 && len(g.members) == 0
}

// EmptySince is when the group last became empty (zero if never).
func (g *Group) EmptySince() time.Time { return g.emptySince }

// MemberInfo describes a member for DescribeGroups.
type MemberInfo struct {
	ID, InstanceID       string
	ClientID, ClientHost string
	Metadata             []byte // of the selected protocol
	Assignment           []byte
}

// Members lists the members in join order. Metadata and assignment are
// only filled in the Stable state, as Kafka does.
func (g *Group) Members() []MemberInfo {
	out := make([]MemberInfo, 0, len(g.members))
	for _, id := range g.order {
		m := g.members[id]
		mi := MemberInfo{ID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == Stable {
			mi.Metadata = m.metadata(g.protocol)
			mi.Assignment = m.assignment
		}
		out = append(out, mi)
	}
	return out
}

// Subscriptions returns the selected protocol's metadata of every member,
// for callers that decode consumer subscriptions (OffsetDelete). ok is
// false when no protocol is selected.
func (g *Group) Subscriptions() (metadata [][]byte, ok bool) {
	if g.protocol == "" {
		return nil, false
	}
	for _, id := range g.order {
		metadata = append(metadata, g.members[id].metadata(g.protocol))
	}
	return metadata, true
}

// Waiting lists the tokens of every request waiting in the group.
func (g *Group) Waiting() []Token {
	var out []Token
	for _, id := range g.order {
		m := g.members[id]
		if m.joining != 0 {
			out = append(out, m.joining)
		}
		if m.syncing != 0 {
			out = append(out, m.syncing)
		}
	}
	return out
}

// NextDeadline is when Tick must be called next; zero if never.
func (g *Group) NextDeadline() time.Time {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, m := range g.members {
		if m.joining == 0 && m.syncing == 0 {
			at(m.deadline)
		}
	}
	for _, p := range g.pending {
		at(p.deadline)
	}
	if g.state == PreparingRebalance {
		if !g.delayDeadline.IsZero() {
			at(g.delayDeadline)
		} else {
			at(g.joinDeadline)
		}
	}
	if len(g.pendingSync) > 0 {
		at(g.syncDeadline)
	}
	return next
}

// Tick handles every deadline that has passed.
func (g *Group) Tick(now time.Time) Effects {
	var e Effects
	if g.state == Dead {
		return e
	}
	for id, p := range g.pending {
		if !now.Before(p.deadline) {
			delete(g.pending, id)
		}
	}
	if g.state == PreparingRebalance {
		switch {
		case !g.delayDeadline.IsZero():
			if !now.Before(g.delayDeadline) {
				g.initialDelayExpired(now, &e)
			}
		case !now.Before(g.joinDeadline):
			g.completeJoin(now, &e)
		}
	}
	if len(g.pendingSync) > 0 && !now.Before(g.syncDeadline) && (g.state == CompletingRebalance || g.state == Stable) {
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				g.remove(m, kerr.UnknownMemberID.Code, &e)
			}
		}
		g.pendingSync = map[string]bool{}
		g.prepareRebalance(now, &e)
	}
	for _, id := range append([]string(nil), g.order...) {
		m := g.members[id]
		if m == nil || m.joining != 0 || m.syncing != 0 || now.Before(m.deadline) {
			continue
		}
		g.removeAndRebalance(now, m, &e)
	}
	if g.state == PreparingRebalance {
		g.maybeCompleteJoin(now, &e)
	}
	return e
}

func (g *Group) initialDelayExpired(now time.Time, e *Effects) {
	newMembers := false
	for _, m := range g.members {
		if m.isNew {
			newMembers = true
			m.isNew = false
		}
	}
	if newMembers && g.delayRemaining > 0 {
		d := min(g.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining -= d
		g.delayDeadline = now.Add(d)
		return
	}
	g.delayDeadline = time.Time{}
	g.completeJoin(now, e)
}

// checkMember validates a member id and instance id as Kafka does for
// SyncGroup, Heartbeat and OffsetCommit.
func (g *Group) checkMember(memberID, instanceID string) int16 {
	if instanceID != "" {
		known, ok := g.static[instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if known != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

func (g *Group) supportsProtocols(protocolType string, protocols []Protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks, among the protocols every member supports, the
// one most members prefer (each member votes for its first supported
// choice). Ties go to the protocol listed first by the earliest member.
func (g *Group) selectProtocol() string {
	var candidates []string
	if len(g.order) == 0 {
		return ""
	}
	for _, p := range g.members[g.order[0]].protocols {
		all := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (g *Group) validSessionTimeout(d time.Duration) bool {
	if g.cfg.MinSessionTimeout > 0 && d < g.cfg.MinSessionTimeout {
		return false
	}
	if g.cfg.MaxSessionTimeout > 0 && d > g.cfg.MaxSessionTimeout {
		return false
	}
	return true
}

func (g *Group) rebalanceTimeout() time.Duration {
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalanceTimeout)
	}
	return longest
}
