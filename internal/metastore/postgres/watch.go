package postgres

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
)

// Commit notices between agents.
//
// On PostgreSQL a commit's notice goes through pg_notify, which the
// database delivers only once the notifying transaction commits, so a
// notice never precedes its commit: inside the transaction for the rare
// commits with transactions, EndTxn, retention and compaction; after
// COMMIT, from the notifier, for segment commits (notifier.go), unless
// the agents relay those to each other (RelayNotices, internal/peernotice)
// and the relay reaches every agent. Each Store keeps one dedicated connection
// LISTENing (not from the pool: a pooled connection would be handed to
// queries) and passes what it hears to its watchers. Its own commits are
// announced directly after they commit, and skipped when they come back.
//
// When the listener loses its connection it reconnects with backoff and
// then announces "everything" (a CommitNotice with nil Partitions), since
// notifications sent meanwhile are lost.
//
// Databases without LISTEN/NOTIFY (CockroachDB) are polled instead: every
// PollInterval the store reads all high watermarks and announces the
// partitions whose watermark moved. That costs one scan of the partitions
// table per agent and interval, adds up to PollInterval of latency, and
// an agent hears its own commits a second time (harmless: the poll's
// notices say what it saw, CommitNotice.Seen, and a cache already at that
// is kept).

// notifyChannel is the LISTEN/NOTIFY channel of commit notices.
const notifyChannel = "floe_commits"

// topicsChannel is the LISTEN/NOTIFY channel of topic notices, one per
// changed topic: "origin|name". Agents that predate it do not listen.
const topicsChannel = "floe_topics"

// maxPayload keeps notification payloads under PostgreSQL's 8000-byte
// limit; larger notices become "everything".
const maxPayload = 7900

// listenerAppName names the listener's connection in pg_stat_activity.
const listenerAppName = "floe-commit-listener"

const defaultPollInterval = 500 * time.Millisecond

// encodeNotice writes a notice as "origin|topic:p,p;topic:p" with topic
// ids in hex, or "origin|*" for everything.
func encodeNotice(origin string, n metastore.CommitNotice) string {
	var b strings.Builder
	b.WriteString(origin)
	b.WriteByte('|')
	prev := -1
	for i, tp := range n.Partitions {
		if prev >= 0 && n.Partitions[prev].TopicID == tp.TopicID {
			b.WriteByte(',')
		} else {
			if prev >= 0 {
				b.WriteByte(';')
			}
			b.WriteString(hex.EncodeToString(tp.TopicID[:]))
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(int(tp.Partition)))
		prev = i
		if b.Len() > maxPayload {
			return origin + "|*"
		}
	}
	if n.Partitions == nil {
		b.WriteByte('*')
	}
	return b.String()
}

// decodeNotice reads what encodeNotice wrote.
func decodeNotice(payload string) (origin string, n metastore.CommitNotice, err error) {
	origin, body, ok := strings.Cut(payload, "|")
	if !ok {
		return "", n, errors.New("no origin")
	}
	if body == "*" {
		return origin, n, nil
	}
	n.Partitions = []metastore.TopicPartition{}
	if body == "" {
		return origin, n, nil
	}
	for _, group := range strings.Split(body, ";") {
		topic, parts, ok := strings.Cut(group, ":")
		var tp metastore.TopicPartition
		id, err := hex.DecodeString(topic)
		if !ok || err != nil || len(id) != len(tp.TopicID) {
			return "", n, fmt.Errorf("bad topic %q", topic)
		}
		copy(tp.TopicID[:], id)
		for _, p := range strings.Split(parts, ",") {
			v, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return "", n, fmt.Errorf("bad partition %q", p)
			}
			tp.Partition = int32(v)
			n.Partitions = append(n.Partitions, tp)
		}
	}
	return origin, n, nil
}

// startWatching starts the listener, or the poller where the database
// cannot notify.
func (s *Store) startWatching(ctx context.Context, cfg *pgx.ConnConfig, opts Options) error {
	watchCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if !opts.DisableNotify {
		conn, err := s.connectListener(ctx, cfg)
		if err == nil {
			s.notify = true
			s.notifier = newNotifier(s)
			s.watching.Add(2)
			go s.listen(watchCtx, conn, cfg)
			go func() {
				defer s.watching.Done()
				s.notifier.run(watchCtx)
			}()
			if every := cmp.Or(opts.NoticePollInterval, defaultNoticePollInterval); every > 0 {
				s.watching.Add(1)
				go s.pollLost(watchCtx, every, cmp.Or(max(opts.NoticePollRows, 0), defaultNoticePollRows))
			}
			return nil
		}
		if ctx.Err() != nil {
			stop()
			return err
		}
		s.log.Warn("LISTEN/NOTIFY unavailable: polling for other agents' commits", "err", err)
	}
	every := opts.PollInterval
	if every <= 0 {
		every = defaultPollInterval
	}
	s.watching.Add(1)
	go s.poll(watchCtx, every)
	return nil
}

