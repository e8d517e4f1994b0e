package agent

import "github.com/floe-io/floe/internal/metastore"

// TLSPrincipal exposes tlsPrincipal to the black-box tests.
var TLSPrincipal = tlsPrincipal

// SelfID is the agent's ID in the membership and the schedule.
func SelfID(a *Agent) string { return a.members.Self().ID }

// RingMembers is the cache ring's view of the live agents: the control
// plane's ring of the agent's zone on floe://, the registered live agents
// otherwise.
func RingMembers(a *Agent) []metastore.AgentInfo {
	if a.schedule == nil {
		return a.members.Live()
	}
	return a.schedule.Live()
}
