package sharecoord

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/sharepart"
)

// metrics are this agent's share-group totals: what happened to the
// records of the share partitions it leads, and how many are in flight.
// They carry no group label: group names are chosen by clients, and an
// agent may hold thousands of groups.
type metrics struct {
	acquired, accepted, released, rejected, archived, expired prometheus.Counter
	// heartbeatErrors counts ShareGroupHeartbeat answers by error
	// (Kafka's name: a small, fixed set); loaded counts groups whose
	// stored membership this agent took over.
	heartbeatErrors *prometheus.CounterVec
	loaded          prometheus.Counter
	// viewReloads counts groups' share-partition states dropped from
	// memory because the live agents changed (Options.ViewGeneration).
	viewReloads prometheus.Counter
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		acquired: counter("floe_share_records_acquired_total", "Records handed to share group members (deliveries), by the share partitions this agent leads."),
		accepted: counter("floe_share_records_acknowledged_total", "Records share group members accepted."),
		released: counter("floe_share_records_released_total", "Records share group members released, by acknowledgement or by closing their share session."),
		rejected: counter("floe_share_records_rejected_total", "Records share group members rejected."),
		archived: counter("floe_share_records_archived_total", "Records archived: rejected, acknowledged as gaps, at the delivery count limit, or skipped by a read_committed share group."),
		expired:  counter("floe_share_lock_expiries_total", "Deliveries whose acquisition lock expired before the member acknowledged the record."),
		heartbeatErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_share_heartbeat_errors_total",
			Help: "ShareGroupHeartbeat requests answered with an error, by error (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID, NOT_COORDINATOR, ...).",
		}, []string{"error"}),
		loaded:      counter("floe_share_groups_loaded_total", "Share groups whose stored membership, with members, this agent loaded: groups it took over."),
		viewReloads: counter("floe_share_state_view_reloads_total", "Share groups whose share-partition states this agent dropped and read again from the store because the live agents changed (a partition may have been led elsewhere meanwhile)."),
	}
	if reg == nil {
		return m
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "floe_share_records_in_flight",
		Help: "Offsets in the in-flight windows of the share partitions this agent holds in memory (from each start offset to its end offset).",
	}, func() float64 { return float64(c.inFlight()) })
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "floe_share_sessions",
		Help: "Share sessions this agent keeps.",
	}, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(len(c.sessions))
	})
	reg.MustRegister(m.acquired, m.accepted, m.released, m.rejected, m.archived, m.expired, m.heartbeatErrors, m.loaded, m.viewReloads, inFlight, sessions)
	return m
}

func (m *metrics) add(d sharepart.Counts) {
	for _, x := range []struct {
		c prometheus.Counter
		n int64
	}{{m.acquired, d.Acquired}, {m.accepted, d.Accepted}, {m.released, d.Released}, {m.rejected, d.Rejected}, {m.archived, d.Archived}, {m.expired, d.LockExpired}} {
		if x.n > 0 {
			x.c.Add(float64(x.n))
		}
	}
}

// observe adds what happened to a share partition since it was last
// observed to the metrics; call it, with ps.mu held, after every change.
// The in-flight count follows the groups in memory (a dropped group's
// count goes with it).
func (c *Coordinator) observe(gs *groupStates, ps *partState) {
	now := ps.p.Counts()
	c.metrics.add(sharepart.Counts{
		Acquired: now.Acquired - ps.seen.Acquired, Accepted: now.Accepted - ps.seen.Accepted,
		Released: now.Released - ps.seen.Released, Rejected: now.Rejected - ps.seen.Rejected,
		Archived: now.Archived - ps.seen.Archived, LockExpired: now.LockExpired - ps.seen.LockExpired,
	})
	ps.seen = now
	n := int64(ps.p.InFlight())
	gs.inFlight.Add(n - ps.inFlight)
	ps.inFlight = n
}

// inFlight sums the in-flight offsets of the groups in memory.
func (c *Coordinator) inFlight() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, gs := range c.states {
		n += gs.inFlight.Load()
	}
	return n
}
