package postgres

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// Notices sent after COMMIT, and the poll that bounds a lost one.
//
// A pg_notify inside a committing transaction makes PostgreSQL take one
// database-wide lock at commit to queue the notice, so every notifying
// commit commits one at a time, its partition locks held meanwhile. A
// segment commit without transactional batches therefore commits first
// and hands its notice to the store's notifier, which sends the notices
// waiting for it in one short transaction of its own (several commits'
// partitions merged, split into payloads under maxPayload) while the next
// ones gather. A notice still never precedes its commit.
//
// It can be lost instead: the agent may die, or its connection break,
// between the commit and the notice. So every store that listens also
// polls: it reads every partition's high watermark (plus log start
// offset) and announces the partitions that moved since the poll before
// and heard no notice after that poll's read (a notice heard later was
// sent after the move, so it covers it). A commit whose notice was lost
// is announced within two polls, and a fetch waiting on its partition
// waits no longer than that.
//
// Every agent's store polls, so the database reads agents × partitions
// rows a poll. The polls come every NoticePollInterval up to
// NoticePollRows partitions, and further apart beyond, so that a store
// reads about NoticePollRows a second at most: with P partitions, every
// ceil(P / NoticePollRows) intervals.

// defaultNoticePollInterval bounds how late a lost commit notice is made
// up for (two intervals at most, up to defaultNoticePollRows partitions).
const defaultNoticePollInterval = time.Second

// defaultNoticePollRows is the partitions a lost-notice poll reads each
// interval at most, on average: a database of more is polled less often.
const defaultNoticePollRows = 10_000

// lostNoticePollWait is how long the lost-notice poll waits after a read
// of n partitions: every interval up to rows partitions, one interval
// more for every rows more.
func lostNoticePollWait(every time.Duration, rows, n int) time.Duration {
	return every * time.Duration(max(1, (n+rows-1)/rows))
}

// maxPendingNotice bounds the partitions a notifier gathers between two
// sends; more are announced as "everything".
const maxPendingNotice = 100_000

// notifier sends commit notices after their commits, merging those that
// wait for one send.
type notifier struct {
	s    *Store
	wake chan struct{} // capacity 1

	mu         sync.Mutex
	pending    map[metastore.TopicPartition]struct{}
	everything bool // a notice of everything waits
}

func newNotifier(s *Store) *notifier {
	return &notifier{s: s, wake: make(chan struct{}, 1), pending: map[metastore.TopicPartition]struct{}{}}
}

