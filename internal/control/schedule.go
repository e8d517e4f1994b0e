package control

// Scheduling from the control plane (docs/control-plane.md,
// Scheduling): the agents holding a session to a vcluster and announcing
// themselves with remote.OpSchedule are its schedule's members; Assign
// decides from them alone which agent runs each job and which agents form
// each zone's cache ring, and every change is pushed to the members as a
// KindSchedule frame stamped (lease epoch, version). Nothing here is
// journaled: a new leader starts from the sessions that reconnect to it,
// with a higher epoch. The job leases, which are journaled, remain the
// fence: an agent runs a job only while it is assigned it and holds its
// lease.

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// MaxScheduledJobs bounds the distinct job names a vcluster's schedule
// assigns (the standard jobs are four); names beyond it, in sorted
// order, are not assigned.
const MaxScheduledJobs = 256

// Assign decides the jobs and the cache rings of a schedule from its
// members, at most one per agent ID (a later duplicate is ignored), and
// the previous schedule's jobs (nil for a first schedule). It is pure:
// the same arguments, members in any order, give the same answer.
//
// Jobs: every job some member announces goes to one of the members that
// announce it ("runners"), with the loads bounded by lo = ⌊jobs/runners⌋
// and hi = ⌈jobs/runners⌉ (candidates permitting):
//
//  1. a job stays on its previous agent if that agent is still a
//     candidate and runs fewer than hi jobs: nothing moves without a
//     reason;
//  2. the others go to their highest-scoring candidate running fewer
//     than hi jobs (rendezvous hashing of job and agent address), or
//     the highest-scoring one if all run that many;
//  3. while some runner has fewer than lo jobs, it takes one from a
//     runner with more than lo: preferably a job that moved in step 2
//     anyway, then the one it scores highest for.
//
// So when an agent leaves only its jobs move, plus what evens the loads
// out; when one joins it takes ⌊jobs/runners⌋ jobs and nothing else
// moves; and a handful of jobs spreads over the agents instead of
// sitting where the hash happens to put them. Agents are ranked by
// address, as cluster.Owner ranks them, so a new leader (no previous
// schedule) puts a job where the hash put it before, wherever it can.
//
// Rings: each zone's ring is the members of that zone with Ring set and
// a peer address, sorted by ID.
func Assign(prev map[string]string, members []metastore.ScheduleMember) (jobs map[string]string, rings map[string][]metastore.AgentInfo) {
	seen := map[string]bool{}
	var ms []*metastore.ScheduleMember
	for i := range members {
		m := &members[i]
		if m.Agent.ID == "" || seen[m.Agent.ID] {
			continue
		}
		seen[m.Agent.ID] = true
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *metastore.ScheduleMember) int { return cmp.Compare(a.Agent.ID, b.Agent.ID) })
	jobs = assignJobs(prev, ms)
	for _, m := range ms {
		if !m.Ring || m.Agent.PeerAddr == "" {
			continue
		}
		if rings == nil {
			rings = map[string][]metastore.AgentInfo{}
		}
		a := m.Agent
		rings[a.Zone] = append(rings[a.Zone], metastore.AgentInfo{
			ID: a.ID, NodeID: a.NodeID, Host: a.Host, Port: a.Port, Zone: a.Zone, Roles: a.Roles, PeerAddr: a.PeerAddr,
		})
	}
	return jobs, rings
}

// assignJobs is Assign's jobs, of members sorted by ID without
// duplicates.
func assignJobs(prev map[string]string, ms []*metastore.ScheduleMember) map[string]string {
	type candidate struct {
		id    string
		score uint64
	}
	cands := map[string][]candidate{} // job → its candidates, best first
	var runners []string
	announced := map[string][]string{} // agent → the jobs it runs
	ranks := map[string]string{}
	for _, m := range ms {
		if len(m.Jobs) > 0 {
			runners = append(runners, m.Agent.ID)
		}
		r := rank(m.Agent)
		announced[m.Agent.ID], ranks[m.Agent.ID] = m.Jobs, r
		for _, j := range m.Jobs {
			if _, ok := cands[j]; ok || len(cands) < MaxScheduledJobs {
				cands[j] = append(cands[j], candidate{m.Agent.ID, jobScore(j, r)})
			}
		}
	}
	if len(runners) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(cands))
	for _, j := range names {
		slices.SortFunc(cands[j], func(a, b candidate) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
	}
	lo, hi := len(names)/len(runners), (len(names)+len(runners)-1)/len(runners)
	jobs := make(map[string]string, len(names))
	load := map[string]int{}
	kept := map[string]bool{}
	// 1. Stay where you were.
	for _, j := range names {
		p, ok := prev[j]
		if ok && load[p] < hi && slices.Contains(announced[p], j) {
			jobs[j], kept[j] = p, true
			load[p]++
		}
	}
	// 2. The rest by rendezvous, bounded.
	for _, j := range names {
		if kept[j] {
			continue
		}
		pick := cands[j][0].id
		for _, c := range cands[j] {
			if load[c.id] < hi {
				pick = c.id
				break
			}
		}
		jobs[j] = pick
		load[pick]++
	}
	// 3. Even out: each move raises a runner below lo, so at most
	// len(names) moves.
	for range names {
		under := ""
		for _, r := range runners {
			if load[r] < lo && (under == "" || load[r] < load[under]) {
				under = r
			}
		}
		if under == "" {
			break
		}
		best, bestKept, bestScore := "", true, uint64(0)
		for _, j := range names {
			if load[jobs[j]] <= lo || !slices.Contains(announced[under], j) {
				continue
			}
			sc := jobScore(j, ranks[under])
			if best == "" || (bestKept && !kept[j]) || (bestKept == kept[j] && sc > bestScore) {
				best, bestKept, bestScore = j, kept[j], sc
			}
		}
		if best == "" {
			break // nothing it can take
		}
		load[jobs[best]]--
		jobs[best] = under
		kept[best] = false
		load[under]++
	}
	return jobs
}

