package agent

import (
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/protocol"
)

// scheduleView follows the schedule of a store that decides it (the
// control plane, metastore.Scheduler): the cache ring of the agent's zone
// and the jobs assigned to it. Until a schedule arrives (or if the store
// turns out not to schedule) the ring is the registered live agents, as
// on any other store.
type scheduleView struct {
	members    *cluster.Membership
	store      metastore.Scheduler
	log        *slog.Logger
	assignment *jobs.Assignment // nil: the agent runs no jobs

	mu    sync.RWMutex
	ring  []metastore.AgentInfo
	known bool // a schedule arrived
}

// newScheduleView returns the view of store's schedule, or nil if store
// does not schedule.
func newScheduleView(store metastore.Store, members *cluster.Membership, log *slog.Logger) *scheduleView {
	s, ok := store.(metastore.Scheduler)
	if !ok {
		return nil
	}
	return &scheduleView{members: members, store: s, log: log}
}

// Self and Live are the zone cache ring's view (zonecache.Members).
func (v *scheduleView) Self() metastore.AgentInfo { return v.members.Self() }

func (v *scheduleView) Live() []metastore.AgentInfo {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.known {
		return v.members.Live()
	}
	return v.ring
}

// watch joins the schedule, announcing the agent's ring membership and,
// with runJobs, the standard jobs. It returns the assignment the jobs
// scheduler follows (nil if the store does not schedule after all: the
// jobs race for their leases) and what stops the watch.
func (v *scheduleView) watch(roles []string, runJobs bool) (*jobs.Assignment, func(), error) {
	self := v.members.Self()
	m := metastore.ScheduleMember{
		Agent: self,
		Ring:  self.PeerAddr != "" && slices.Contains(roles, protocol.RoleFetch),
	}
	if runJobs {
		m.Jobs = jobs.StandardNames()
		v.assignment = jobs.NewAssignment()
	}
	stop, err := v.store.WatchSchedule(m, v.update)
	if errors.Is(err, metastore.ErrScheduleUnsupported) {
		v.log.Warn("the control plane does not schedule: jobs race for their leases, the cache ring follows the registered agents", "err", err)
		v.assignment = nil
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return v.assignment, stop, nil
}

// update follows one schedule. A lost one keeps the ring (it only routes
// cache reads) but takes every job away: the control plane may have
// given them to another agent already.
func (v *scheduleView) update(s metastore.Schedule) {
	self := v.members.Self()
	var mine []string
	if !s.Lost {
		mine = s.JobsOf(self.ID)
		v.mu.Lock()
		v.ring, v.known = s.Rings[self.Zone], true
		v.mu.Unlock()
	}
	if v.assignment != nil {
		v.assignment.Set(mine)
	}
	v.log.Debug("schedule", "epoch", s.Epoch, "version", s.Version, "lost", s.Lost, "jobs", mine, "ring", len(s.Rings[self.Zone]))
}
