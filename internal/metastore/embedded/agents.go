package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.AgentRegistry = (*Store)(nil)

// Heartbeat implements metastore.AgentRegistry. An ID the store knows keeps
// its stored NodeID whatever a.NodeID says; a new one gets a.NodeID if it
// is >= 0, or the next id of a persisted counter, which never hands out an
// id twice, nor one an agent brought with it.
func (s *Store) Heartbeat(ctx context.Context, a metastore.AgentInfo, ttl time.Duration) (metastore.AgentInfo, error) {
	if err := metastore.CheckHeartbeatArgs(a, ttl); err != nil {
		return metastore.AgentInfo{}, fmt.Errorf("heartbeat %s: %w", a.ID, err)
	}
	rec := &agentRecord{
		Host:  a.Host,
		Port:  a.Port,
		Zone:  a.Zone,
		Roles: slices.Clone(a.Roles),
		Peer:  a.PeerAddr,

		Listeners: maps.Clone(a.Listeners),
		Admin:     a.Admin,
		Version:   a.Version,
		Started:   a.Started.UTC().Round(0),

		OutageManifest: a.OutageManifest,
	}
	var registered bool
	err := s.update(ctx, func(tx kv.Tx) error {
		// The clock is read inside the transaction, so that a heartbeat
		// waiting for bbolt's writer lock does not lose part of its ttl.
		now := s.now()
		rec.Expires = now.Add(ttl).UTC().Round(0)
		agents := tx.Bucket([]byte(bucketAgents))
		if a.OutageManifest != "" {
			if err := checkOutageManifest(agents.ForEach, a.ID, a.OutageManifest, now); err != nil {
				return err
			}
		}
		if v := agents.Get([]byte(a.ID)); v != nil {
			old, err := decodeAgent(v)
			if err != nil {
				return err
			}
			rec.NodeID = old.NodeID
		} else {
			// Agents are new rarely (once per process start), which makes
			// it the time to forget the ones long dead.
			if err := pruneAgents(agents, now); err != nil {
				return err
			}
			id, err := claimNodeID(tx, a.NodeID)
			if err != nil {
				return err
			}
			rec.NodeID = id
			registered = true
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return agents.Put([]byte(a.ID), v)
	})
	if err != nil {
		return metastore.AgentInfo{}, fmt.Errorf("heartbeat %s: %w", a.ID, err)
	}
	if registered {
		s.log.Info("agent registered", "agent", a.ID, "node", rec.NodeID, "host", a.Host, "port", a.Port, "zone", a.Zone)
	}
	return rec.agent(a.ID), nil
}

// checkOutageManifest fails with metastore.ErrOutageManifestTaken if a
// live registration of an agent other than id holds name, scanning the
// agents bucket with its ForEach. The registry is small (one record per
// agent process of the last hour), so it is scanned rather than indexed.
func checkOutageManifest(forEach func(func(k, v []byte) error) error, id, name string, now time.Time) error {
	return forEach(func(k, v []byte) error {
		if string(k) == id {
			return nil
		}
		rec, err := decodeAgent(v)
		if err != nil {
			return fmt.Errorf("agent %s: %w", k, err)
		}
		if rec.OutageManifest == name && rec.Expires.After(now) {
			return metastore.OutageManifestTaken(name, rec.agent(string(k)))
		}
		return nil
	})
}

// claimNodeID returns requested if it is >= 0, and otherwise the next id
// from the persisted counter; either way the counter ends above the id.
func claimNodeID(tx kv.Tx, requested int32) (int32, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	next := int64(firstNodeID)
	if v := meta.Get([]byte(keyNextNodeID)); v != nil {
		var err error
		if next, err = decodeInt64(v, "next node id"); err != nil {
			return 0, err
		}
	}
	id := int64(requested)
	if requested < 0 {
		id = next
	}
	if id > math.MaxInt32 {
		return 0, fmt.Errorf("node ids exhausted (next %d)", id)
	}
	next = max(next, id+1)
	if err := meta.Put([]byte(keyNextNodeID), binary.BigEndian.AppendUint64(nil, uint64(next))); err != nil {
		return 0, err
	}
	return int32(id), nil
}

// pruneAgents deletes the records of agents expired for longer than
// metastore.AgentPruneAfter.
func pruneAgents(b kv.Bucket, now time.Time) error {
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		rec, err := decodeAgent(v)
		if err != nil {
			return fmt.Errorf("agent %s: %w", k, err)
		}
		if now.Sub(rec.Expires) > metastore.AgentPruneAfter {
			dead = append(dead, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return deleteKeys(b, dead)
}

// LiveAgents implements metastore.AgentRegistry. Expired records stay in
// the file until a new agent registers (see pruneAgents); they are only
// filtered out here.
func (s *Store) LiveAgents(ctx context.Context) ([]metastore.AgentInfo, error) {
	var agents []metastore.AgentInfo
	err := s.view(ctx, func(tx kv.Tx) error {
		now := s.now()
		return tx.Bucket([]byte(bucketAgents)).ForEach(func(k, v []byte) error {
			rec, err := decodeAgent(v)
			if err != nil {
				return fmt.Errorf("agent %s: %w", k, err)
			}
			if rec.Expires.After(now) {
				agents = append(agents, rec.agent(string(k)))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("live agents: %w", err)
	}
	metastore.SortAgents(agents)
	return agents, nil
}

// Deregister implements metastore.AgentRegistry. Deregistering an unknown
// agent is not an error: a shutdown may follow the record's pruning.
func (s *Store) Deregister(ctx context.Context, id string) error {
	var existed bool
	err := s.update(ctx, func(tx kv.Tx) error {
		if id == "" {
			return nil // not a valid key, so never registered
		}
		b := tx.Bucket([]byte(bucketAgents))
		existed = b.Get([]byte(id)) != nil
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("deregister %s: %w", id, err)
	}
	if existed {
		s.log.Info("agent deregistered", "agent", id)
	}
	return nil
}

// ClusterSecret implements metastore.AgentRegistry: the secret is made
// once, in the first write transaction that finds none.
func (s *Store) ClusterSecret(ctx context.Context) ([]byte, error) {
	var secret []byte
	err := s.view(ctx, func(tx kv.Tx) error {
		secret = bytes.Clone(tx.Bucket([]byte(bucketMeta)).Get([]byte(keyClusterSecret)))
		return nil
	})
	if err == nil && secret == nil {
		err = s.update(ctx, func(tx kv.Tx) error {
			meta := tx.Bucket([]byte(bucketMeta))
			if v := meta.Get([]byte(keyClusterSecret)); v != nil {
				secret = bytes.Clone(v)
				return nil
			}
			secret = make([]byte, metastore.ClusterSecretBytes)
			if _, err := io.ReadFull(s.rand, secret); err != nil {
				return err
			}
			return meta.Put([]byte(keyClusterSecret), secret)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if len(secret) != metastore.ClusterSecretBytes {
		return nil, fmt.Errorf("cluster secret: %w: %d bytes", errCorrupt, len(secret))
	}
	return secret, nil
}
