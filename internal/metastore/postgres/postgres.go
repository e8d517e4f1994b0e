// Package postgres is the metadata store for clusters of agents: a
// metastore.Store on PostgreSQL (or a PostgreSQL-compatible distributed
// database) through pgx. Any number of agents, each with its own Store,
// share one database; database transactions do all the sequencing, so
// there is no coordination between agents besides the database.
//
// A segment commit is one transaction that locks the partitions rows it
// writes, in (topic_id, partition) order so that concurrent commits cannot
// deadlock, checks producer sequences, inserts extents and moves the high
// watermarks. Transactions the database aborts to resolve a conflict
// (SQLSTATE 40001, 40P01) are retried with bounded backoff; nothing else
// is retried, since a commit whose outcome is unknown must not run twice.
//
// The schema lives in migrations/, applied in order by Open. The SQL stays
// within what CockroachDB and YugabyteDB also accept; the exceptions are
// written down in docs/postgres.md. LISTEN/NOTIFY only speeds up commit
// notices (see watch.go); correctness never depends on it.
//
// It must never see record payloads: it stores only where records are.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/floe-io/floe/internal/metastore"
)

// URLSchemes are the URL schemes Open accepts.
var URLSchemes = []string{"postgres", "postgresql"}

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds the connection pool; 0 keeps pgxpool's default (or
	// the URL's pool_max_conns). The commit listener takes one more.
	MaxConns int32
	// PollInterval is how often a database without LISTEN/NOTIFY is polled
	// for other agents' commits (default 500ms).
	PollInterval time.Duration
	// DisableNotify skips LISTEN/NOTIFY even where the database has it,
	// and polls instead.
	DisableNotify bool
	// NoticePollInterval is how often a store that listens reads every
	// partition's high watermark to make up for commit notices lost
	// between a commit and its notice (an agent dying there); such a
	// commit is announced within two polls (default 1s; negative: no
	// poll). See notifier.go.
	NoticePollInterval time.Duration
	// NoticePollRows bounds the partitions that poll reads an interval,
	// on average (default 10,000): a database of P partitions is polled
	// every ceil(P / NoticePollRows) intervals.
	NoticePollRows int
}

// Store is the PostgreSQL metadata store. It is safe for concurrent use.
type Store struct {
	metastore.Watchers
	metastore.TopicWatchers

	pool   *pgxpool.Pool
	log    *slog.Logger
	origin string // tags this store's notifications, to skip them on return
	notify bool   // commits call pg_notify

	notifier *notifier // sends notices after commit; nil when not notifying
	heard    heard     // when notices reached the watchers, for the lost-notice poll
	// relay carries segment commits' notices to the other agents
	// (RelayNotices); nil: the store sends them itself.
	relay atomic.Pointer[func(metastore.CommitNotice) bool]

	producers producerCache // states this store's commits wrote (commitfast.go)
	// producerConflicts counts commits that found a producer state not
	// as expected (cached or read) and ran again.
	producerConflicts atomic.Int64
	// lostNoticePolls counts the lost-notice poll's reads.
	lostNoticePolls atomic.Int64

	// testDropNotices, when set and returning true, makes the notifier
	// drop the notices it would send, as an agent dying between its
	// commit and its notice would.
	testDropNotices func() bool

	closed   atomic.Bool
	stop     context.CancelFunc // stops the watch goroutine
	watching sync.WaitGroup
}

var _ metastore.Store = (*Store)(nil)

// Open connects to the database named by a standard PostgreSQL URL
// (postgres://user@host:port/db?sslmode=disable), applies the schema
// migrations it lacks and starts watching for other agents' commits.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where := redact(rawURL)
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open metadata store %s: %w", where, err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open metadata store %s: %w", where, err)
	}
	s := &Store{pool: pool, log: log, origin: uuid.NewString()}
	if err := migrate(ctx, pool, log); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open metadata store %s: %w", where, err)
	}
	if err := s.startWatching(ctx, cfg.ConnConfig, opts); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open metadata store %s: %w", where, err)
	}
	log.Info("metadata store opened", "url", where, "notify", s.notify)
	return s, nil
}

// Close stops the commit watcher and closes every connection; later calls
// return metastore.ErrClosed. It waits for calls in progress. Closing
// twice is a no-op.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	s.watching.Wait()
	s.pool.Close()
	s.log.Info("metadata store closed")
	return nil
}

