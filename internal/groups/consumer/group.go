// Package consumer is the KIP-848 consumer group protocol as a pure state
// machine: ConsumerGroupHeartbeat, the server-side assignors, member
// epochs and the reconciliation of each member's current assignment
// towards its target assignment, for one group.
//
// Like the classic state machine (internal/groups), it never does I/O,
// starts no goroutine and reads no clock: every call takes the current
// time (and, for heartbeats, the cluster's topics) and returns Effects.
// The caller (the coordinator runtime) owns locking, timers and the
// metadata store.
//
// The model, after KIP-848 and Apache Kafka's group coordinator:
//
//   - the group epoch is bumped whenever the target assignment must be
//     recomputed: a member joins or leaves, a subscription changes, or the
//     metadata of a subscribed topic changes (created, deleted, partitions
//     added);
//   - the target assignment is computed by a server-side assignor
//     ("uniform" or "range") for the group epoch, lazily, by the next
//     heartbeat of any member; its epoch is the assignment epoch;
//   - each member converges towards its target one heartbeat at a time:
//     partitions it must give up are revoked first (the member keeps its
//     epoch until it acknowledges, by no longer reporting them), and a
//     partition is handed to its new owner only once no other member
//     holds it (assigned or pending revocation). A member that holds no
//     partition another member waits for moves to the assignment epoch at
//     once.
package consumer

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Config holds the broker-side settings of consumer groups.
type Config struct {
	// SessionTimeout is group.consumer.session.timeout.ms: a member that
	// does not heartbeat for this long is removed (Kafka: 45s).
	SessionTimeout time.Duration
	// HeartbeatInterval is group.consumer.heartbeat.interval.ms, returned
	// to members in every response (Kafka: 5s).
	HeartbeatInterval time.Duration
	// MaxSize is group.consumer.max.size; 0 means unlimited.
	MaxSize int
	// Assignors is group.consumer.assignors: the server-side assignors
	// members may name, the first being the default (Kafka: uniform,
	// range). Only "uniform" and "range" exist.
	Assignors []string
	// MigrationPolicy is group.consumer.migration.policy: whether groups
	// with members move between the classic and the consumer protocol
	// (the zero value is Kafka 4's default, bidirectional).
	MigrationPolicy MigrationPolicy
}

// WithDefaults fills zero fields with Kafka's defaults.
func (c Config) WithDefaults() Config {
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if len(c.Assignors) == 0 {
		c.Assignors = []string{Uniform, Range}
	}
	return c
}

// TopicID is a topic's UUID, as Kafka sends it.
type TopicID [16]byte

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id in hex (for snapshots).
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes what MarshalText encoded.
func (id *TopicID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("topic id %q: want %d hex digits", b, 2*len(id))
	}
	_, err := hex.Decode(id[:], b)
	return err
}

func compareIDs(a, b TopicID) int { return bytes.Compare(a[:], b[:]) }

// Topic is one topic of the cluster, as assignors see it.
type Topic struct {
	ID         TopicID `json:"id"`
	Name       string  `json:"name"`
	Partitions int32   `json:"partitions"`
}

// Image is the cluster's topics when a heartbeat is handled.
type Image struct {
	byName map[string]Topic
	names  []string // sorted
	// Racks are the racks every partition can be read in: the zones of
	// the live agents (see the rack awareness note in assignors.go); nil
	// when unknown.
	Racks []string
}

// NewImage indexes topics.
func NewImage(topics []Topic) Image {
	img := Image{byName: make(map[string]Topic, len(topics))}
	for _, t := range topics {
		img.byName[t.Name] = t
		img.names = append(img.names, t.Name)
	}
	slices.Sort(img.names)
	return img
}

// Topic looks a topic up by name.
func (img Image) Topic(name string) (Topic, bool) {
	t, ok := img.byName[name]
	return t, ok
}

// TP names one partition.
type TP struct {
	Topic     TopicID
	Partition int32
}

