package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/floe-io/floe/internal/metastore"
)

// Unreachable reports whether err, from a Store call, means the database
// could not be reached or went away during the call (the call may have
// been applied if its COMMIT was sent), rather than a refusal:
// metastore.Unreachable's network errors and deadlines, errors pgx marks
// safe to retry (nothing was sent) or as timeouts, and the server's
// connection errors (class 08) and shutdowns (57P01 admin_shutdown,
// 57P02 crash_shutdown, 57P03 cannot_connect_now).
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, metastore.ErrClosed) {
		return false
	}
	if metastore.Unreachable(err) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"),
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr)
}
