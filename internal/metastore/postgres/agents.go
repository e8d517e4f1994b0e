package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.AgentRegistry = (*Store)(nil)

// Heartbeat implements metastore.AgentRegistry. Expiry is computed from
// the database clock (now()), so that agents with skewed clocks agree on
// who is alive. An ID the store knows keeps its stored NodeID; a new one
// gets a.NodeID if it is >= 0, or the next id of a counter that never
// hands out an id twice, nor one an agent brought with it.
func (s *Store) Heartbeat(ctx context.Context, a metastore.AgentInfo, ttl time.Duration) (metastore.AgentInfo, error) {
	if err := metastore.CheckHeartbeatArgs(a, ttl); err != nil {
		return metastore.AgentInfo{}, fmt.Errorf("heartbeat %s: %w", a.ID, err)
	}
	roles, err := json.Marshal(nonNilRoles(a.Roles))
	if err != nil {
		return metastore.AgentInfo{}, fmt.Errorf("heartbeat %s: %w", a.ID, err)
	}
	listeners, err := json.Marshal(nonNilListeners(a.Listeners))
	if err != nil {
		return metastore.AgentInfo{}, fmt.Errorf("heartbeat %s: %w", a.ID, err)
	}
	got := metastore.AgentInfo{ID: a.ID, Host: a.Host, Port: a.Port, Zone: a.Zone, Roles: slices.Clone(a.Roles), PeerAddr: a.PeerAddr,
		Listeners: maps.Clone(a.Listeners), Admin: a.Admin, Version: a.Version, Started: a.Started, OutageManifest: a.OutageManifest}
	var started *time.Time // NULL: not serving yet
	if !a.Started.IsZero() {
		started = &a.Started
	}
	var manifest *string // NULL: no name held
	if a.OutageManifest != "" {
		manifest = &a.OutageManifest
	}
	ttlMicros := max(ttl.Microseconds(), 1)
	var registered bool
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		registered = false
		if manifest != nil {
			if err := takeOutageManifest(ctx, tx, a.ID, *manifest); err != nil {
				return err
			}
		}
		err := tx.QueryRow(ctx, `
			UPDATE agents SET host = $2, port = $3, zone = $4, roles = $5,
				expires = now() + $6::BIGINT * INTERVAL '1 microsecond', peer_addr = $7, listeners = $8,
				admin = $9, version = $10, started = $11, outage_manifest = $12
			WHERE id = $1
			RETURNING node_id, expires`,
			a.ID, a.Host, a.Port, a.Zone, string(roles), ttlMicros, a.PeerAddr, string(listeners), a.Admin, a.Version, started, manifest).Scan(&got.NodeID, &got.Expires)
		if !errors.Is(err, pgx.ErrNoRows) {
			return manifestRace(err)
		}
		// A new agent. Agents are new rarely (once per process start),
		// which makes it the time to forget the ones long dead.
		registered = true
		_, err = tx.Exec(ctx, `DELETE FROM agents WHERE expires < now() - $1::BIGINT * INTERVAL '1 microsecond'`,
			metastore.AgentPruneAfter.Microseconds())
		if err != nil {
			return fmt.Errorf("prune agents: %w", err)
		}
		if got.NodeID, err = claimNodeID(ctx, tx, a.NodeID); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO agents (id, node_id, host, port, zone, roles, expires, peer_addr, listeners, admin, version, started, outage_manifest)
			VALUES ($1, $2, $3, $4, $5, $6, now() + $7::BIGINT * INTERVAL '1 microsecond', $8, $9, $10, $11, $12, $13)
			ON CONFLICT (id) DO NOTHING
			RETURNING expires`,
			a.ID, got.NodeID, a.Host, a.Port, a.Zone, string(roles), ttlMicros, a.PeerAddr, string(listeners), a.Admin, a.Version, started, manifest).Scan(&got.Expires)
		if errors.Is(err, pgx.ErrNoRows) {
			// A concurrent first heartbeat of the same agent won; the
			// next attempt updates its row.
			return errRetry
		}
		return manifestRace(err)
	})
	if err != nil {
		return metastore.AgentInfo{}, fmt.Errorf("heartbeat %s: %w", a.ID, err)
	}
	if registered {
		s.log.Info("agent registered", "agent", a.ID, "node", got.NodeID, "host", a.Host, "port", a.Port, "zone", a.Zone)
	}
	return got, nil
}

// outageManifestIndex is the unique index on agents.outage_manifest
// (migration 0013).
const outageManifestIndex = "agents_outage_manifest"

// takeOutageManifest fails with metastore.ErrOutageManifestTaken if a
// live registration of an agent other than id holds name, and otherwise
// clears the name from expired registrations, so that the caller's row
// can take it under the unique index.
func takeOutageManifest(ctx context.Context, tx pgx.Tx, id, name string) error {
	var h metastore.AgentInfo
	err := tx.QueryRow(ctx, `
		SELECT id, node_id, host, port, expires FROM agents
		WHERE outage_manifest = $1 AND id <> $2 AND expires > now()`, name, id).Scan(&h.ID, &h.NodeID, &h.Host, &h.Port, &h.Expires)
	if err == nil {
		return metastore.OutageManifestTaken(name, h)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	// Only expired rows: a holder that committed since the SELECT keeps
	// its name, and the caller's write then hits the index (manifestRace).
	_, err = tx.Exec(ctx, `
		UPDATE agents SET outage_manifest = NULL
		WHERE outage_manifest = $1 AND id <> $2 AND expires <= now()`, name, id)
	return err
}

// manifestRace turns a write that hit the outage manifest index (another
// agent took the name between takeOutageManifest and the write) into a
// retry, whose takeOutageManifest then reports the holder.
func manifestRace(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == outageManifestIndex {
		return errRetry
	}
	return err
}

// claimNodeID returns requested if it is >= 0, and otherwise the next id
// from the counter; either way the counter ends above the id.
func claimNodeID(ctx context.Context, tx pgx.Tx, requested int32) (int32, error) {
	id := int64(requested)
	if requested < 0 {
		var err error
		if id, err = nextCounter(ctx, tx, "next_node_id"); err != nil {
			return 0, err
		}
	} else {
		_, err := tx.Exec(ctx, `UPDATE counters SET value = GREATEST(value, $2) WHERE name = $1`, "next_node_id", id+1)
		if err != nil {
			return 0, fmt.Errorf("counter next_node_id: %w", err)
		}
	}
	if id > math.MaxInt32 {
		return 0, fmt.Errorf("node ids exhausted (next %d)", id)
	}
	return int32(id), nil
}

// LiveAgents implements metastore.AgentRegistry.
func (s *Store) LiveAgents(ctx context.Context) ([]metastore.AgentInfo, error) {
	var agents []metastore.AgentInfo
	err := s.run(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `
			SELECT id, node_id, host, port, zone, roles, expires, peer_addr, listeners, admin, version, started, outage_manifest
			FROM agents WHERE expires > now()`)
		var err error
		agents, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (metastore.AgentInfo, error) {
			var (
				a         metastore.AgentInfo
				roles     string
				listeners string
				started   *time.Time
				manifest  *string
			)
			if err := row.Scan(&a.ID, &a.NodeID, &a.Host, &a.Port, &a.Zone, &roles, &a.Expires, &a.PeerAddr, &listeners,
				&a.Admin, &a.Version, &started, &manifest); err != nil {
				return a, err
			}
			if manifest != nil {
				a.OutageManifest = *manifest
			}
			if started != nil {
				a.Started = *started
			}
			if err := json.Unmarshal([]byte(roles), &a.Roles); err != nil {
				return a, fmt.Errorf("agent %s roles: %w", a.ID, err)
			}
			if err := json.Unmarshal([]byte(listeners), &a.Listeners); err != nil {
				return a, fmt.Errorf("agent %s listeners: %w", a.ID, err)
			}
			if len(a.Listeners) == 0 {
				a.Listeners = nil
			}
			return a, nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("live agents: %w", err)
	}
	metastore.SortAgents(agents)
	return agents, nil
}

// Deregister implements metastore.AgentRegistry. Deregistering an unknown
// agent is not an error: a shutdown may follow the row's pruning.
func (s *Store) Deregister(ctx context.Context, id string) error {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM agents WHERE id = $1`, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("deregister %s: %w", id, err)
	}
	if n > 0 {
		s.log.Info("agent deregistered", "agent", id)
	}
	return nil
}

func nonNilListeners(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

func nonNilRoles(roles []string) []string {
	if roles == nil {
		return []string{}
	}
	return roles
}

// ClusterSecret implements metastore.AgentRegistry: the first caller's
// random secret wins the insert, and every caller reads the stored one.
func (s *Store) ClusterSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, metastore.ClusterSecretBytes)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	var secret []byte
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ('cluster-secret', $1) ON CONFLICT (name) DO NOTHING`, fresh); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM secrets WHERE name = 'cluster-secret'`).Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if len(secret) != metastore.ClusterSecretBytes {
		return nil, fmt.Errorf("cluster secret: stored value has %d bytes, want %d", len(secret), metastore.ClusterSecretBytes)
	}
	return secret, nil
}
