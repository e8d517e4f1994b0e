package metastore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
)

// Consumer groups keep their committed offsets and their last stable
// state here, so that any agent can take over a group whose coordinator
// died without losing a committed offset or forcing members to rejoin.
// Membership itself (heartbeats, joins in progress) lives in the
// coordinator's memory.

// CommittedOffset is one committed position of a group in a partition.
type CommittedOffset struct {
	TopicID     TopicID
	Partition   int32
	Offset      int64
	LeaderEpoch int32  // -1 when the client sent none
	Metadata    string // the client's metadata string ("" for null)
	CommittedAt time.Time
}

// TopicPartition names one partition.
type TopicPartition struct {
	TopicID   TopicID
	Partition int32
}

// Group is the durable record of a consumer group: a few fields the store
// can list without decoding, and the coordinator's own encoding of the
// group's last stable state (generation, protocol, members, assignments),
// which the store never interprets.
type Group struct {
	Name         string
	ProtocolType string // "consumer", "connect", …; "" if unknown
	State        string // Kafka's state name: Empty, Stable, …
	Data         []byte // coordinator-owned encoding
	// Version increases with every SaveGroup; SaveGroup compares it so
	// that two agents that both think they coordinate the group cannot
	// overwrite each other's state unnoticed.
	Version   int64
	UpdatedAt time.Time
}

// GroupSummary is what ListGroups shows of a group.
type GroupSummary struct {
	Name         string
	ProtocolType string
	State        string
}

// ErrGroupVersionConflict reports a SaveGroup whose expected version is
// not the stored one: another coordinator wrote the group meanwhile.
var ErrGroupVersionConflict = errors.New("group was changed by another coordinator")

// ErrUnknownGroup reports a group with neither offsets nor a record.
var ErrUnknownGroup = errors.New("unknown group")

// GroupStore holds consumer groups' durable state. All methods are safe
// for concurrent use.
type GroupStore interface {
	// CommitOffsets stores offsets for a group atomically (all or none).
	// Offsets for unknown topics or partitions fail the whole call with
	// ErrUnknownTopicOrPartition; callers check them first to answer
	// per partition.
	CommitOffsets(ctx context.Context, group string, offsets []CommittedOffset) error
	// FetchOffsets returns every committed offset of a group (none for an
	// unknown group, without error), sorted by topic id and partition.
	FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error)
	// DeleteOffsets removes the given partitions' offsets of a group.
	DeleteOffsets(ctx context.Context, group string, partitions []TopicPartition) error
	// ExpireOffsets removes the offsets of a group committed before
	// olderThan (offsets.retention.minutes for empty groups), returning
	// how many were removed.
	ExpireOffsets(ctx context.Context, group string, olderThan time.Time) (int, error)

	// LoadGroup returns a group's record; found is false if none exists.
	LoadGroup(ctx context.Context, name string) (g Group, found bool, err error)
	// SaveGroup writes g if the stored version equals g.Version (0 when
	// no record exists yet) and returns the new version. Otherwise it
	// fails with ErrGroupVersionConflict and writes nothing.
	SaveGroup(ctx context.Context, g Group) (int64, error)
	// ListGroups lists groups that have a record or committed offsets
	// (the latter as State "Empty" with ProtocolType "consumer" when
	// there is no record), sorted by name.
	ListGroups(ctx context.Context) ([]GroupSummary, error)
	// DeleteGroup removes a group's record and all its offsets.
	// ErrUnknownGroup if it had neither.
	DeleteGroup(ctx context.Context, name string) error
}

