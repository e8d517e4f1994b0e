package postgres

// SetTestDropNotices makes s's notifier drop the notices it would send
// while drop returns true, as an agent that dies between its commits and
// their notices would.
func SetTestDropNotices(s *Store, drop func() bool) { s.testDropNotices = drop }
