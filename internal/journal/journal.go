// Package journal is the control plane's durable log: for every virtual
// cluster, a sequence of batches of commands, appended by the vcluster's
// leader and replayed by whoever rebuilds its state. It lives in
// PostgreSQL, one row per batch, and also keeps the registry of vclusters
// (their agent keys' hashes) and each vcluster's leader lease, whose
// epoch fences appends.
//
// It stores opaque bytes: what a batch means is internal/control's.
package journal

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of the journal.
var (
	// ErrFenced: the lease moved to a newer epoch; the caller is no longer
	// the vcluster's leader and must stop.
	ErrFenced = errors.New("journal: fenced by a newer leader")
	// ErrSeqTaken: a row with that sequence number exists already.
	ErrSeqTaken = errors.New("journal: sequence number already appended")
	// ErrVClusterExists and ErrUnknownVCluster: the registry.
	ErrVClusterExists  = errors.New("virtual cluster already exists")
	ErrUnknownVCluster = errors.New("unknown virtual cluster")
	// ErrBadKey: the key does not match the vcluster's.
	ErrBadKey = errors.New("wrong key for virtual cluster")
	// ErrLeaseHeld: another holder's lease has not expired.
	ErrLeaseHeld = errors.New("journal: lease held by another control process")
	// ErrGap: Read found a row after a missing one (rows deleted by
	// Trim under a reader that had not read them, or lost).
	ErrGap = errors.New("journal: rows missing")
)

// MaxBatchBytes bounds one appended batch.
const MaxBatchBytes = 64 << 20

const schema = `
CREATE TABLE IF NOT EXISTS floe_control_vclusters (
	name       text PRIMARY KEY,
	key_hash   bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS floe_control_leases (
	vcluster    text PRIMARY KEY,
	epoch       bigint NOT NULL,
	holder      text NOT NULL,
	acquired_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE floe_control_leases ADD COLUMN IF NOT EXISTS expires_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE floe_control_vclusters ADD COLUMN IF NOT EXISTS id text NOT NULL DEFAULT '';
ALTER TABLE floe_control_vclusters ADD COLUMN IF NOT EXISTS base_seq bigint NOT NULL DEFAULT 0;
UPDATE floe_control_vclusters SET id = gen_random_uuid()::text WHERE id = '';
CREATE TABLE IF NOT EXISTS floe_control_journal (
	vcluster    text NOT NULL,
	seq         bigint NOT NULL,
	epoch       bigint NOT NULL,
	batch       bytea NOT NULL,
	appended_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (vcluster, seq)
);
`

// Journal is a PostgreSQL journal. Safe for concurrent use.
type Journal struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// Open connects to the database at dbURL and creates the tables if they
// are missing.
func Open(ctx context.Context, dbURL string, log *slog.Logger) (*Journal, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	redacted := dbURL
	if u, err := url.Parse(dbURL); err == nil {
		redacted = u.Redacted()
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", redacted, err)
	}
	// Concurrent CREATE TABLE IF NOT EXISTS can still collide in the
	// catalog; an advisory lock serialises control processes starting
	// together.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7400216)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("journal %s: schema: %w", redacted, err)
	}
	log.Info("journal opened", "url", redacted)
	return &Journal{pool: pool, log: log}, nil
}

// Close closes the connections.
func (j *Journal) Close() { j.pool.Close() }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckName validates a vcluster name: 1 to 63 characters, lower-case
// letters, digits, '-' and '_', starting with a letter or digit.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("virtual cluster name %q: want 1-63 of a-z, 0-9, '-', '_', starting with a letter or digit", name)
	}
	return nil
}

// HashKey is what the registry keeps of an agent key.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// VCluster is a registry entry.
type VCluster struct {
	Name string
	// ID is unique to this incarnation of the name (a UUID): a vcluster
	// deleted and created again, or restored from a backup, has a new
	// one, so that its backups never mix with another's.
	ID        string
	CreatedAt time.Time
	// BaseSeq is the sequence number the journal's rows start after: 0,
	// or the batch of the snapshot a restore started it from (rows up to
	// BaseSeq are not in the journal; the state comes from the snapshot).
	BaseSeq int64
	keyHash []byte
}

// KeyHash is the SHA-256 of the vcluster's agent key.
func (v VCluster) KeyHash() []byte { return v.keyHash }

// CreateVCluster registers a vcluster whose agents prove key.
func (j *Journal) CreateVCluster(ctx context.Context, name, key string) error {
	return j.insertVCluster(ctx, name, uuid.NewString(), HashKey(key), time.Time{}, 0)
}

// RestoreVCluster registers a vcluster restored from a backup: its key's
// hash and creation time as the backup has them, a new id, and the
// sequence number of the snapshot its state starts from (BaseSeq).
func (j *Journal) RestoreVCluster(ctx context.Context, name, id string, keyHash []byte, createdAt time.Time, baseSeq int64) error {
	if len(keyHash) != sha256.Size {
		return fmt.Errorf("restore virtual cluster %s: key hash of %d bytes", name, len(keyHash))
	}
	if baseSeq < 0 {
		return fmt.Errorf("restore virtual cluster %s: base sequence %d", name, baseSeq)
	}
	return j.insertVCluster(ctx, name, id, keyHash, createdAt, baseSeq)
}