// AgentInfo describes a live agent.
type AgentInfo struct {
	// ID is unique per agent process (a UUID made at start).
	ID string
	// NodeID is the Kafka broker id; Heartbeat assigns one (>= 0) the
	// first time it sees an ID with NodeID < 0, and keeps it.
	NodeID int32
	Host   string
	Port   int32
	Zone   string   // availability zone, "" if unknown
	Roles  []string // produce, fetch, jobs, groups
	// PeerAddr is the HOST:PORT of the agent's peer listener, where other
	// agents of its zone ask it for cache blocks; "" if it has none.
	PeerAddr string
	// Listeners maps each Kafka listener's name (PLAINTEXT, SASL_SSL, …)
	// to the HOST:PORT clients connecting through it are told to use;
	// Host and Port are the first listener's. nil for agents with one.
	Listeners map[string]string
	// Admin is the base URL of the agent's admin API (http://HOST:PORT
	// or https://HOST:PORT), where other agents' consoles ask for its
	// status and forward group actions; "" if it has none.
	Admin string
	// Version is the agent's build, as its console shows it; Started is
	// when it began serving (zero until then). Records written before
	// these fields existed have them empty.
	Version string
	Started time.Time
	// OutageManifest is the name the agent writes its outage manifests
	// under (--outage-manifest-name; "" for none). Heartbeat refuses,
	// with ErrOutageManifestTaken, a name that another agent's live
	// registration holds: two agents under one name would replay and
	// delete each other's manifests. Records written before this field
	// existed have it empty.
	OutageManifest string
	// Expires is when the agent counts as dead unless it heartbeats
	// again; set by the store from its own clock.
	Expires time.Time
}

// AgentRegistry tracks the live agents. All methods are safe for
// concurrent use.
type AgentRegistry interface {
	// Heartbeat registers or refreshes an agent for ttl and returns its
	// record with NodeID assigned. It fails with ErrOutageManifestTaken,
	// and writes nothing, when a.OutageManifest is set and a live
	// registration of another ID holds the same name; an expired one
	// does not count.
	Heartbeat(ctx context.Context, a AgentInfo, ttl time.Duration) (AgentInfo, error)
	// LiveAgents lists agents whose registration has not expired, sorted
	// by NodeID.
	LiveAgents(ctx context.Context) ([]AgentInfo, error)
	// Deregister removes an agent at once (graceful shutdown).
	Deregister(ctx context.Context, id string) error
	// ClusterSecret returns the secret agents prove to each other on
	// their peer listeners, creating it (ClusterSecretBytes random bytes)
	// the first time any agent asks. Every call, from any agent, returns
	// the same bytes.
	ClusterSecret(ctx context.Context) ([]byte, error)
}

// ErrOutageManifestTaken reports a Heartbeat whose OutageManifest name a
// live registration of another agent holds.
var ErrOutageManifestTaken = errors.New("outage manifest name held by another live agent")

// OutageManifestTaken is the error backends return when holder's live
// registration holds name: it wraps ErrOutageManifestTaken and says who
// holds the name and until when, in the store's clock.
func OutageManifestTaken(name string, holder AgentInfo) error {
	return fmt.Errorf("%w: %q is held by agent %s (node %d at %s, registration expires %s unless renewed)",
		ErrOutageManifestTaken, name, holder.ID, holder.NodeID,
		net.JoinHostPort(holder.Host, strconv.Itoa(int(holder.Port))), holder.Expires.UTC().Format(time.RFC3339Nano))
}

// ClusterSecretBytes is the length of the secret ClusterSecret creates.
const ClusterSecretBytes = 32

// OffsetsOnlyGroup is how ListGroups shows a group that has committed
// offsets but no record (a standalone consumer, or a group whose record
// was never saved): an Empty consumer group.
func OffsetsOnlyGroup(name string) GroupSummary {
	return GroupSummary{Name: name, ProtocolType: "consumer", State: "Empty"}
}

// AgentPruneAfter is how long the record of an expired agent is kept.
// Until then an agent that comes back (a long GC pause, a partition from
// the store) keeps its node id, so clients do not see its broker change
// id.
const AgentPruneAfter = time.Hour

// CheckHeartbeatArgs validates the arguments of Heartbeat, for backends.
func CheckHeartbeatArgs(a AgentInfo, ttl time.Duration) error {
	switch {
	case a.ID == "":
		return errors.New("empty agent id")
	case ttl <= 0:
		return fmt.Errorf("ttl %v is not positive", ttl)
	}
	return nil
}

// SortAgents puts agents in LiveAgents' order: by NodeID, then ID. Node
// ids an agent brought with it may repeat; the ID breaks ties so the
// order is still total.
func SortAgents(agents []AgentInfo) {
	slices.SortFunc(agents, func(a, b AgentInfo) int {
		return cmp.Or(cmp.Compare(a.NodeID, b.NodeID), cmp.Compare(a.ID, b.ID))
	})
}