// Objects returns, sorted, the key of every object that a commit has ever
// referenced, for the cleaner (as the embedded store's Objects).
func (s *Store) Objects(ctx context.Context) ([]string, error) {
	var keys []string
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT object FROM objects ORDER BY object`)
		var err error
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return keys, nil
}

// Retries of transactions the database aborted to resolve a conflict.
const (
	maxAttempts  = 12
	firstBackoff = 2 * time.Millisecond
	maxBackoff   = 250 * time.Millisecond
)

// errRetry asks run for another attempt: a transaction lost a race that
// the database reports as a constraint conflict rather than an abort.
var errRetry = errors.New("conflict with a concurrent transaction")

// run calls fn until it succeeds, fails with an error that is not a
// conflict, or maxAttempts is reached. fn must start afresh every time.
func (s *Store) run(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return s.mapErr(ctx, err)
		}
		// Full jitter, so that the transactions that collided do not
		// collide again.
		wait := time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond
		s.log.Debug("transaction conflict, retrying", "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// inTx runs fn in a transaction (committed when fn returns nil), retried
// as run does.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.run(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, fn)
	})
}

// inTwoTrips runs a transaction in two round trips on one connection,
// retried as run does: BEGIN pipelined with the statements read queues,
// then the statements write returns (called once read's results are in)
// pipelined with COMMIT. Row locks taken by read are then held for one
// round trip, not three (BEGIN, the writes and COMMIT each waiting for an
// answer as in inTx), which is what commits contending for partitions
// wait on. On any error the transaction is rolled back; a connection
// that cannot roll back is closed, so the pool never reuses it.
func (s *Store) inTwoTrips(ctx context.Context, read func(*pgx.Batch), write func() (*pgx.Batch, error)) error {
	return s.run(ctx, func(ctx context.Context) error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		fail := func(err error) error {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			defer cancel()
			if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
				conn.Conn().Close(rctx)
			}
			return err
		}
		var first pgx.Batch
		first.Queue("BEGIN")
		read(&first)
		if err := conn.SendBatch(ctx, &first).Close(); err != nil {
			return fail(err)
		}
		second, err := write()
		if err != nil {
			return fail(err)
		}
		second.Queue("COMMIT").Exec(func(tag pgconn.CommandTag) error {
			if tag.String() != "COMMIT" {
				return fmt.Errorf("transaction ended with %q", tag.String())
			}
			return nil
		})
		if err := conn.SendBatch(ctx, second).Close(); err != nil {
			return fail(err)
		}
		return nil
	})
}

// commitPlans sets how PostgreSQL plans the statements of a segment
// commit's transaction, the store's hottest path, whose every statement
// joins a few rows of arrays (unnest) to the tables by primary key:
//
//   - generic plans, made once per connection, since no plan depends on
//     the arrays' contents (PostgreSQL otherwise re-plans a statement
//     with parameters whenever a custom plan looks cheaper: a fifth of
//     the database's CPU in the commit's profile);
//   - joins by nested loop only, so that each row of an array is one
//     primary-key lookup. The planner takes an array to hold 10 rows
//     whatever it holds and, on a table of a few thousand rows, found a
//     hash join over a scan of the whole table cheaper; but the rows a
//     commit touches are the ones every commit updates, so such a scan
//     walks their chains of dead versions too: three scans of
//     partitions per commit, with the database's CPU mostly in
//     heap_page_prune_opt and heap_hot_search_buffer (docs/benchmarks.md).
//
// set_config(…, true) lasts until the transaction ends.
const commitPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// rollbackTimeout bounds the ROLLBACK after a failed inTwoTrips.
const rollbackTimeout = 5 * time.Second

// retryable reports a transaction that the database rolled back to
// resolve a conflict, and that may therefore run again.
func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", // serialization_failure (CockroachDB: restart transaction)
			"40P01": // deadlock_detected
			return true
		}
	}
	return false
}

func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return metastore.ErrClosed
	}
	return ctx.Err()
}

// mapErr turns the errors of a call racing with Close or a cancelled
// context into the interface's.
func (s *Store) mapErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case s.closed.Load():
		return fmt.Errorf("%w (%v)", metastore.ErrClosed, err)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// redact drops the password from a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// sqlID is a topic id as a query argument.
func sqlID(id metastore.TopicID) []byte { return id[:] }

// topicID converts a stored id.
func topicID(b []byte) (metastore.TopicID, error) {
	var id metastore.TopicID
	if len(b) != len(id) {
		return id, fmt.Errorf("stored topic id of %d bytes", len(b))
	}
	copy(id[:], b)
	return id, nil
}

// partitionName formats a partition for errors and logs: topic UUID/partition.
func partitionName(id metastore.TopicID, partition int32) string {
	return fmt.Sprintf("%s/%d", uuid.UUID(id), partition)
}
