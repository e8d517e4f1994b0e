package postgres

// SetTestDropNotices makes s's notifier drop the notices it would send
// while drop returns true, as an agent that dies between its commits and
// their notices would.
func SetTestDropNotices(s *Store, drop func() bool) { s.testDropNotices = drop }

// ProducerConflicts counts the commits of s that found a producer state
// other than expected and ran again.
func ProducerConflicts(s *Store) int64 { return s.producerConflicts.Load() }

// LostNoticePolls counts the reads of s's lost-notice poll.
func LostNoticePolls(s *Store) int64 { return s.lostNoticePolls.Load() }

// LostNoticePollWait is lostNoticePollWait.
var LostNoticePollWait = lostNoticePollWait
