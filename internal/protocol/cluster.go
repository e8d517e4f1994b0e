package protocol

import (
	"strconv"
	"sync"
)

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
}

// SingleAgent is the Cluster of an agent alone: it owns everything.
type SingleAgent struct {
	mu   sync.RWMutex
	self Broker
}

// NewSingleAgent returns a Cluster of one.
func NewSingleAgent(self Broker) *SingleAgent { return &SingleAgent{self: self} }

// Self implements Cluster.
func (s *SingleAgent) Self() Broker {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.self
}

// Brokers implements Cluster.
func (s *SingleAgent) Brokers() []Broker { return []Broker{s.Self()} }

// Owner implements Cluster.
func (s *SingleAgent) Owner(string) Broker { return s.Self() }

func groupKey(group string) string { return "group:" + group }

func partitionKey(id [16]byte, partition int32) string {
	return "partition:" + topicIDString(id) + "/" + strconv.Itoa(int(partition))
}
