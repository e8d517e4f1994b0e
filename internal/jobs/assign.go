package jobs

import (
	"slices"
	"sync"
)

// Assignment is the set of jobs a scheduler may run, when something
// other than the lease race decides which agent runs what: the control
// plane's schedule (metastore.Scheduler). With Options.Assignment set, a
// job runs only while it is assigned here AND its lease is held: the
// lease stays the fence, so an agent newly assigned a job starts it only
// once the previous holder released the lease (after its pass returned)
// or the lease expired (after the holder stopped for want of renewals).
//
// An Assignment starts empty: nothing runs until Set.
type Assignment struct {
	mu      sync.Mutex
	jobs    []string
	changed chan struct{} // closed and replaced at every change
}

// NewAssignment returns an empty assignment.
func NewAssignment() *Assignment {
	return &Assignment{changed: make(chan struct{})}
}

// Set makes jobs the assigned ones (nil: none, as when the connection to
// the scheduler is lost).
func (a *Assignment) Set(jobs []string) {
	jobs = slices.Sorted(slices.Values(jobs))
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.Equal(jobs, a.jobs) {
		return
	}
	a.jobs = jobs
	close(a.changed)
	a.changed = make(chan struct{})
}

// Has reports whether job is assigned.
func (a *Assignment) Has(job string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.jobs, job)
}

// Jobs lists the assigned jobs, sorted.
func (a *Assignment) Jobs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.jobs)
}

// Changed returns a channel closed at the next change.
func (a *Assignment) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}
