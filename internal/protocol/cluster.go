package protocol

import "strconv"

// Cluster is the handlers' view of the agents: who this agent is, which
// agents clients may use, and which agent owns a key (a consumer group's
// coordinator, a partition's nominal leader). Any agent can serve any
// partition; ownership only spreads load and gives groups one
// coordinator at a time.
type Cluster interface {
	Self() Broker
	Brokers() []Broker
	// Owner returns the agent owning key. Keys are namespaced by the
	// caller ("group:NAME", "partition:TOPICID/N").
	Owner(key string) Broker
	// Serves reports whether this agent has a role (RoleProduce,
	// RoleFetch, …).
	Serves(role string) bool
	// For narrows the view to what a client should see: the agents in its
	// zone (when its client id carries a floe_az=ZONE hint) that serve
	// the same client roles as this agent, so a pool of writers and a
	// pool of readers can be given separate bootstrap addresses.
	For(clientID string) Cluster
}

// Agent roles.
const (
	RoleProduce = "produce"
	RoleFetch   = "fetch"
	RoleJobs    = "jobs"
)

func groupKey(group string) string { return "group:" + group }

// partitionKeyPrefix is the key of a topic's partitions ("partition:
// TOPICID/N") without N, which the caller appends for each partition.
func partitionKeyPrefix(id [16]byte) []byte {
	s := "partition:" + topicIDString(id) + "/"
	return append(make([]byte, 0, len(s)+11), s...)
}

// partitionLeaders names the nominal leaders of one topic's partitions
// in a view: partition N is led by the agent owning "partition:
// TOPICID/N", which Metadata reports as its only replica and ISR. Every
// API that names a partition's leader or replicas asks it, so that they
// all agree with Metadata.
type partitionLeaders struct {
	view   Cluster
	key    []byte
	prefix int
}

func leadersIn(view Cluster, id [16]byte) *partitionLeaders {
	key := partitionKeyPrefix(id)
	return &partitionLeaders{view: view, key: key, prefix: len(key)}
}

// leader returns the node id of partition p's nominal leader.
func (l *partitionLeaders) leader(p int32) int32 {
	l.key = strconv.AppendInt(l.key[:l.prefix], int64(p), 10)
	return l.view.Owner(string(l.key)).NodeID
}
