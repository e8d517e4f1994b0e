package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Join handles a JoinGroup. If the request has to wait for the rebalance,
// its reply comes in the Effects of a later call, addressed to tok.
func (g *Group) Join(now time.Time, tok Token, r JoinRequest) Effects {
	var e Effects
	fail := func(code int16) Effects {
		e.join(tok, JoinResponse{Err: code, MemberID: r.MemberID, Generation: -1})
		return e
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if !g.validSessionTimeout(r.SessionTimeout) {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	if r.RebalanceTimeout <= 0 { // JoinGroup v0 has none: Kafka uses the session timeout
		r.RebalanceTimeout = r.SessionTimeout
	}
	if !g.supportsProtocols(r.ProtocolType, r.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if r.MemberID == "" {
		g.joinNew(now, tok, r, &e)
		return e
	}
	if _, ok := g.pending[r.MemberID]; ok && r.InstanceID == "" {
		g.add(now, tok, r, r.MemberID, &e)
		return e
	}
	if code := g.checkMember(r.MemberID, r.InstanceID); code != 0 {
		return fail(code)
	}
	m := g.members[r.MemberID]
	switch g.state {
	case PreparingRebalance:
		g.update(m, tok, r, &e)
		g.maybeCompleteJoin(now, &e)
	case CompletingRebalance:
		if sameProtocols(m.protocols, r.Protocols) {
			// The member missed our response: repeat it.
			m.deadline = now.Add(m.sessionTimeout)
			e.join(tok, g.joinResponse(m.id, m.id == g.leader))
			return e
		}
		g.update(m, tok, r, &e)
		g.prepareRebalance(now, &e)
	case Stable:
		if m.id != g.leader && sameProtocols(m.protocols, r.Protocols) {
			m.deadline = now.Add(m.sessionTimeout)
			e.join(tok, g.joinResponse(m.id, false))
			return e
		}
		// The leader rejoining, or a member whose subscription changed,
		// starts a rebalance.
		g.update(m, tok, r, &e)
		g.prepareRebalance(now, &e)
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	return e
}

func (g *Group) joinNew(now time.Time, tok Token, r JoinRequest, e *Effects) {
	id := g.nextID(r.ClientID)
	if r.InstanceID != "" {
		if old, ok := g.static[r.InstanceID]; ok {
			g.replaceStatic(now, tok, r, g.members[old], id, e)
			return
		}
	}
	if g.cfg.MaxSize > 0 && len(g.members)+len(g.pending) >= g.cfg.MaxSize {
		e.join(tok, JoinResponse{Err: kerr.GroupMaxSizeReached.Code, Generation: -1})
		return
	}
	if r.InstanceID == "" && r.Version >= 4 {
		// KIP-394: a dynamic member learns its id first and must rejoin
		// with it, so that a client retrying a timed-out join does not
		// leave an orphan member behind for a whole session timeout.
		g.pending[id] = pendingMember{id: id, deadline: now.Add(r.SessionTimeout)}
		e.join(tok, JoinResponse{Err: kerr.MemberIDRequired.Code, MemberID: id, Generation: -1})
		return
	}
	g.add(now, tok, r, id, e)
}

// add makes a new member that waits for the rebalance.
func (g *Group) add(now time.Time, tok Token, r JoinRequest, id string, e *Effects) {
	delete(g.pending, id)
	// Only members arriving while a brand-new group waits out its initial
	// delay extend that delay (as in Kafka).
	m := &member{id: id, isNew: g.state == PreparingRebalance && g.generation == 0}
	g.members[id] = m
	g.order = append(g.order, id)
	g.set(m, tok, r)
	if r.InstanceID != "" {
		g.static[r.InstanceID] = id
	}
	if len(g.members) == 1 {
		g.protocolType = r.ProtocolType
	}
	if g.leader == "" {
		g.leader = id
	}
	switch g.state {
	case PreparingRebalance:
		g.maybeCompleteJoin(now, e)
	default:
		g.prepareRebalance(now, e)
	}
}

func (g *Group) set(m *member, tok Token, r JoinRequest) {
	m.instanceID = r.InstanceID
	m.clientID, m.clientHost = r.ClientID, r.ClientHost
	m.sessionTimeout, m.rebalanceTimeout = r.SessionTimeout, r.RebalanceTimeout
	m.protocolType, m.protocols = r.ProtocolType, r.Protocols
	m.joinVersion = r.Version
	m.joining = tok
}

// update records a known member's new join.
func (g *Group) update(m *member, tok Token, r JoinRequest, e *Effects) {
	if m.joining != 0 && m.joining != tok {
		// A retried join supersedes the one still waiting.
		e.join(m.joining, JoinResponse{Err: kerr.RebalanceInProgress.Code, MemberID: m.id, Generation: -1})
	}
	g.set(m, tok, r)
}

// replaceStatic gives a known group.instance.id a new member id (KIP-345).
// The old member id is fenced; the assignment carries over, and a stable
// group whose selected protocol does not change does not rebalance.
func (g *Group) replaceStatic(now time.Time, tok Token, r JoinRequest, old *member, id string, e *Effects) {
	e.join(old.joining, JoinResponse{Err: kerr.FencedInstanceID.Code, MemberID: old.id, Generation: -1})
	e.sync(old.syncing, SyncResponse{Err: kerr.FencedInstanceID.Code})
	prevLeader := g.leader

	m := &member{id: id, assignment: old.assignment}
	g.set(m, 0, r)
	delete(g.members, old.id)
	g.members[id] = m
	for i, oid := range g.order {
		if oid == old.id {
			g.order[i] = id
		}
	}
	g.static[r.InstanceID] = id
	if g.leader == old.id {
		g.leader = id
	}
	if g.pendingSync[old.id] {
		delete(g.pendingSync, old.id)
		g.pendingSync[id] = true
	}

	switch g.state {
	case Stable:
		if g.selectProtocol() == g.protocol {
			m.deadline = now.Add(m.sessionTimeout)
			e.Persist = true
			resp := g.joinResponse(id, false)
			if r.Version >= 9 {
				// KIP-814: the leader learns it leads but must not run
				// its assignor: the group keeps its assignment.
				if id == g.leader {
					resp = g.joinResponse(id, true)
					resp.SkipAssignment = true
				}
			} else {
				// Older clients would run the assignor if told they lead,
				// and a stable group would ignore the result: keep
				// naming the old leader id.
				resp.Leader = prevLeader
			}
			e.join(tok, resp)
			return
		}
		m.joining = tok
		g.prepareRebalance(now, e)
	case CompletingRebalance:
		m.joining = tok
		g.prepareRebalance(now, e)
	default: // PreparingRebalance
		m.joining = tok
		g.maybeCompleteJoin(now, e)
	}
}

func (g *Group) joinResponse(id string, withMembers bool) JoinResponse {
	r := JoinResponse{MemberID: id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader}
	if withMembers {
		for _, mid := range g.order {
			m := g.members[mid]
			r.Members = append(r.Members, JoinMember{ID: m.id, InstanceID: m.instanceID, Metadata: m.metadata(g.protocol)})
		}
	}
	return r
}

// prepareRebalance moves the group to PreparingRebalance: every member
// must rejoin within the rebalance timeout.
func (g *Group) prepareRebalance(now time.Time, e *Effects) {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			e.sync(m.syncing, SyncResponse{Err: kerr.RebalanceInProgress.Code})
			m.syncing = 0
		}
	}
	timeout := g.rebalanceTimeout()
	if g.state == Empty && g.cfg.InitialRebalanceDelay > 0 {
		g.delayDeadline = now.Add(g.cfg.InitialRebalanceDelay)
		g.delayRemaining = max(timeout-g.cfg.InitialRebalanceDelay, 0)
	} else {
		g.delayDeadline = time.Time{}
	}
	g.joinDeadline = now.Add(timeout)
	g.state = PreparingRebalance
	g.pendingSync = map[string]bool{}
	g.maybeCompleteJoin(now, e)
}

// maybeCompleteJoin completes the join phase once every member has
// rejoined and no member id handed out by MEMBER_ID_REQUIRED is still
// expected, unless the initial delay is running.
func (g *Group) maybeCompleteJoin(now time.Time, e *Effects) {
	if g.state != PreparingRebalance || !g.delayDeadline.IsZero() || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joining == 0 {
			return
		}
	}
	g.completeJoin(now, e)
}

// completeJoin starts the next generation with the members that rejoined.
func (g *Group) completeJoin(now time.Time, e *Effects) {
	g.delayDeadline = time.Time{}
	for _, id := range append([]string(nil), g.order...) {
		if m := g.members[id]; m.joining == 0 {
			g.remove(m, kerr.UnknownMemberID.Code, e)
		}
	}
	g.generation++
	g.pendingSync = map[string]bool{}
	if len(g.members) == 0 {
		g.state = Empty
		g.protocol, g.leader = "", ""
		g.emptySince = now
		e.Persist = true
		return
	}
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.order[0]
	}
	g.state = CompletingRebalance
	for _, id := range g.order {
		m := g.members[id]
		e.join(m.joining, g.joinResponse(id, id == g.leader))
		m.joining = 0
		m.isNew = false
		m.deadline = now.Add(m.sessionTimeout)
		g.pendingSync[id] = true
	}
	g.syncDeadline = now.Add(g.rebalanceTimeout())
}