// add queues a notice for the next send.
func (n *notifier) add(notice metastore.CommitNotice) {
	n.mu.Lock()
	if notice.Partitions == nil || n.everything || len(n.pending)+len(notice.Partitions) > maxPendingNotice {
		n.everything = true
		clear(n.pending)
	} else {
		for _, tp := range notice.Partitions {
			n.pending[tp] = struct{}{}
		}
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// take empties the queue: the partitions waiting, or everything.
func (n *notifier) take() (parts []metastore.TopicPartition, everything bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.everything {
		n.everything = false
		return nil, true
	}
	if len(n.pending) == 0 {
		return nil, false
	}
	parts = make([]metastore.TopicPartition, 0, len(n.pending))
	for tp := range n.pending {
		parts = append(parts, tp)
	}
	clear(n.pending)
	return parts, false
}

// payloads encodes what take returned.
func (n *notifier) payloads(parts []metastore.TopicPartition, everything bool) []string {
	if everything {
		return []string{encodeNotice(n.s.origin, metastore.CommitNotice{})}
	}
	return encodeNotices(n.s.origin, parts)
}

// run sends queued notices until ctx ends, then what is still queued
// (bounded by a second).
func (n *notifier) run(ctx context.Context) {
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if parts, all := n.take(); all || len(parts) > 0 {
				_ = n.send(fctx, n.payloads(parts, all))
			}
			cancel()
			return
		case <-n.wake:
		}
		parts, all := n.take()
		if !all && len(parts) == 0 {
			continue
		}
		if err := n.send(ctx, n.payloads(parts, all)); err != nil {
			// The notices wait for the next try, merged with newer ones;
			// the poll makes up for them if they never go.
			n.add(metastore.CommitNotice{Partitions: parts}) // nil parts (all): everything again
			if ctx.Err() != nil {
				continue
			}
			n.s.log.Warn("sending commit notices failed, retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
	}
}

// send notifies payloads in one transaction.
func (n *notifier) send(ctx context.Context, payloads []string) error {
	if hook := n.s.testDropNotices; hook != nil && hook() {
		return nil // a test's agent died between its commit and its notice
	}
	var b pgx.Batch
	for _, p := range payloads {
		b.Queue(`SELECT pg_notify($1, $2)`, notifyChannel, p)
	}
	return n.s.pool.SendBatch(ctx, &b).Close()
}

// encodeNotices splits a notice into payloads under maxPayload each.
func encodeNotices(origin string, parts []metastore.TopicPartition) []string {
	var out []string
	for len(parts) > 0 {
		// A payload holds at least a few hundred partitions; halve the
		// chunk until it fits.
		n := len(parts)
		for {
			p := encodeNotice(origin, metastore.CommitNotice{Partitions: parts[:n]})
			if p != origin+"|*" || n == 1 {
				out = append(out, p)
				break
			}
			n /= 2
		}
		parts = parts[n:]
	}
	return out
}

// heard records when notices were delivered to this store's watchers,
// for the poll: a partition that moved before a poll's read and was
// heard of after it needs no announcement from the poll. Every notice
// passes here, so times are kept as nanoseconds since the poll started
// (no pointers for the collector to scan in a map that holds every
// partition recently committed).
type heard struct {
	mu         sync.Mutex
	on         bool      // the poll runs (and prunes at): otherwise nothing is recorded
	base       time.Time // when the poll started; times are nanoseconds since
	at         map[metastore.TopicPartition]int64
	everything int64
}

func (h *heard) start() {
	h.mu.Lock()
	h.on, h.base, h.everything = true, time.Now(), math.MinInt64
	h.mu.Unlock()
}

// nanos is t as heard keeps it. h.mu is held.
func (h *heard) nanos(t time.Time) int64 { return int64(t.Sub(h.base)) }

func (h *heard) record(n metastore.CommitNotice, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on {
		return
	}
	at := h.nanos(now)
	if n.Partitions == nil {
		h.everything = at
		return
	}
	if h.at == nil {
		h.at = make(map[metastore.TopicPartition]int64)
	}
	for _, tp := range n.Partitions {
		h.at[tp] = at
	}
}

// since reports whether tp was heard of after t.
func (h *heard) since(tp metastore.TopicPartition, t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on {
		return false
	}
	after := h.nanos(t)
	if h.everything > after {
		return true
	}
	at, ok := h.at[tp]
	return ok && at > after
}

// prune forgets partitions heard of before t (the poll compares later
// reads only).
func (h *heard) prune(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	before := h.nanos(t)
	for tp, at := range h.at {
		if at <= before {
			delete(h.at, tp)
		}
	}
}

// RelayNotices implements metastore.NoticeRelay: the notices of segment
// commits without transactional batches go to relay first, and through
// the database only when relay does not reach every other agent. Notices
// sent inside transactions (EndTxn, transactional batches, retention,
// compaction) still go through the database: they are rare.
func (s *Store) RelayNotices(relay func(metastore.CommitNotice) bool) {
	if relay == nil {
		s.relay.Store(nil)
		return
	}
	s.relay.Store(&relay)
}

// HearRelayed implements metastore.NoticeRelay.
func (s *Store) HearRelayed(n metastore.CommitNotice) { s.announce(n) }

// relayed hands n to the relay and reports whether it reaches every
// other agent.
func (s *Store) relayed(n metastore.CommitNotice) bool {
	relay := s.relay.Load()
	return relay != nil && (*relay)(n)
}

// announce delivers a commit notice to this store's watchers, recording
// it for the poll first (a watcher re-reads after the time recorded).
func (s *Store) announce(n metastore.CommitNotice) {
	s.heard.record(n, time.Now())
	s.Notify(n)
}

// pollLost announces, at every read (lostNoticePollWait apart), the
// partitions whose high watermark or log start offset moved between the
// two previous reads and that no notice announced after the later one:
// those whose notice was lost.
func (s *Store) pollLost(ctx context.Context, every time.Duration, rows int) {
	defer s.watching.Done()
	s.heard.start()
	timer := time.NewTimer(every)
	defer timer.Stop()
	var (
		prev   map[partitionKey]int64 // the read before last
		moved  metastore.CommitNotice // between the two previous reads
		readAt time.Time              // when the last read returned
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now, err := s.highWatermarks(ctx)
		s.lostNoticePolls.Add(1)
		timer.Reset(lostNoticePollWait(every, rows, len(now)))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("polling for lost commit notices failed", "err", err)
			}
			continue
		}
		at := time.Now()
		// Partitions that moved before the last read and were not heard
		// of since, each with what the read found: a watcher already up
		// to date with it (its notice came between the two reads, and the
		// poll cannot tell) need not re-read.
		var lost metastore.CommitNotice
		for i, tp := range moved.Partitions {
			if !s.heard.since(tp, readAt) {
				lost.Partitions = append(lost.Partitions, tp)
				lost.Seen = append(lost.Seen, moved.Seen[i])
			}
		}
		if len(lost.Partitions) > 0 {
			s.log.Debug("announcing commits whose notices were lost", "partitions", len(lost.Partitions))
			s.announce(lost)
		}
		s.heard.prune(readAt)
		moved, prev, readAt = movedSince(prev, now), now, at
	}
}
