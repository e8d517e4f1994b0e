package sharecoord

import "github.com/floe-io/floe/internal/sharepart"

// InFlight counts a share partition's in-flight records by state, as
// this agent holds them (acquisitions included, which the store lacks).
type InFlight struct {
	Available, Acquired, Acknowledged, Archived int64
	// MaxDeliveryCount is the highest delivery count in the window.
	MaxDeliveryCount int16
	// Pending counts the records not yet acknowledged or archived
	// (available or acquired) by delivery count (0: never delivered).
	Pending map[int16]int64
}

// LiveGroup is what this agent knows of a share group beyond the store:
// its membership when it coordinates the group, and the share partitions
// it leads, with their acquisitions.
type LiveGroup struct {
	// Coordinated: this agent coordinates the group; State and Members
	// are then known.
	Coordinated bool
	State       string
	Members     int
	Parts       map[TP]InFlight
}

// Live describes a share group as this agent holds it in memory, for
// tools (floe groups, the console). It reads nothing from the store.
func (c *Coordinator) Live(group string) LiveGroup {
	var lg LiveGroup
	c.mu.Lock()
	if g := c.groups[group]; g != nil && c.opts.Owns(group) {
		d := g.Describe()
		lg.Coordinated, lg.State, lg.Members = true, d.State, len(d.Members)
	}
	gs := c.states[group]
	c.mu.Unlock()
	if gs == nil {
		return lg
	}
	gs.mu.Lock()
	parts := make(map[TP]*partState, len(gs.parts))
	for tp, ps := range gs.parts {
		parts[tp] = ps
	}
	gs.mu.Unlock()
	now := c.opts.Now()
	lg.Parts = make(map[TP]InFlight, len(parts))
	for tp, ps := range parts {
		f := InFlight{Pending: map[int16]int64{}}
		ps.mu.Lock()
		ps.p.Expire(now)
		for _, r := range ps.p.Records() {
			f.MaxDeliveryCount = max(f.MaxDeliveryCount, r.DeliveryCount)
			switch r.State {
			case sharepart.Available:
				f.Available++
				f.Pending[r.DeliveryCount]++
			case sharepart.Acquired:
				f.Acquired++
				f.Pending[r.DeliveryCount]++
			case sharepart.Acknowledged:
				f.Acknowledged++
			case sharepart.Archived:
				f.Archived++
			}
		}
		c.observe(gs, ps)
		ps.mu.Unlock()
		lg.Parts[tp] = f
	}
	return lg
}