func (j *Journal) insertVCluster(ctx context.Context, name, id string, keyHash []byte, createdAt time.Time, baseSeq int64) error {
	if err := CheckName(name); err != nil {
		return err
	}
	var at any
	if !createdAt.IsZero() {
		at = createdAt
	}
	_, err := j.pool.Exec(ctx, `INSERT INTO floe_control_vclusters (name, id, key_hash, created_at, base_seq) VALUES ($1, $2, $3, COALESCE($4, now()), $5)`,
		name, id, keyHash, at, baseSeq)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrVClusterExists, name)
	}
	if err != nil {
		return fmt.Errorf("create virtual cluster %s: %w", name, err)
	}
	return nil
}

// VCluster returns one registry entry (ErrUnknownVCluster if none).
func (j *Journal) VCluster(ctx context.Context, name string) (VCluster, error) {
	v := VCluster{Name: name}
	err := j.pool.QueryRow(ctx, `SELECT id, key_hash, created_at, base_seq FROM floe_control_vclusters WHERE name = $1`, name).
		Scan(&v.ID, &v.keyHash, &v.CreatedAt, &v.BaseSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("%w: %s", ErrUnknownVCluster, name)
	}
	if err != nil {
		return v, fmt.Errorf("virtual cluster %s: %w", name, err)
	}
	return v, nil
}

// LastSeq is the sequence number of the vcluster's last batch: its last
// row, or its BaseSeq if it has none after it.
func (j *Journal) LastSeq(ctx context.Context, name string) (int64, error) {
	var last int64
	err := j.pool.QueryRow(ctx, `
		SELECT GREATEST(COALESCE((SELECT max(seq) FROM floe_control_journal WHERE vcluster = $1), 0),
		                COALESCE((SELECT base_seq FROM floe_control_vclusters WHERE name = $1), 0))`, name).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("journal %s: last sequence: %w", name, err)
	}
	return last, nil
}

// VClusters lists the registry, sorted by name.
func (j *Journal) VClusters(ctx context.Context) ([]VCluster, error) {
	rows, err := j.pool.Query(ctx, `SELECT name, id, key_hash, created_at, base_seq FROM floe_control_vclusters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list virtual clusters: %w", err)
	}
	var out []VCluster
	for rows.Next() {
		var v VCluster
		if err := rows.Scan(&v.Name, &v.ID, &v.keyHash, &v.CreatedAt, &v.BaseSeq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list virtual clusters: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list virtual clusters: %w", err)
	}
	return out, nil
}

// CheckKey reports whether key is v's agent key, in constant time.
func (v VCluster) CheckKey(key string) bool {
	return subtle.ConstantTimeCompare(HashKey(key), v.keyHash) == 1
}

// DeleteVCluster removes a vcluster: its registry entry, its lease and
// its journal.
func (j *Journal) DeleteVCluster(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, j.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM floe_control_vclusters WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("delete virtual cluster %s: %w", name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s", ErrUnknownVCluster, name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM floe_control_leases WHERE vcluster = $1`, name); err != nil {
			return fmt.Errorf("delete virtual cluster %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM floe_control_journal WHERE vcluster = $1`, name); err != nil {
			return fmt.Errorf("delete virtual cluster %s: %w", name, err)
		}
		return nil
	})
}

// Lease is a holder's leadership of a vcluster.
type Lease struct {
	Epoch int64
	// Holder and Expires describe the lease that TakeLease found held
	// (with ErrLeaseHeld).
	Holder  string
	Expires time.Time
}

