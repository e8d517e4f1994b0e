package agent

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/protocol"
)

// AllRoles is the default: an agent that does everything.
var AllRoles = []string{protocol.RoleProduce, protocol.RoleFetch, protocol.RoleJobs}

// clusterView shows the membership to the protocol handlers. agents, when
// set, narrows the live list to what one client may see.
type clusterView struct {
	m      *cluster.Membership
	agents []metastore.AgentInfo // nil: every live agent
	// listener names the Kafka listener the client connected through:
	// agents are shown at their address on the listener of that name.
	listener string
}

var _ protocol.Cluster = clusterView{}

func (v clusterView) broker(a metastore.AgentInfo) protocol.Broker {
	b := protocol.Broker{NodeID: a.NodeID, Host: a.Host, Port: a.Port}
	// An agent without this listener (one started with other listeners,
	// during a change of configuration) is shown at its first one.
	if addr, ok := a.Listeners[v.listener]; ok {
		if host, port, err := net.SplitHostPort(addr); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err == nil {
				b.Host, b.Port = host, int32(p)
			}
		}
	}
	if a.Zone != "" {
		zone := a.Zone
		b.Rack = &zone
	}
	return b
}

func (v clusterView) live() []metastore.AgentInfo {
	if v.agents != nil {
		return v.agents
	}
	return v.m.Live()
}

// readRacks are the zones in which a partition can be read: those of the
// live agents that serve fetches. They are every partition's racks for
// the consumer groups' rack-aware assignors.
func (v clusterView) readRacks() []string {
	var zones []string
	for _, a := range v.live() {
		if a.Zone != "" && (len(a.Roles) == 0 || slices.Contains(a.Roles, protocol.RoleFetch)) && !slices.Contains(zones, a.Zone) {
			zones = append(zones, a.Zone)
		}
	}
	slices.Sort(zones)
	return zones
}

func (v clusterView) Self() protocol.Broker { return v.broker(v.m.Self()) }

func (v clusterView) Brokers() []protocol.Broker {
	live := v.live()
	out := make([]protocol.Broker, len(live))
	for i, a := range live {
		out[i] = v.broker(a)
	}
	return out
}

func (v clusterView) Owner(key string) protocol.Broker { return v.broker(cluster.Owner(v.live(), key)) }

func (v clusterView) Serves(role string) bool { return slices.Contains(v.m.Self().Roles, role) }

// For keeps the agents in the client's zone (from a floe_az=ZONE hint in
// its client id) that serve the same client roles as this agent. If no
// live agent matches, the client sees every agent rather than none.
func (v clusterView) For(clientID string) protocol.Cluster {
	self := v.m.Self()
	zone := ZoneHint(clientID)
	var keep []metastore.AgentInfo
	for _, a := range v.m.Live() {
		if zone != "" && a.Zone != zone {
			continue
		}
		if clientRoles(a.Roles) != clientRoles(self.Roles) {
			continue
		}
		keep = append(keep, a)
	}
	if len(keep) == 0 {
		return v
	}
	return clusterView{m: v.m, agents: keep, listener: v.listener}
}

// clientRoles summarises the roles clients care about.
func clientRoles(roles []string) [2]bool {
	return [2]bool{slices.Contains(roles, protocol.RoleProduce), slices.Contains(roles, protocol.RoleFetch)}
}

// ZoneHint returns the availability zone a client names in its client id
// as floe_az=ZONE (separated from the rest by ',', ';', ' ' or '&'), or "".
func ZoneHint(clientID string) string {
	i := strings.Index(clientID, "floe_az=")
	if i < 0 {
		return ""
	}
	zone := clientID[i+len("floe_az="):]
	if j := strings.IndexAny(zone, ",; &"); j >= 0 {
		zone = zone[:j]
	}
	return zone
}