// connectListener opens the listener's connection and checks that the
// database can both notify and listen.
func (s *Store) connectListener(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	cfg = cfg.Copy()
	cfg.RuntimeParams["application_name"] = listenerAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_notify('floe_probe', '')`); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("pg_notify: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+topicsChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// listen passes notifications to the watchers until ctx ends, reconnecting
// whenever the connection fails.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn, cfg *pgx.ConnConfig) {
	defer s.watching.Done()
	for {
		err := s.receive(ctx, conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("commit listener lost its connection, reconnecting", "err", err)
		backoff := 50 * time.Millisecond
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if conn, err = s.connectListener(ctx, cfg); err == nil {
				break
			}
			s.log.Warn("commit listener cannot reconnect", "err", err, "retry_in", backoff)
			backoff = min(2*backoff, 5*time.Second)
		}
		s.log.Info("commit listener reconnected")
		// Notifications sent while it was away are lost.
		s.announce(metastore.CommitNotice{})
		s.NotifyTopics(metastore.TopicNotice{})
	}
}

// receive delivers notifications until the connection fails. A quiet
// connection is pinged now and then, so that a dead one is noticed.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if n.Channel == topicsChannel {
			if origin, name, ok := strings.Cut(n.Payload, "|"); !ok {
				s.log.Warn("unreadable topic notice, announcing every topic", "payload", n.Payload)
				s.NotifyTopics(metastore.TopicNotice{})
			} else if origin != s.origin {
				s.NotifyTopics(metastore.TopicNotice{Names: []string{name}})
			}
			continue
		}
		if n.Channel != notifyChannel || strings.HasPrefix(n.Payload, s.origin+"|") {
			continue // this store announced its own commits already
		}
		origin, notice, err := decodeNotice(n.Payload)
		if err != nil {
			s.log.Warn("unreadable commit notice, announcing everything", "payload", n.Payload, "err", err)
			s.announce(metastore.CommitNotice{})
			continue
		}
		if origin != s.origin {
			s.announce(notice)
		}
	}
}

// poll announces the partitions whose high watermark or log start offset
// moved, every interval, for databases that cannot notify. (Both only
// grow, so their sum moves whenever either does.) After a failed poll it
// announces everything once it succeeds again.
func (s *Store) poll(ctx context.Context, every time.Duration) {
	defer s.watching.Done()
	var (
		seen   map[partitionKey]int64
		topics string // fingerprint of the topics table
		failed bool
	)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now, err := s.highWatermarks(ctx)
		var fp string
		if err == nil {
			fp, err = s.topicsFingerprint(ctx)
		}
		if err != nil {
			if ctx.Err() == nil && !failed {
				s.log.Warn("polling for commits failed", "err", err)
			}
			failed = true
			continue
		}
		// Each with what the read found: a watcher already up to date
		// with it (this agent's own commits, announced when they were
		// made) need not re-read.
		notice := movedSince(seen, now)
		seen = now
		switch {
		case failed:
			failed = false
			s.announce(metastore.CommitNotice{})
			s.NotifyTopics(metastore.TopicNotice{})
		case len(notice.Partitions) > 0:
			s.announce(notice)
		}
		// The first poll has nothing to compare with: a topic changed
		// since the store opened must not go unheard.
		if fp != topics {
			s.NotifyTopics(metastore.TopicNotice{})
		}
		topics = fp
	}
}

// movedSince is a notice of the partitions whose high watermark plus log
// start offset differs between two reads of highWatermarks (or that
// appeared in now with data), each with its value in now as Seen; none
// when there is no read before.
func movedSince(prev, now map[partitionKey]int64) metastore.CommitNotice {
	var n metastore.CommitNotice
	if prev == nil {
		return n
	}
	for pk, v := range now {
		if old, ok := prev[pk]; v > 0 && (!ok || old != v) {
			n.Partitions = append(n.Partitions, metastore.TopicPartition{TopicID: pk.id, Partition: pk.partition})
			n.Seen = append(n.Seen, v)
		}
	}
	return n
}

func (s *Store) highWatermarks(ctx context.Context) (map[partitionKey]int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT topic_id, part, high_watermark + log_start_offset FROM partitions`)
	hwms := make(map[partitionKey]int64)
	var (
		id  []byte
		pk  partitionKey
		hwm int64
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &pk.partition, &hwm}, func() error {
		var err error
		pk.id, err = topicID(id)
		hwms[pk] = hwm
		return err
	})
	return hwms, err
}

// topicsFingerprint digests every topic's id, partition count and configs,
// so that the poller notices any topic change in one short answer.
func (s *Store) topicsFingerprint(ctx context.Context) (string, error) {
	var fp string
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) || ':' || coalesce(md5(string_agg(encode(id, 'hex') || ':' || partitions || ':' || configs, ',' ORDER BY id)), '')
		FROM topics`).Scan(&fp)
	return fp, err
}