func compareTPs(a, b TP) int {
	if c := compareIDs(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Assignment maps topics to their partitions, sorted.
type Assignment map[TopicID][]int32

// Len is the number of partitions.
func (a Assignment) Len() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// TopicIDs returns the topics in byte order.
func (a Assignment) TopicIDs() []TopicID {
	ids := make([]TopicID, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

func (a Assignment) has(tp TP) bool { return slices.Contains(a[tp.Topic], tp.Partition) }

// toAssignment groups a set of partitions by topic, sorted.
func toAssignment[V any](set map[TP]V) Assignment {
	a := Assignment{}
	for tp := range set {
		a[tp.Topic] = append(a[tp.Topic], tp.Partition)
	}
	for _, ps := range a {
		slices.Sort(ps)
	}
	return a
}

// State is a consumer group's state, named as Kafka names it.
type State int

// The states of a consumer group.
const (
	Empty       State = iota
	Assigning         // the group epoch is ahead of the target assignment
	Reconciling       // some member has not reached the target assignment
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "Assigning", "Reconciling", "Stable", "Dead"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// memberState is where a member is in its reconciliation.
type memberState int

const (
	// stable: the member has its target assignment at the assignment
	// epoch, or is on its way there with nothing to revoke.
	memberStable memberState = iota
	// unrevoked: the member must acknowledge the revocation of
	// partitions (by no longer reporting them) before it moves on; it
	// keeps its epoch meanwhile.
	memberUnrevoked
	// unreleased: the member is at the assignment epoch but waits for
	// partitions other members still hold.
	memberUnreleased
)

var memberStateNames = [...]string{"stable", "unrevoked", "unreleased"}

func (s memberState) String() string { return memberStateNames[s] }

// Epochs a member sends to leave.
const (
	LeaveEpoch       int32 = -1 // leave the group
	StaticLeaveEpoch int32 = -2 // a static member leaves and will come back
)

// member is one member of the group.
type member struct {
	id, instanceID, rackID string
	clientID, clientHost   string
	rebalanceTimeout       time.Duration
	serverAssignor         string   // "" when the member named none
	topicNames             []string // sorted
	regex                  string   // "" when none
	re                     *regexp.Regexp

	epoch, previousEpoch int32
	state                memberState
	// assigned and pending map each partition to the epoch at which the
	// member was given it (KIP-1251's assignment epoch): commits for a
	// partition are accepted from that epoch on.
	assigned map[TP]int32
	pending  map[TP]int32 // being revoked, still held

	sessionDeadline   time.Time
	rebalanceDeadline time.Time // zero unless state is unrevoked

	// classic is set for a member that speaks the classic protocol
	// (classic.go).
	classic *classicMember
}

// Group is one consumer group. It is not safe for concurrent use.
type Group struct {
	name string
	cfg  Config

	epoch           int32 // group epoch
	assignmentEpoch int32 // epoch of target
	assignor        string
	members         map[string]*member
	static          map[string]string          // instance id → member id
	target          map[string]map[TP]struct{} // member id → target partitions
	// subscribed is the metadata of every topic some member subscribes
	// to that exists, as of the last heartbeat: a change bumps the
	// group epoch.
	subscribed map[string]Topic
	// racks are the partitions' racks the target assignment was computed
	// with: a change bumps the group epoch while a member has a rack
	// (KIP-1101).
	racks []string
	owner map[TP]string // member holding each partition (assigned or pending revocation)
	dead  bool
	// downgradeEpoch is the group epoch before the removals that made
	// Effects.Downgrade: the classic group's generation (ToClassic), so
	// that members at that epoch are told to rejoin, not fenced.
	downgradeEpoch int32

	newMemberID func() string
}

// New returns an empty group. newMemberID makes member ids for
// ConsumerGroupHeartbeat v0, where the coordinator chooses them; it is the
// only source of randomness.
func New(name string, cfg Config, newMemberID func() string) *Group {
	return &Group{
		name: name, cfg: cfg.WithDefaults(),
		members: map[string]*member{}, static: map[string]string{},
		target: map[string]map[TP]struct{}{}, subscribed: map[string]Topic{},
		owner: map[TP]string{}, newMemberID: newMemberID,
	}
}

// Name is the group id.
func (g *Group) Name() string { return g.name }

// Epoch is the group epoch.
func (g *Group) Epoch() int32 { return g.epoch }

// Len is the number of members, static members that left temporarily
// (epoch -2) included.
func (g *Group) Len() int { return len(g.members) }

// Idle reports a group without members: a coordinator may drop it from
// memory and load it again from the store when needed.
func (g *Group) Idle() bool { return len(g.members) == 0 }

// State is the group's state.
func (g *Group) State() State {
	switch {
	case g.dead:
		return Dead
	case len(g.members) == 0:
		return Empty
	case g.epoch > g.assignmentEpoch:
		return Assigning
	}
	for _, m := range g.members {
		if m.epoch != g.assignmentEpoch || m.state != memberStable {
			return Reconciling
		}
	}
	return Stable
}

// Kill marks the group Dead (deleted, or no longer coordinated here).
func (g *Group) Kill() { g.dead = true }

// NextDeadline is when Tick must be called next; zero if never.
func (g *Group) NextDeadline() time.Time {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, m := range g.members {
		at(m.sessionDeadline)
		at(m.rebalanceDeadline)
		if m.classic != nil {
			at(m.classic.joinDeadline)
			at(m.classic.syncDeadline)
		}
	}
	return next
}

// Effects is what the caller must do after a call: persist the group
// (Snapshot) if Persist is set, and only then send the response. If
// persisting fails, the caller drops the group from memory and answers
// NOT_COORDINATOR, so that members find the coordinator again and carry
// on from the last stored state.
//
// Downgrade asks the caller to convert the group into a classic group
// (ToClassic) before persisting it: the last member of the consumer
// protocol left and only classic members remain, and the migration
// policy allows it.
type Effects struct {
	Persist   bool
	Downgrade bool
}

// Tick removes the members whose session or rebalance timeout passed,
// and the classic members that did not rejoin or sync in time.
func (g *Group) Tick(now time.Time) Effects {
	var e Effects
	if g.dead {
		return e
	}
	over := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	removedConsumer, before := false, g.epoch
	for _, id := range g.memberIDs() {
		m := g.members[id]
		expired := over(m.sessionDeadline) || over(m.rebalanceDeadline)
		if m.classic != nil {
			expired = expired || over(m.classic.joinDeadline) || over(m.classic.syncDeadline)
		}
		if expired {
			removedConsumer = removedConsumer || m.classic == nil
			g.remove(m)
			e.Persist = true
		}
	}
	e.Downgrade = removedConsumer && g.shouldDowngrade(before)
	return e
}

// memberIDs lists member ids sorted, for deterministic iteration.
func (g *Group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// remove fences a member: its partitions are free for others, and the
// group epoch is bumped so that a new target assignment is computed.
func (g *Group) remove(m *member) {
	g.setOwned(m, nil, nil)
	delete(g.members, m.id)
	delete(g.target, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	g.epoch++
}

// setOwned replaces a member's assigned and pending partitions, keeping
// the owner index in step.
func (g *Group) setOwned(m *member, assigned, pending map[TP]int32) {
	for tp := range m.assigned {
		if g.owner[tp] == m.id {
			delete(g.owner, tp)
		}
	}
	for tp := range m.pending {
		if g.owner[tp] == m.id {
			delete(g.owner, tp)
		}
	}
	if assigned == nil {
		assigned = map[TP]int32{}
	}
	if pending == nil {
		pending = map[TP]int32{}
	}
	m.assigned, m.pending = assigned, pending
	for tp := range assigned {
		g.owner[tp] = m.id
	}
	for tp := range pending {
		g.owner[tp] = m.id
	}
}

// subscribedTo reports whether m subscribes to topic.
func (m *member) subscribedTo(topic string) bool {
	if _, ok := slices.BinarySearch(m.topicNames, topic); ok {
		return true
	}
	return m.re != nil && m.re.MatchString(topic)
}

// compileRegex compiles a subscription regular expression. Kafka matches
// it against whole topic names (RE2/J's matches()); Go's RE2 has the same
// syntax, anchored here.
func compileRegex(s string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + s + `)$`)
}