// remove drops a member, answering its waiting requests with code.
// remove drops m from the group and has the group persisted: a
// coordinator that takes the group over must not bring m back from an
// older snapshot (it would wait a whole session timeout for it).
func (g *Group) remove(m *member, code int16, e *Effects) {
	e.Persist = true
	e.join(m.joining, JoinResponse{Err: code, MemberID: m.id, Generation: -1})
	e.sync(m.syncing, SyncResponse{Err: code})
	delete(g.members, m.id)
	for i, id := range g.order {
		if id == m.id {
			g.order = append(g.order[:i:i], g.order[i+1:]...)
			break
		}
	}
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

func (g *Group) removeAndRebalance(now time.Time, m *member, e *Effects) {
	g.remove(m, kerr.UnknownMemberID.Code, e)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now, e)
	case PreparingRebalance:
		g.maybeCompleteJoin(now, e)
	}
}

// Sync handles a SyncGroup. Followers wait for the leader's assignment.
func (g *Group) Sync(now time.Time, tok Token, r SyncRequest) Effects {
	var e Effects
	fail := func(code int16) Effects {
		e.sync(tok, SyncResponse{Err: code})
		return e
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if code := g.checkMember(r.MemberID, r.InstanceID); code != 0 {
		return fail(code)
	}
	if r.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if (r.ProtocolType != "" && r.ProtocolType != g.protocolType) || (r.Protocol != "" && r.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[r.MemberID]
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case CompletingRebalance:
		if m.syncing != 0 && m.syncing != tok {
			e.sync(m.syncing, SyncResponse{Err: kerr.RebalanceInProgress.Code})
		}
		m.syncing = tok
		delete(g.pendingSync, m.id)
		if m.id != g.leader {
			return e
		}
		for _, om := range g.members {
			// Members the leader left out get an empty assignment, as
			// in Kafka; clients read it as "no partitions".
			om.assignment = r.Assignments[om.id]
			if om.assignment == nil {
				om.assignment = []byte{}
			}
		}
		g.state = Stable
		e.Persist = true
		for _, id := range g.order {
			om := g.members[id]
			if om.syncing != 0 {
				e.sync(om.syncing, g.syncResponse(om))
				om.syncing = 0
				om.deadline = now.Add(om.sessionTimeout)
			}
		}
	case Stable:
		delete(g.pendingSync, m.id)
		m.deadline = now.Add(m.sessionTimeout)
		e.sync(tok, g.syncResponse(m))
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	return e
}

func (g *Group) syncResponse(m *member) SyncResponse {
	return SyncResponse{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
}

// Heartbeat handles a Heartbeat and returns its error code.
func (g *Group) Heartbeat(now time.Time, memberID, instanceID string, generation int32) int16 {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if code := g.checkMember(memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[memberID]
	m.deadline = now.Add(m.sessionTimeout)
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveResult is one member's outcome in a LeaveGroup.
type LeaveResult struct {
	MemberID   string // resolved from the instance id when one was given
	InstanceID string
	Err        int16
}

// Leave removes members (KIP-345 batches them; static members may be
// named by instance id alone).
func (g *Group) Leave(now time.Time, leaving []LeaveMember) ([]LeaveResult, Effects) {
	var e Effects
	out := make([]LeaveResult, 0, len(leaving))
	for _, l := range leaving {
		res := LeaveResult{MemberID: l.MemberID, InstanceID: l.InstanceID}
		out = append(out, res)
		r := &out[len(out)-1]
		if g.state == Dead {
			r.Err = kerr.CoordinatorNotAvailable.Code
			continue
		}
		id := l.MemberID
		if l.InstanceID != "" {
			known, ok := g.static[l.InstanceID]
			switch {
			case !ok:
				r.Err = kerr.UnknownMemberID.Code
				continue
			case id != "" && known != id:
				r.Err = kerr.FencedInstanceID.Code
				continue
			}
			id, r.MemberID = known, known
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			g.maybeCompleteJoin(now, &e)
			continue
		}
		m, ok := g.members[id]
		if !ok {
			r.Err = kerr.UnknownMemberID.Code
			continue
		}
		g.removeAndRebalance(now, m, &e)
	}
	return out, e
}

// ValidateCommit checks an OffsetCommit's generation and member as Kafka
// does, returning an error code (0: the commit may be stored). A negative
// generation on an empty group is a "simple" commit by a consumer that
// assigns partitions itself.
func (g *Group) ValidateCommit(now time.Time, memberID, instanceID string, generation int32) int16 {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if generation < 0 && g.state == Empty {
		return 0
	}
	if generation >= 0 || memberID != "" || instanceID != "" {
		if code := g.checkMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else {
		// A simple commit into a group that has members.
		return kerr.UnknownMemberID.Code
	}
	m := g.members[memberID]
	m.deadline = now.Add(m.sessionTimeout)
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// Kill marks the group Dead (deleted, or no longer coordinated here),
// answering every waiting request with code.
func (g *Group) Kill(code int16) Effects {
	var e Effects
	for _, id := range g.order {
		m := g.members[id]
		e.join(m.joining, JoinResponse{Err: code, MemberID: m.id, Generation: -1})
		e.sync(m.syncing, SyncResponse{Err: code})
		m.joining, m.syncing = 0, 0
	}
	g.state = Dead
	return e
}