// rank is what an agent is hashed by: its advertised address, which a
// restart keeps (as cluster.Owner), or its ID if it has none.
func rank(a metastore.AgentInfo) string {
	if a.Host == "" {
		return a.ID
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

func jobScore(job, rank string) uint64 {
	d := xxhash.New()
	d.WriteString("job:")
	d.WriteString(job)
	d.Write([]byte{0})
	d.WriteString(rank)
	return d.Sum64()
}

// DefaultScheduleGrace is Options.ScheduleGrace's default: longer than a
// reconnection, shorter than the agents' job lease TTL (30 s by
// default), so that it delays nothing when an agent was killed: its jobs
// wait for its leases to expire anyway.
const DefaultScheduleGrace = 5 * time.Second

// schedule is one vcluster's schedule: its members (one per subscribed
// session), the agents whose session ended within the grace period, and
// the schedule last decided.
type schedule struct {
	v     *vcluster
	grace time.Duration // set by the server before any session

	mu      sync.Mutex
	members map[*session]*scheduled
	gone    map[string]goneMember // agent ID → its member, until its grace ends
	order   int64                 // subscriptions so far: the later of two with one agent ID wins
	current metastore.Schedule

	changes, moves atomic.Int64
}

// goneMember is an agent whose session ended without withdrawing: it
// keeps its jobs (not its ring place) until its grace ends, in case it
// reconnects.
type goneMember struct {
	member metastore.ScheduleMember
	order  int64
	until  time.Time
}

// scheduled is one subscribed session.
type scheduled struct {
	member metastore.ScheduleMember
	order  int64
	latest atomic.Pointer[[]byte] // the newest schedule frame's payload
	wake   chan struct{}
	quit   chan struct{} // closed when the member leaves: its push loop ends
}

func newSchedule(v *vcluster) *schedule {
	return &schedule{v: v, members: map[*session]*scheduled{}, gone: map[string]goneMember{}}
}

// subscribe answers remote.OpSchedule: it makes the session a member (or
// withdraws it, for an empty agent ID) and answers the current schedule.
func (sc *schedule) subscribe(s *session, args remote.RawMessage) remote.Response {
	if len(args) > remote.MaxScheduleArgs {
		return remote.Response{Err: &remote.WireError{Msg: fmt.Sprintf("%s: %d bytes of arguments, at most %d", remote.OpSchedule, len(args), remote.MaxScheduleArgs)}}
	}
	var m metastore.ScheduleMember
	if err := remote.Unmarshal(args, &m); err != nil {
		return remote.Response{Err: &remote.WireError{Msg: fmt.Sprintf("%s: bad arguments: %v", remote.OpSchedule, err)}}
	}
	if m.Agent.ID == "" {
		sc.remove(s, false)
		return remote.Response{}
	}
	if err := m.Check(); err != nil {
		return remote.Response{Err: remote.EncodeError(err)}
	}
	sc.mu.Lock()
	mem := sc.members[s]
	if mem == nil {
		mem = &scheduled{wake: make(chan struct{}, 1), quit: make(chan struct{})}
		sc.members[s] = mem
		go sc.pushLoop(s, mem)
	}
	sc.order++
	mem.member, mem.order = m, sc.order
	delete(sc.gone, m.Agent.ID) // back within its grace
	changed := sc.decide()
	cur := sc.current
	sc.mu.Unlock()
	if changed {
		sc.push(cur)
	}
	res, err := remote.Marshal(cur)
	return remote.Response{Result: res, Err: remote.EncodeError(err)}
}

// leave removes the member of a session that ended; its jobs stay
// assigned to its agent for the grace period.
func (sc *schedule) leave(s *session) { sc.remove(s, true) }

// remove removes a session's member, if it has one, keeping its jobs for
// the grace period if grace is set (a session that ended, not one that
// withdrew).
func (sc *schedule) remove(s *session, grace bool) {
	sc.mu.Lock()
	mem, ok := sc.members[s]
	if ok {
		close(mem.quit)
		delete(sc.members, s)
		if grace && sc.grace > 0 && len(mem.member.Jobs) > 0 && !sc.liveLocked(mem.member.Agent.ID) {
			g := goneMember{member: mem.member, order: mem.order, until: time.Now().Add(sc.grace)}
			g.member.Ring = false // reads must not wait on an agent that may be dead
			sc.gone[mem.member.Agent.ID] = g
			time.AfterFunc(sc.grace, sc.expire)
		}
	}
	changed := ok && sc.decide()
	cur := sc.current
	sc.mu.Unlock()
	if changed {
		sc.push(cur)
	}
}

// liveLocked reports whether an agent has a subscribed session.
func (sc *schedule) liveLocked(id string) bool {
	for _, m := range sc.members {
		if m.member.Agent.ID == id {
			return true
		}
	}
	return false
}

// expire ends the grace periods that are over.
func (sc *schedule) expire() {
	sc.mu.Lock()
	now := time.Now()
	expired := false
	for id, g := range sc.gone {
		if !now.Before(g.until) {
			delete(sc.gone, id)
			expired = true
		}
	}
	changed := expired && sc.decide()
	cur := sc.current
	sc.mu.Unlock()
	if changed {
		sc.push(cur)
	}
}

// decide computes the schedule of the current members and, if it
// differs from the last, makes it the next version. sc.mu is held.
func (sc *schedule) decide() bool {
	type entry struct {
		member metastore.ScheduleMember
		order  int64
	}
	list := make([]entry, 0, len(sc.members)+len(sc.gone))
	for _, m := range sc.members {
		list = append(list, entry{m.member, m.order})
	}
	for _, g := range sc.gone {
		list = append(list, entry{g.member, g.order})
	}
	// Of two sessions of one agent (a reconnection the server has not yet
	// seen end), the later subscription counts.
	slices.SortFunc(list, func(a, b entry) int { return cmp.Compare(b.order, a.order) })
	ms := make([]metastore.ScheduleMember, len(list))
	for i, e := range list {
		ms[i] = e.member
	}
	jobs, rings := Assign(sc.current.Jobs, ms)
	if sc.current.Version > 0 && maps.Equal(jobs, sc.current.Jobs) && maps.EqualFunc(rings, sc.current.Rings, sameRing) {
		return false
	}
	for job, agent := range sc.current.Jobs {
		if jobs[job] != agent {
			sc.moves.Add(1)
		}
	}
	sc.changes.Add(1)
	sc.current = metastore.Schedule{Epoch: sc.v.epoch, Version: sc.current.Version + 1, Jobs: jobs, Rings: rings}
	sc.v.log.Info("schedule", "epoch", sc.current.Epoch, "version", sc.current.Version, "members", len(sc.members), "in_grace", len(sc.gone), "jobs", jobs, "rings", ringSizes(rings))
	return true
}

func sameRing(a, b []metastore.AgentInfo) bool {
	return slices.EqualFunc(a, b, func(x, y metastore.AgentInfo) bool {
		return x.ID == y.ID && x.PeerAddr == y.PeerAddr && x.Host == y.Host && x.Port == y.Port && x.NodeID == y.NodeID
	})
}

func ringSizes(rings map[string][]metastore.AgentInfo) map[string]int {
	out := make(map[string]int, len(rings))
	for z, r := range rings {
		out[z] = len(r)
	}
	return out
}

// push hands cur to every member's push loop. A member whose session is
// slow gets only the newest schedule once it can take one.
func (sc *schedule) push(cur metastore.Schedule) {
	payload, err := remote.Marshal(cur)
	if err != nil {
		sc.v.log.Error("encoding the schedule failed", "err", err)
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if cur.Version != sc.current.Version {
		return // a newer one is being pushed
	}
	for _, m := range sc.members {
		m.latest.Store(&payload)
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// pushLoop writes the newest schedule to a member's session, until the
// session ends. Schedules pushed while its queue was full are skipped:
// only the newest matters, and the agent ignores older ones anyway.
func (sc *schedule) pushLoop(s *session, m *scheduled) {
	for {
		select {
		case <-m.wake:
		case <-m.quit:
			return
		case <-s.ctx.Done():
			return
		}
		p := m.latest.Load()
		if p == nil {
			continue
		}
		select {
		case s.out <- remote.Frame{Kind: remote.KindSchedule, Payload: *p}:
		case <-m.quit:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// ScheduleInfo is a vcluster's schedule and its counters.
type ScheduleInfo struct {
	metastore.Schedule
	// Members counts the subscribed sessions; InGrace the agents whose
	// session ended and who keep their jobs until their grace ends.
	Members int `json:"members"`
	InGrace int `json:"in_grace"`
	// Changes counts the schedules decided since the vcluster opened
	// here; Moves the jobs that changed agent in them.
	Changes int64 `json:"changes"`
	Moves   int64 `json:"moves"`
}

// Schedule returns a vcluster's current schedule.
func (s *Server) Schedule(name string) (ScheduleInfo, bool) {
	s.mu.Lock()
	v := s.vclusters[name]
	s.mu.Unlock()
	if v == nil {
		return ScheduleInfo{}, false
	}
	sc := v.sched
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return ScheduleInfo{Schedule: sc.current, Members: len(sc.members), InGrace: len(sc.gone), Changes: sc.changes.Load(), Moves: sc.moves.Load()}, true
}
