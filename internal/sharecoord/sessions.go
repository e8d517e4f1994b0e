package sharecoord

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Share sessions (KIP-932): a member's ShareFetch and ShareAcknowledge
// requests to one agent form a session that remembers the partitions it
// fetches, so that later requests name only changes. Epoch 0 opens a
// session (replacing the member's previous one), -1 closes it (the
// request may still acknowledge), and every other request must carry the
// epoch that follows the previous request's. Sessions are this agent's
// alone, in memory: a client whose agent went away opens a new one. A
// session ends with the connection of its last request, as in Kafka,
// releasing the member's records (CloseConn).

// MaxSessionPartitions bounds the partitions of one share session.
const MaxSessionPartitions = 10_000

type sessionKey struct{ group, member string }

type session struct {
	// conn is the connection of the session's last request: when it
	// closes, the session ends (CloseConn).
	conn  uint64
	epoch int32 // the epoch the next request carries
	parts []TP  // in the order they were added
	in    map[TP]bool
	used  time.Time
}

func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// SessionResult is what a request's session fields decide.
type SessionResult struct {
	Err int16
	// Fetch are the session's partitions after the request (none for a
	// closing request).
	Fetch []TP
	// Released are the partitions of a session the request closed
	// (epoch -1): the caller releases the member's records there once
	// the request's acknowledgements are applied. Forgetting a partition
	// or opening a new session releases nothing, as in Kafka: a client
	// still acknowledges records of a partition it forgot (naming it
	// again with its acknowledgements only), and records it can no longer
	// acknowledge come back when their locks expire.
	Released []TP
}

// FetchSession applies a ShareFetch's session fields: epoch, partitions
// named (added to the session) and forgotten. hasAcks reports
// acknowledgements in the request, which an opening request may not
// carry.
func (c *Coordinator) FetchSession(group, member string, epoch int32, add, forget []TP, hasAcks bool) SessionResult {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	key := sessionKey{group, member}
	s := c.sessions[key]
	switch {
	case epoch == 0:
		if hasAcks {
			return SessionResult{Err: kerr.InvalidRequest.Code}
		}
		if s == nil && len(c.sessions) >= c.opts.MaxSessions && !c.evictIdle(now) {
			return SessionResult{Err: kerr.ShareSessionLimitReached.Code}
		}
		s = &session{in: map[TP]bool{}}
		if !s.add(add) {
			return SessionResult{Err: kerr.InvalidRequest.Code}
		}
		s.epoch, s.used = 1, now
		c.sessions[key] = s
		return SessionResult{Fetch: slices.Clone(s.parts)}
	case s == nil:
		return SessionResult{Err: kerr.ShareSessionNotFound.Code}
	case epoch == -1:
		delete(c.sessions, key)
		return SessionResult{Released: s.parts}
	case epoch != s.epoch:
		return SessionResult{Err: kerr.InvalidShareSessionEpoch.Code}
	}
	if !s.add(add) {
		return SessionResult{Err: kerr.InvalidRequest.Code}
	}
	forgot := false
	for _, tp := range forget {
		if s.in[tp] {
			delete(s.in, tp)
			forgot = true
		}
	}
	if forgot {
		s.parts = slices.DeleteFunc(s.parts, func(tp TP) bool { return !s.in[tp] })
	}
	s.epoch, s.used = nextEpoch(s.epoch), now
	return SessionResult{Fetch: slices.Clone(s.parts)}
}

// AckSession applies a ShareAcknowledge's epoch: 0 is not allowed, -1
// closes the session after the acknowledgements.
func (c *Coordinator) AckSession(group, member string, epoch int32) SessionResult {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	key := sessionKey{group, member}
	s := c.sessions[key]
	switch {
	case epoch == 0:
		return SessionResult{Err: kerr.InvalidShareSessionEpoch.Code}
	case s == nil:
		return SessionResult{Err: kerr.ShareSessionNotFound.Code}
	case epoch == -1:
		delete(c.sessions, key)
		return SessionResult{Released: s.parts}
	case epoch != s.epoch:
		return SessionResult{Err: kerr.InvalidShareSessionEpoch.Code}
	}
	s.epoch, s.used = nextEpoch(s.epoch), now
	return SessionResult{Fetch: slices.Clone(s.parts)}
}

// add adds partitions not yet in the session, false past the bound.
func (s *session) add(tps []TP) bool {
	for _, tp := range tps {
		if s.in[tp] {
			continue
		}
		if len(s.parts) >= MaxSessionPartitions {
			return false
		}
		s.in[tp] = true
		s.parts = append(s.parts, tp)
	}
	return true
}

// evictIdle drops the sessions unused for a group session timeout (their
// members are gone or opened another), reporting whether any went.
func (c *Coordinator) evictIdle(now time.Time) bool {
	evicted := false
	for k, s := range c.sessions {
		if now.Sub(s.used) >= c.opts.Group.SessionTimeout {
			delete(c.sessions, k)
			evicted = true
		}
	}
	return evicted
}

// ForgetIdle drops a group's share partitions from memory when no share
// session of the group is left on this agent and no request is using
// them: every member closed its session (and so released its records), so
// memory holds nothing the store lacks but delivery counts of released
// records. The next request loads the group from the store, and so sees
// what another agent changed meanwhile (DeleteGroups on the coordinator).
func (c *Coordinator) ForgetIdle(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.sessions {
		if k.group == group {
			return false
		}
	}
	gs := c.states[group]
	if gs == nil {
		return false
	}
	if gs.users > 0 {
		return false
	}
	gs.evicted.Store(true)
	delete(c.states, group)
	return true
}

// BindSession records that the member's session is used on connection
// conn (the connection of its latest request).
func (c *Coordinator) BindSession(group, member string, conn uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[sessionKey{group, member}]; s != nil {
		s.conn = conn
	}
}

// CloseConn ends the share sessions whose last request came on a
// connection that closed, releasing their members' records there, as
// Kafka does: the client can no longer acknowledge them on that session
// (it opens a new one), so they go to other members at once rather than
// when their locks expire.
func (c *Coordinator) CloseConn(ctx context.Context, conn uint64) {
	type ended struct {
		key   sessionKey
		parts []TP
	}
	var gone []ended
	c.mu.Lock()
	for k, s := range c.sessions {
		if s.conn == conn {
			delete(c.sessions, k)
			gone = append(gone, ended{k, s.parts})
		}
	}
	c.mu.Unlock()
	for _, e := range gone {
		if err := c.Release(ctx, e.key.group, e.key.member, e.parts); err != nil {
			c.log.Warn("share records of a closed connection not released", "group", e.key.group, "member", e.key.member, "err", err)
			continue
		}
		c.log.Debug("share session ended with its connection", "group", e.key.group, "member", e.key.member, "partitions", len(e.parts))
		c.ForgetIdle(e.key.group)
	}
}
