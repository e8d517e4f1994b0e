package metastore

import (
	"errors"
	"fmt"
)

// Scheduler is an optional capability of a store that decides itself
// which agent runs which background job and which agents form each zone's
// cache ring: the control plane (floe:// URLs), which knows which agents
// hold a session to the vcluster right now. Agents on a store without it
// race for job leases and hash over the agents registered as live.
//
// A schedule never replaces the job leases: an agent runs a job only
// while the schedule assigns it the job AND it holds the job's lease, so
// two agents never run one job at once even while they disagree about
// the schedule (docs/control-plane.md, Scheduling).
type Scheduler interface {
	// WatchSchedule announces m as a member of the schedule for as long
	// as the store's connection lasts, and again after every
	// reconnection, and calls fn, one call at a time, with the
	// schedules the store decides. fn never gets a schedule older
	// (Schedule.Newer) than one it already got. When the connection is
	// lost fn gets the last schedule with Lost set: the jobs may have
	// moved already. stop withdraws m and ends the calls.
	//
	// ErrScheduleUnsupported means the store (an older control plane)
	// does not schedule: use the leases as on any other store.
	WatchSchedule(m ScheduleMember, fn func(Schedule)) (stop func(), err error)
}

// ErrScheduleUnsupported reports a store that does not schedule.
var ErrScheduleUnsupported = errors.New("the metadata store does not schedule jobs")

// ScheduleMember is what an agent announces to the scheduler.
type ScheduleMember struct {
	// Agent is the agent's registration (ID, address, Zone, Roles,
	// PeerAddr): ring members are told each other's peer addresses.
	Agent AgentInfo
	// Jobs names the jobs the agent runs when they are assigned to it
	// (agents with the jobs role); empty: none.
	Jobs []string
	// Ring is true for an agent that serves its zone's cache to peers
	// (the fetch role and a peer listener): a member of its zone's ring.
	Ring bool
}

// Bounds of what a member may announce, checked by the scheduler.
const (
	MaxScheduleJobs    = 64
	MaxScheduleNameLen = 256
)

// Check validates an announced member.
func (m ScheduleMember) Check() error {
	switch {
	case m.Agent.ID == "" || len(m.Agent.ID) > MaxScheduleNameLen:
		return fmt.Errorf("schedule member: agent id of %d bytes", len(m.Agent.ID))
	case len(m.Jobs) > MaxScheduleJobs:
		return fmt.Errorf("schedule member: %d jobs, at most %d", len(m.Jobs), MaxScheduleJobs)
	case len(m.Agent.Zone) > MaxScheduleNameLen || len(m.Agent.PeerAddr) > MaxScheduleNameLen || len(m.Agent.Host) > MaxScheduleNameLen:
		return errors.New("schedule member: zone, host or peer address too long")
	case len(m.Agent.Roles) > 16:
		return fmt.Errorf("schedule member: %d roles", len(m.Agent.Roles))
	}
	for _, j := range m.Jobs {
		if j == "" || len(j) > MaxScheduleNameLen {
			return fmt.Errorf("schedule member: job name of %d bytes", len(j))
		}
	}
	return nil
}

// Schedule is the scheduler's decision at one version: the agent that
// runs each job, and each zone's cache ring.
type Schedule struct {
	// Epoch is the scheduler's leadership epoch (the control plane's
	// lease epoch of the vcluster) and Version counts the schedules
	// within it: a schedule decided by a newer leader is always newer.
	Epoch   int64 `cbor:"epoch" json:"epoch"`
	Version int64 `cbor:"version" json:"version"`
	// Jobs maps each job announced by some member to the ID of the agent
	// that runs it.
	Jobs map[string]string `cbor:"jobs,omitempty" json:"jobs"`
	// Rings maps each zone to the agents of its cache ring (members with
	// Ring set), sorted by ID.
	Rings map[string][]AgentInfo `cbor:"rings,omitempty" json:"rings"`
	// Lost is set by the watcher, never by the scheduler: the connection
	// to the scheduler was lost, and this was the last schedule known.
	Lost bool `cbor:"-" json:"lost,omitempty"`
}

// Newer reports whether s was decided after t.
func (s Schedule) Newer(t Schedule) bool {
	if s.Epoch != t.Epoch {
		return s.Epoch > t.Epoch
	}
	return s.Version > t.Version
}

// JobsOf lists the jobs assigned to agent id.
func (s Schedule) JobsOf(id string) []string {
	var out []string
	for job, a := range s.Jobs {
		if a == id {
			out = append(out, job)
		}
	}
	return out
}
