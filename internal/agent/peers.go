package agent

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/wire"
)

// The distributed read cache: within a zone, every block of every object
// has one owner agent (rendezvous hashing over the zone's live readers).
// An agent missing a block asks its owner instead of the bucket; the owner
// serves it from its cache or GETs it once. N consumers at the live edge,
// spread over the agents of a zone, cost about one GET per block per zone.
//
// Peers talk over the Kafka listener with a private request key that no
// Kafka client sends; it is not advertised in ApiVersions. A peer that
// fails or times out is bypassed: the block is read from the bucket.

// peerBlocksKey is the private API key of the block request.
const peerBlocksKey int16 = 20000

// peerTimeout bounds one peer request before falling back to the bucket.
const peerTimeout = 5 * time.Second

// peers routes block fetches to their owners and serves other agents'.
type peers struct {
	members *cluster.Membership
	bucket  objstore.Bucket
	blocks  *cache.Blocks // set after construction (the cache needs fetch)
	log     *slog.Logger

	requests *prometheus.CounterVec

	mu    sync.Mutex
	conns map[string]*peerConn // by address
}

func newPeers(members *cluster.Membership, bucket objstore.Bucket, log *slog.Logger, reg prometheus.Registerer) *peers {
	p := &peers{
		members: members, bucket: bucket, log: log, conns: map[string]*peerConn{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_cache_peer_requests_total",
			Help: "Block runs fetched for the read cache, by source: bucket (this agent owns them), peer (their owner served them), fallback (the owner failed; read from the bucket), served (sent to a peer).",
		}, []string{"source"}),
	}
	reg.MustRegister(p.requests)
	return p
}

type fromPeerKey struct{}

// owner returns the agent owning block idx of key among the live agents
// of this agent's zone that serve fetches.
func (p *peers) owner(key string, idx int64) metastore.AgentInfo {
	self := p.members.Self()
	var zone []metastore.AgentInfo
	for _, a := range p.members.Live() {
		if a.Zone == self.Zone && slicesContains(a.Roles, protocol.RoleFetch) {
			zone = append(zone, a)
		}
	}
	if len(zone) == 0 {
		return self
	}
	return cluster.Owner(zone, "block:"+key+"/"+strconv.FormatInt(idx, 10))
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// fetch is the cache's Fetch hook: it splits [start, end) into runs of
// blocks with the same owner and gets each run from the bucket (own
// blocks, or any block when serving a peer) or from its owner.
func (p *peers) fetch(ctx context.Context, key string, objectSize, start, end int64) ([]byte, error) {
	bs := p.blocks.BlockSize()
	self := p.members.Self().ID
	servingPeer := ctx.Value(fromPeerKey{}) != nil
	out := make([]byte, 0, end-start)
	for pos := start; pos < end; {
		owner := p.owner(key, pos/bs)
		runEnd := min((pos/bs+1)*bs, end)
		for runEnd < end && p.owner(key, runEnd/bs).ID == owner.ID {
			runEnd = min(runEnd+bs, end)
		}
		var data []byte
		var err error
		if owner.ID == self || servingPeer {
			p.requests.WithLabelValues("bucket").Inc()
			data, err = p.bucket.GetRange(ctx, key, pos, runEnd-pos)
		} else {
			data, err = p.ask(ctx, owner, key, objectSize, pos, runEnd)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				p.log.Debug("peer block fetch failed; reading the bucket", "peer", owner.NodeID, "object", key, "err", err)
				p.requests.WithLabelValues("fallback").Inc()
				data, err = p.bucket.GetRange(ctx, key, pos, runEnd-pos)
			} else {
				p.requests.WithLabelValues("peer").Inc()
			}
		}
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != runEnd-pos {
			return nil, fmt.Errorf("got %d bytes for [%d, %d) of %s", len(data), pos, runEnd, key)
		}
		out = append(out, data...)
		pos = runEnd
	}
	return out, nil
}

