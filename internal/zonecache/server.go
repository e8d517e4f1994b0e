package zonecache

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/wire"
)

// Server limits.
const (
	// handshakeTimeout bounds the handshake: a connection that has not
	// proved itself by then is closed.
	handshakeTimeout = 5 * time.Second
	// idleTimeout closes a connection with no request for that long;
	// askers drop their idle connections well before (maxIdleAge).
	idleTimeout = 2 * time.Minute
	// maxConns bounds the connections a server keeps open at once,
	// authenticated or not, other than notice connections; more are
	// closed on accept.
	maxConns = 256
	// sizeCacheEntries bounds the object sizes a server remembers.
	sizeCacheEntries = 16384
	// DefaultMaxRunBytes bounds the bytes one request may ask for.
	DefaultMaxRunBytes = 16 << 20
)

// maxNoticeConns bounds the notice connections (one from every other
// agent), counted apart so that a large cluster's notices never take the
// place of block requests; more are closed after the handshake, and their
// senders send notices through the store instead. A variable for tests.
var maxNoticeConns = 1024

// ObjectSizer is what a server needs from the metadata store: the true
// size of an object (metastore.ObjectLedger.ObjectSize).
type ObjectSizer interface {
	ObjectSize(ctx context.Context, key string) (size int64, known bool, err error)
}

// RangeReader is the block cache a server serves from
// (cache.Blocks.ReadRange).
type RangeReader interface {
	ReadRange(ctx context.Context, key string, objectSize, offset, length int64) ([]byte, error)
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Secret is the cluster secret askers must prove they know.
	Secret []byte
	// TLS, if set, wraps every connection (mTLS when it requires client
	// certificates).
	TLS *tls.Config
	// Sizes checks the object sizes askers claim.
	Sizes ObjectSizer
	// Blocks serves the bytes.
	Blocks RangeReader
	// MaxRunBytes bounds one request (default DefaultMaxRunBytes).
	MaxRunBytes int64
	// Timeout bounds serving one request (default 30s).
	Timeout time.Duration
	// Notices serves a connection that carries other agents' commit
	// notices (peernotice.Receiver.Serve) once it passed the handshake;
	// it returns when the connection fails or ctx ends. nil turns such
	// connections away.
	Notices    func(ctx context.Context, r io.Reader, nc net.Conn)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Server serves other agents' block requests on the peer listener.
type Server struct {
	opts    ServerOptions
	ln      net.Listener
	log     *slog.Logger
	metrics serverMetrics
	ctx     context.Context
	cancel  context.CancelFunc
	lastLog atomic.Int64 // unix nanos of the last rejection logged

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// noticeConns counts the notice connections among conns.
	noticeConns int
	closed      bool
	sizes       map[string]int64 // known object sizes (objects never change)
	wg          sync.WaitGroup
}

type serverMetrics struct {
	rejected *prometheus.CounterVec
	served   prometheus.Counter
}

// Serve serves the peer listener ln until Close. It takes ln even when it
// fails.
func Serve(ln net.Listener, opts ServerOptions) (*Server, error) {
	if len(opts.Secret) == 0 {
		ln.Close()
		return nil, errors.New("peer listener: no cluster secret")
	}
	if opts.Sizes == nil || opts.Blocks == nil {
		ln.Close()
		return nil, errors.New("peer listener: Sizes and Blocks are required")
	}
	if opts.MaxRunBytes <= 0 {
		opts.MaxRunBytes = DefaultMaxRunBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, ln: ln, log: opts.Logger, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, sizes: map[string]int64{},
		metrics: serverMetrics{
			rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "floe_peer_rejected_total",
				Help: "Peer-listener connections and requests turned away, by reason: auth (failed the handshake), limit (too many connections), malformed (a frame breaking the protocol, which closes the connection), invalid (a request for an unknown object, a wrong size or too long a range, answered with an error).",
			}, []string{"reason"}),
			served: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "floe_peer_served_total",
				Help: "Block runs served to other agents of the zone.",
			}),
		},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.metrics.rejected, s.metrics.served)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection and waits for their
// goroutines. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("peer accept failed", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed || len(s.conns)-s.noticeConns >= maxConns {
			s.mu.Unlock()
			nc.Close()
			s.reject("limit", "too many peer connections", nc.RemoteAddr())
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(nc)
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
			nc.Close()
		}()
	}
}

// reject counts a rejection and logs it, at most once a second.
func (s *Server) reject(reason, what string, remote net.Addr, args ...any) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("peer listener: "+what, append([]any{"remote", remote.String(), "reason", reason}, args...)...)
}

