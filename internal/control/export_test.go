package control

import "github.com/floe-io/floe/internal/metastore/embedded"

// Crash stops s as a dying process would: without releasing its leases,
// which expire by themselves.
func Crash(s *Server) { s.close(false) }

// SetMaxPendingBytes sets the bound on the batches a vcluster holds for
// the bucket, for the test, and puts it back after.
func SetMaxPendingBytes(t interface{ Cleanup(func()) }, n int64) {
	old := maxPendingBytes
	maxPendingBytes = n
	t.Cleanup(func() { maxPendingBytes = old })
}

// StandbyState returns the state of s's warm standby of name and the
// sequence number of its last applied batch (ok false: no standby with a
// state).
func StandbyState(s *Server, name string) (st *embedded.Store, seq int64, ok bool) {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb == nil {
		return nil, 0, false
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.done {
		return nil, 0, false
	}
	return sb.v.store, sb.seq, true
}

// PauseStandby stops (or restarts) the polls of s's warm standby of
// name; once it returns, no poll is running. It reports whether there
// is one.
func PauseStandby(s *Server, name string, paused bool) bool {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb == nil {
		return false
	}
	sb.paused.Store(paused)
	sb.mu.Lock() // a poll in progress ends first
	sb.mu.Unlock()
	return true
}

// LeaderState returns the state of the vcluster s leads.
func LeaderState(s *Server, name string) (*embedded.Store, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vclusters[name]
	if v == nil {
		return nil, false
	}
	return v.store, true
}

// SetStandbyPollRows sets the rows a standby's poll applies at most, for
// the test, and puts it back after.
func SetStandbyPollRows(t interface{ Cleanup(func()) }, n int64) {
	old := standbyPollRows
	standbyPollRows = n
	t.Cleanup(func() { standbyPollRows = old })
}
