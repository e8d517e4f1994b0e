package protocol

// Helpers shared by the consumer-group APIs (08, 09, 10-16, 42, 47).

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/coordinator"
)

// OwnsGroup reports whether the agent c.Self() coordinates group: the
// owner of the key "group:NAME" among the live agents.
func OwnsGroup(c Cluster, group string) bool {
	return sameBroker(c.Owner(groupKey(group)), c.Self())
}

// GroupKey is the ownership key of a consumer group: the agent that owns
// it (cluster.Owner) coordinates the group.
func GroupKey(group string) string { return groupKey(group) }

// OwnsKey reports whether the agent c.Self() owns an ownership key, such
// as a transactional id's (txncoord.Key).
func OwnsKey(c Cluster, key string) bool {
	return sameBroker(c.Owner(key), c.Self())
}

func sameBroker(a, b Broker) bool {
	return a.NodeID == b.NodeID && a.Host == b.Host && a.Port == b.Port
}

// groupsOrErr returns the coordinator, or the code to answer when the
// agent runs none.
func (h *Handler) groupsOrErr() (*coordinator.Coordinator, int16) {
	if h.cfg.Groups == nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	return h.cfg.Groups, 0
}

// maxOffsetMetadata is offset.metadata.max.bytes.
const maxOffsetMetadata = 4096

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
