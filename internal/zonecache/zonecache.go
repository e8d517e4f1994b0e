// Package zonecache is the zone's shared read cache. Within a zone, every
// block of every object has one owner agent (rendezvous hashing over the
// zone's live readers); an agent missing a block asks its owner instead of
// the bucket, and the owner serves it from its block cache or GETs it
// once. N consumers at the live edge, spread over a zone's agents, cost
// about one GET per block per zone.
//
// Agents talk on a peer listener of their own, never on the Kafka
// listener: a connection proves knowledge of the cluster secret before
// any request is read (handshake.go), optionally inside TLS, and every
// size and range in a request is checked against the request frame, a
// per-request limit and the metadata store's record of the object before
// anything is allocated, read or cached (server.go). A peer that fails,
// refuses or times out is bypassed: the block is read from the bucket.
//
// This package must never trust what a peer says: not the sizes in its
// requests, nor the length of its answers.
package zonecache

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// DefaultTimeout bounds one peer request before the asker reads the
// bucket instead.
const DefaultTimeout = 5 * time.Second

// Members is this agent's view of the live agents (cluster.Membership).
type Members interface {
	Self() metastore.AgentInfo
	Live() []metastore.AgentInfo
}

// RingOptions configure a Ring.
type RingOptions struct {
	// BlockSize is the block cache's block size: the unit of ownership.
	BlockSize int64
	// Role is the role an agent must have to own blocks (the fetch role).
	Role string
	// Secret and TLS are the asker's side of the peer listeners'
	// authentication.
	Secret []byte
	TLS    *tls.Config
	// MaxRunBytes bounds one request (default DefaultMaxRunBytes); longer
	// runs are split. It must not exceed the servers' limit.
	MaxRunBytes int64
	// Timeout bounds one peer request (default DefaultTimeout).
	Timeout    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Ring routes the block cache's misses to the blocks' owners.
type Ring struct {
	members Members
	bucket  objstore.Bucket
	opts    RingOptions
	asker   *asker
	log     *slog.Logger

	requests *prometheus.CounterVec
}

// NewRing returns a ring over members' zone. Its Fetch is the block
// cache's fetch hook.
func NewRing(members Members, bucket objstore.Bucket, opts RingOptions) *Ring {
	if opts.MaxRunBytes <= 0 {
		opts.MaxRunBytes = DefaultMaxRunBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Ring{
		members: members, bucket: bucket, opts: opts, log: opts.Logger,
		asker: newAsker(opts.Secret, opts.TLS),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_cache_peer_requests_total",
			Help: "Block runs fetched for the read cache, by source: bucket (this agent owns them, or serves a peer), peer (their owner served them), fallback (the owner failed; read from the bucket).",
		}, []string{"source"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.requests)
	}
	for _, source := range []string{"bucket", "peer", "fallback"} {
		r.requests.WithLabelValues(source) // zeros from the start, for dashboards
	}
	return r
}

// Close closes idle peer connections.
func (r *Ring) Close() { r.asker.close() }

// owner returns the agent owning block idx of key: one of the live agents
// of this agent's zone that serve fetches and have a peer listener.
func (r *Ring) owner(zone []metastore.AgentInfo, self metastore.AgentInfo, key string, idx int64) metastore.AgentInfo {
	if len(zone) == 0 {
		return self
	}
	return cluster.Owner(zone, "block:"+key+"/"+strconv.FormatInt(idx, 10))
}

func (r *Ring) zone() (self metastore.AgentInfo, zone []metastore.AgentInfo) {
	self = r.members.Self()
	for _, a := range r.members.Live() {
		if a.Zone == self.Zone && a.PeerAddr != "" && slices.Contains(a.Roles, r.opts.Role) {
			zone = append(zone, a)
		}
	}
	return self, zone
}

// Fetch is the cache's fetch hook: it splits [start, end) into runs of
// blocks with the same owner, at most MaxRunBytes long, and gets each run
// from the bucket (own blocks, or any block when serving a peer) or from
// its owner, falling back to the bucket when the owner fails.
func (r *Ring) Fetch(ctx context.Context, key string, objectSize, start, end int64) ([]byte, error) {
	bs := r.opts.BlockSize
	self, zone := r.zone()
	fromPeer := servingPeer(ctx)
	maxRun := max(r.opts.MaxRunBytes/bs, 1) * bs
	var out []byte
	for pos := start; pos < end; {
		owner := r.owner(zone, self, key, pos/bs)
		runEnd := min((pos/bs+1)*bs, end)
		for runEnd < end && runEnd-pos < maxRun && r.owner(zone, self, key, runEnd/bs).ID == owner.ID {
			runEnd = min(runEnd+bs, end)
		}
		var data []byte
		var err error
		if owner.ID == self.ID || fromPeer {
			r.requests.WithLabelValues("bucket").Inc()
			data, err = r.bucket.GetRange(ctx, key, pos, runEnd-pos)
		} else {
			data, err = r.ask(ctx, owner, Request{Key: key, ObjectSize: objectSize, Start: pos, End: runEnd})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				r.log.Debug("peer block fetch failed; reading the bucket", "peer", owner.NodeID, "object", key, "err", err)
				r.requests.WithLabelValues("fallback").Inc()
				data, err = r.bucket.GetRange(ctx, key, pos, runEnd-pos)
			} else {
				r.requests.WithLabelValues("peer").Inc()
			}
		}
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != runEnd-pos {
			return nil, fmt.Errorf("got %d bytes for [%d, %d) of %s", len(data), pos, runEnd, key)
		}
		if pos == start && runEnd == end {
			return data, nil // one run (the usual case): no copy
		}
		if out == nil {
			out = make([]byte, 0, end-start)
		}
		out = append(out, data...)
		pos = runEnd
	}
	return out, nil
}

func (r *Ring) ask(ctx context.Context, owner metastore.AgentInfo, req Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	return r.asker.get(ctx, owner.PeerAddr, req)
}