// serve answers a peer's block request from this agent's cache.
func (p *peers) serve(req *wire.Request) (protocol.Reply, error) {
	r := kbin.Reader{Src: req.Body}
	key := r.String()
	objectSize, start, end := r.Int64(), r.Int64(), r.Int64()
	if err := r.Complete(); err != nil {
		return nil, fmt.Errorf("%w: peer block request: %v", wire.ErrMalformed, err)
	}
	if !strings.HasPrefix(key, "segments/") || start < 0 || end < start || end > objectSize {
		return nil, fmt.Errorf("%w: peer block request for %q [%d, %d) of %d", wire.ErrMalformed, key, start, end, objectSize)
	}
	return func(ctx context.Context) kmsg.Response {
		ctx = context.WithValue(ctx, fromPeerKey{}, true)
		data, err := p.blocks.ReadRange(ctx, key, objectSize, start, end-start)
		resp := &peerBlocksResponse{data: data}
		if err != nil {
			resp.errorCode = 1
			resp.data = []byte(err.Error())
		}
		p.requests.WithLabelValues("served").Inc()
		return resp
	}, nil
}

// ask requests [start, end) of key from owner.
func (p *peers) ask(ctx context.Context, owner metastore.AgentInfo, key string, objectSize, start, end int64) ([]byte, error) {
	addr := net.JoinHostPort(owner.Host, strconv.Itoa(int(owner.Port)))
	p.mu.Lock()
	pc := p.conns[addr]
	if pc == nil {
		pc = &peerConn{addr: addr}
		p.conns[addr] = pc
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	return pc.roundTrip(ctx, key, objectSize, start, end)
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.close()
	}
}

// peerConn is one connection to a peer, used by one request at a time
// (block runs are large; concurrency comes from the cache's single-flight
// across many blocks, and a peer that is slow is bypassed).
type peerConn struct {
	addr string
	mu   sync.Mutex
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

func (pc *peerConn) roundTrip(ctx context.Context, key string, objectSize, start, end int64) ([]byte, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.nc == nil {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", pc.addr)
		if err != nil {
			return nil, err
		}
		pc.nc, pc.r = nc, bufio.NewReaderSize(nc, 64<<10)
	}
	if dl, ok := ctx.Deadline(); ok {
		pc.nc.SetDeadline(dl)
	}
	data, err := pc.exchange(key, objectSize, start, end)
	if err != nil {
		pc.nc.Close()
		pc.nc = nil
	}
	return data, err
}

func (pc *peerConn) exchange(key string, objectSize, start, end int64) ([]byte, error) {
	pc.corr++
	frame := make([]byte, 4, 64+len(key))
	frame = kbin.AppendInt16(frame, peerBlocksKey)
	frame = kbin.AppendInt16(frame, 0)
	frame = kbin.AppendInt32(frame, pc.corr)
	frame = kbin.AppendNullableString(frame, nil)
	frame = kbin.AppendString(frame, key)
	frame = kbin.AppendInt64(frame, objectSize)
	frame = kbin.AppendInt64(frame, start)
	frame = kbin.AppendInt64(frame, end)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := pc.nc.Write(frame); err != nil {
		return nil, err
	}
	resp, err := wire.ReadFrame(pc.r, int32(min(end-start+64, 1<<30)))
	if err != nil {
		return nil, err
	}
	if len(resp) < 6 || int32(binary.BigEndian.Uint32(resp)) != pc.corr {
		return nil, errors.New("peer answered out of turn")
	}
	if code := binary.BigEndian.Uint16(resp[4:]); code != 0 {
		return nil, fmt.Errorf("peer: %s", resp[6:])
	}
	return resp[6:], nil
}

func (pc *peerConn) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.nc != nil {
		pc.nc.Close()
		pc.nc = nil
	}
}

// peerBlocksResponse is the block response: an error code, then the bytes
// (or the error's text). It implements just enough of kmsg.Response for
// the connection's writer.
type peerBlocksResponse struct {
	errorCode int16
	data      []byte
}

func (*peerBlocksResponse) Key() int16                { return peerBlocksKey }
func (*peerBlocksResponse) MaxVersion() int16         { return 0 }
func (*peerBlocksResponse) SetVersion(int16)          {}
func (*peerBlocksResponse) GetVersion() int16         { return 0 }
func (*peerBlocksResponse) IsFlexible() bool          { return false }
func (*peerBlocksResponse) RequestKind() kmsg.Request { return nil }
func (*peerBlocksResponse) ReadFrom([]byte) error     { return errors.New("not decodable") }
func (r *peerBlocksResponse) AppendTo(dst []byte) []byte {
	dst = kbin.AppendInt16(dst, r.errorCode)
	return append(dst, r.data...)
}