// TakeLease makes holder the vcluster's leader at a new epoch for ttl,
// if the lease is free: never taken, released, expired (by the
// database's clock), or already holder's. Appends under older epochs fail
// from now on; appends in flight under the old epoch finish first (they
// hold the lease row). Otherwise it returns ErrLeaseHeld, with the
// holder and expiry it found.
func (j *Journal) TakeLease(ctx context.Context, vcluster, holder string, ttl time.Duration) (Lease, error) {
	var l Lease
	err := j.pool.QueryRow(ctx, `
		INSERT INTO floe_control_leases AS l (vcluster, epoch, holder, expires_at)
		VALUES ($1, 1, $2, now() + $3 * interval '1 microsecond')
		ON CONFLICT (vcluster) DO UPDATE SET epoch = l.epoch + 1, holder = $2, acquired_at = now(), expires_at = excluded.expires_at
		WHERE l.expires_at <= now() OR l.holder = '' OR l.holder = $2
		RETURNING epoch`, vcluster, holder, ttl.Microseconds()).Scan(&l.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		err = j.pool.QueryRow(ctx, `SELECT holder, expires_at FROM floe_control_leases WHERE vcluster = $1`, vcluster).Scan(&l.Holder, &l.Expires)
		if err != nil {
			return Lease{}, fmt.Errorf("take lease of %s: %w", vcluster, err)
		}
		return l, fmt.Errorf("%w: %s, by %s until %s", ErrLeaseHeld, vcluster, l.Holder, l.Expires.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return Lease{}, fmt.Errorf("take lease of %s: %w", vcluster, err)
	}
	return l, nil
}

// RenewLease extends the lease at epoch to ttl from now (the database's
// clock). ErrFenced: the lease is at another epoch, or expired and so may
// have been taken (a leader whose lease expired must not extend it: it
// may have stopped serving and must take it again, replaying).
func (j *Journal) RenewLease(ctx context.Context, vcluster string, epoch int64, ttl time.Duration) error {
	tag, err := j.pool.Exec(ctx, `
		UPDATE floe_control_leases SET expires_at = now() + $3 * interval '1 microsecond'
		WHERE vcluster = $1 AND epoch = $2 AND holder <> '' AND expires_at > now()`, vcluster, epoch, ttl.Microseconds())
	if err != nil {
		return fmt.Errorf("renew lease of %s: %w", vcluster, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s epoch %d", ErrFenced, vcluster, epoch)
	}
	return nil
}

// ReleaseLease gives the lease at epoch up, so that another process can
// take it without waiting for it to expire. Releasing a lease that moved
// on does nothing.
func (j *Journal) ReleaseLease(ctx context.Context, vcluster string, epoch int64) error {
	_, err := j.pool.Exec(ctx, `UPDATE floe_control_leases SET holder = '', expires_at = now() WHERE vcluster = $1 AND epoch = $2`, vcluster, epoch)
	if err != nil {
		return fmt.Errorf("release lease of %s: %w", vcluster, err)
	}
	return nil
}

// Append adds one batch at seq, if epoch is still the vcluster's lease
// epoch and the lease has not expired nor been released (ErrFenced), and
// seq is free (ErrSeqTaken).
func (j *Journal) Append(ctx context.Context, vcluster string, epoch, seq int64, batch []byte) error {
	if len(batch) > MaxBatchBytes {
		return fmt.Errorf("journal %s: batch of %d bytes over %d", vcluster, len(batch), MaxBatchBytes)
	}
	tag, err := j.pool.Exec(ctx, `
		INSERT INTO floe_control_journal (vcluster, seq, epoch, batch)
		SELECT $1, $2, $3, $4 FROM floe_control_leases WHERE vcluster = $1 AND epoch = $3 AND holder <> '' AND expires_at > now() FOR SHARE`,
		vcluster, seq, epoch, batch)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %s #%d", ErrSeqTaken, vcluster, seq)
	}
	if err != nil {
		return fmt.Errorf("journal %s: append #%d: %w", vcluster, seq, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s epoch %d", ErrFenced, vcluster, epoch)
	}
	return nil
}

// Trim deletes the vcluster's rows up to upTo and raises its BaseSeq to
// it, if epoch still holds the lease (ErrFenced otherwise): the caller
// guarantees that a snapshot of the state after batch upTo is safely
// elsewhere (the bucket), since the journal alone no longer rebuilds the
// vcluster. It returns the number of rows deleted.
func (j *Journal) Trim(ctx context.Context, vcluster string, epoch, upTo int64) (int64, error) {
	var deleted int64
	err := pgx.BeginFunc(ctx, j.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM floe_control_leases WHERE vcluster = $1 AND epoch = $2 AND holder <> '' AND expires_at > now() FOR SHARE`,
			vcluster, epoch).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s epoch %d", ErrFenced, vcluster, epoch)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE floe_control_vclusters SET base_seq = GREATEST(base_seq, $2) WHERE name = $1`, vcluster, upTo); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM floe_control_journal WHERE vcluster = $1 AND seq <= $2`, vcluster, upTo)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("journal %s: trim up to #%d: %w", vcluster, upTo, err)
	}
	return deleted, nil
}

// Entry is one appended batch.
type Entry struct {
	Seq   int64
	Batch []byte
}

// Read calls fn with every batch of vcluster from seq from on, in order,
// reading limit rows at a time.
func (j *Journal) Read(ctx context.Context, vcluster string, from int64, fn func(Entry) error) error {
	const limit = 32 // rows of at most MaxBatchBytes each held at once
	for {
		rows, err := j.pool.Query(ctx, `SELECT seq, batch FROM floe_control_journal WHERE vcluster = $1 AND seq >= $2 ORDER BY seq LIMIT $3`, vcluster, from, limit)
		if err != nil {
			return fmt.Errorf("journal %s: read from #%d: %w", vcluster, from, err)
		}
		var batch []Entry
		for rows.Next() {
			var e Entry
			if err := rows.Scan(&e.Seq, &e.Batch); err != nil {
				rows.Close()
				return fmt.Errorf("journal %s: read from #%d: %w", vcluster, from, err)
			}
			batch = append(batch, e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("journal %s: read from #%d: %w", vcluster, from, err)
		}
		for _, e := range batch {
			if e.Seq != from {
				return fmt.Errorf("%w: journal %s: #%d after #%d", ErrGap, vcluster, e.Seq, from-1)
			}
			if err := fn(e); err != nil {
				return err
			}
			from++
		}
		if len(batch) < limit {
			return nil
		}
	}
}
