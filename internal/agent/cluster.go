package agent

import (
	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/protocol"
)

// clusterView shows the membership to the protocol handlers.
type clusterView struct{ m *cluster.Membership }

var _ protocol.Cluster = clusterView{}

func broker(a metastore.AgentInfo) protocol.Broker {
	b := protocol.Broker{NodeID: a.NodeID, Host: a.Host, Port: a.Port}
	if a.Zone != "" {
		zone := a.Zone
		b.Rack = &zone
	}
	return b
}

func (v clusterView) Self() protocol.Broker { return broker(v.m.Self()) }

func (v clusterView) Brokers() []protocol.Broker {
	live := v.m.Live()
	out := make([]protocol.Broker, len(live))
	for i, a := range live {
		out[i] = broker(a)
	}
	return out
}

func (v clusterView) Owner(key string) protocol.Broker { return broker(v.m.Owner(key)) }
