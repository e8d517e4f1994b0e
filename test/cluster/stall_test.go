package cluster

// Stopping a metadata store transaction at a chosen statement, inside the
// database, so that a test can crash an agent or the database while the
// transaction is open: its writes made but not committed, its row locks
// held. Triggers in the test's own database take a shared advisory lock
// that the test holds exclusively while a stall is armed:
//
//   - "end ID": the UPDATE of transactional id ID's record to
//     CompleteCommit or CompleteAbort, the last statement of EndTxn's
//     transaction, after its markers object was uploaded and its markers'
//     extents, closed open entries and published offsets were written;
//   - "open P": the INSERT of the open entry of partition P, which the
//     commit of the first transactional batch of a transaction on P
//     makes, after the batch's extent was written.
//
// The triggers are the test's, not Floe's: they name Floe's tables
// (postgres migration 0007) and nothing else.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// stallLock is the advisory lock key the triggers wait for.
const stallLock = 1718382437

var stallSQL = strings.ReplaceAll(`
CREATE TABLE floe_test_stall (point TEXT PRIMARY KEY);

CREATE FUNCTION floe_test_stall_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.state = 'Ongoing' AND NEW.state IN ('CompleteCommit', 'CompleteAbort')
		AND EXISTS (SELECT 1 FROM floe_test_stall WHERE point = 'end ' || convert_from(NEW.transactional_id, 'UTF8')) THEN
		PERFORM pg_advisory_xact_lock_shared(LOCK);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER floe_test_stall_end BEFORE UPDATE ON transactions
	FOR EACH ROW EXECUTE FUNCTION floe_test_stall_end();

CREATE FUNCTION floe_test_stall_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM floe_test_stall WHERE point = 'open ' || NEW.part) THEN
		PERFORM pg_advisory_xact_lock_shared(LOCK);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER floe_test_stall_open BEFORE INSERT ON txn_open
	FOR EACH ROW EXECUTE FUNCTION floe_test_stall_open();
`, "LOCK", strconv.Itoa(stallLock))

// dbStall arms and releases stalls in one test database.
type dbStall struct {
	t     *testing.T
	url   string
	conn  *pgx.Conn // holds the advisory lock while a stall is armed
	point string    // the armed stall, or ""
}

// installStall creates the triggers in the database at url, whose
// schema the agents must have made already.
func installStall(t *testing.T, url string) *dbStall {
	t.Helper()
	s := &dbStall{t: t, url: url}
	s.connect()
	if _, err := s.conn.Exec(context.Background(), stallSQL); err != nil {
		t.Fatalf("install the stall triggers: %v", err)
	}
	t.Cleanup(func() { s.conn.Close(context.Background()) })
	return s
}

func (s *dbStall) connect() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.url)
		if err == nil {
			s.conn = conn
			return
		}
		if ctx.Err() != nil {
			s.t.Fatalf("connect to %s: %v", s.url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *dbStall) exec(sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := s.conn.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// arm stalls the next transactions reaching point ("end ID", "open P")
// until release.
func (s *dbStall) arm(point string) {
	s.t.Helper()
	s.exec(`SELECT pg_advisory_lock($1)`, stallLock)
	s.exec(`INSERT INTO floe_test_stall (point) VALUES ($1)`, point)
	s.point = point
}

// waitStalled waits until a transaction waits at the armed point.
func (s *dbStall) waitStalled(timeout time.Duration) {
	s.t.Helper()
	ok := waitUntil(timeout, func() bool {
		var n int
		err := s.conn.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			stallLock).Scan(&n)
		return err == nil && n > 0
	})
	if !ok {
		s.t.Fatalf("no metadata store transaction reached %q within %v", s.point, timeout)
	}
}

// release disarms the stall and lets what waits at it go on.
func (s *dbStall) release() {
	s.t.Helper()
	s.exec(`DELETE FROM floe_test_stall WHERE point = $1`, s.point)
	s.exec(`SELECT pg_advisory_unlock($1)`, stallLock)
	s.point = ""
}

// reconnect replaces the connection after a database restart (which
// dropped the lock) and disarms the stall.
func (s *dbStall) reconnect() {
	s.t.Helper()
	s.conn.Close(context.Background())
	s.connect()
	if s.point != "" {
		s.exec(`DELETE FROM floe_test_stall WHERE point = $1`, s.point)
		s.point = ""
	}
}

// txnState is the stored state of a transactional id.
func (s *dbStall) txnState(id string) string {
	s.t.Helper()
	var state string
	err := s.conn.QueryRow(context.Background(), `SELECT state FROM transactions WHERE transactional_id = $1`, []byte(id)).Scan(&state)
	if err != nil {
		s.t.Fatalf("state of transaction %q: %v", id, err)
	}
	return state
}