func (s *Server) serveConn(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	var rw io.ReadWriter = nc
	if s.opts.TLS != nil {
		tc := tls.Server(nc, s.opts.TLS)
		if err := tc.HandshakeContext(s.ctx); err != nil {
			s.reject("auth", "TLS handshake failed", nc.RemoteAddr(), "err", err)
			return
		}
		rw = tc
	}
	notices, err := handshakeServer(rw, s.opts.Secret)
	if err != nil {
		s.reject("auth", "handshake failed", nc.RemoteAddr(), "err", err)
		return
	}
	if notices {
		if s.opts.Notices == nil {
			s.reject("auth", "a notice connection, and this agent takes none", nc.RemoteAddr())
			return
		}
		s.mu.Lock()
		full := s.noticeConns >= maxNoticeConns
		if !full {
			s.noticeConns++
		}
		s.mu.Unlock()
		if full {
			s.reject("limit", "too many notice connections", nc.RemoteAddr())
			return
		}
		defer func() {
			s.mu.Lock()
			s.noticeConns--
			s.mu.Unlock()
		}()
		if _, err := rw.Write([]byte{noticesReady}); err != nil {
			return
		}
		nc.SetDeadline(time.Time{})
		s.opts.Notices(s.ctx, rw, nc)
		return
	}
	br := bufio.NewReaderSize(rw, maxRequestFrame+4)
	var out []byte
	for {
		nc.SetDeadline(time.Now().Add(idleTimeout))
		frame, err := wire.ReadFrame(br, maxRequestFrame)
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) {
				s.reject("malformed", "request frame too large", nc.RemoteAddr(), "err", err)
			}
			return
		}
		req, err := DecodeRequest(frame)
		if err != nil {
			s.reject("malformed", "malformed request", nc.RemoteAddr(), "err", err)
			return
		}
		nc.SetDeadline(time.Now().Add(s.opts.Timeout + 5*time.Second))
		resp := s.serve(req, nc.RemoteAddr())
		out = resp.AppendTo(out[:0])
		if _, err := rw.Write(out); err != nil {
			return
		}
		if cap(out) > 1<<20 {
			out = nil // do not pin a large run's buffer while idle
		}
	}
}

// serve answers one well-formed request: the claimed object size is
// checked against the metadata store before anything is read or cached,
// since the cache clamps an object's last block to the size it is given.
func (s *Server) serve(req Request, remote net.Addr) Response {
	resp := Response{Correlation: req.Correlation}
	if n := req.End - req.Start; n > s.opts.MaxRunBytes {
		s.reject("invalid", "request too long", remote, "bytes", n, "limit", s.opts.MaxRunBytes)
		resp.Err = fmt.Sprintf("request for %d bytes, limit %d", n, s.opts.MaxRunBytes)
		return resp
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	size, err := s.objectSize(ctx, req.Key)
	switch {
	case err != nil:
		resp.Err = err.Error()
		return resp
	case size < 0:
		s.reject("invalid", "request for an unknown object", remote, "object", req.Key)
		resp.Err = "unknown object " + req.Key
		return resp
	case size != req.ObjectSize:
		s.reject("invalid", "request with a wrong object size", remote, "object", req.Key, "claimed", req.ObjectSize, "size", size)
		resp.Err = fmt.Sprintf("object %s has %d bytes, not %d", req.Key, size, req.ObjectSize)
		return resp
	}
	data, err := s.opts.Blocks.ReadRange(context.WithValue(ctx, servingPeerKey{}, true), req.Key, size, req.Start, req.End-req.Start)
	if err != nil {
		resp.Err = err.Error()
		return resp
	}
	s.metrics.served.Inc()
	resp.Data = data
	return resp
}

// objectSize returns the size of key from the metadata store, or -1 if
// the store does not know it. Known sizes are remembered: objects never
// change.
func (s *Server) objectSize(ctx context.Context, key string) (int64, error) {
	s.mu.Lock()
	size, ok := s.sizes[key]
	s.mu.Unlock()
	if ok {
		return size, nil
	}
	size, known, err := s.opts.Sizes.ObjectSize(ctx, key)
	if err != nil {
		return 0, err
	}
	if !known {
		return -1, nil
	}
	s.mu.Lock()
	if len(s.sizes) >= sizeCacheEntries {
		clear(s.sizes)
	}
	s.sizes[key] = size
	s.mu.Unlock()
	return size, nil
}

// servingPeerKey marks the context of a read made for a peer: its misses
// go to the bucket, never to another peer.
type servingPeerKey struct{}

func servingPeer(ctx context.Context) bool { return ctx.Value(servingPeerKey{}) != nil }
