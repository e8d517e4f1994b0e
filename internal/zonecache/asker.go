package zonecache

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Asker limits.
const (
	// maxIdlePerPeer bounds the idle connections kept to one peer.
	maxIdlePerPeer = 4
	// maxIdleAge drops an idle connection before the server would
	// (idleTimeout), so a request never goes out on a closed one.
	maxIdleAge = time.Minute
)

// asker sends block requests to peers over pooled, authenticated
// connections. No lock is held across network I/O: a connection is taken
// out of the pool, used by one request, and put back.
type asker struct {
	secret []byte
	tls    *tls.Config

	mu     sync.Mutex
	idle   map[string][]*peerConn // by address; most recently used last
	closed bool
}

type peerConn struct {
	nc   net.Conn
	rw   io.ReadWriter // nc, or its TLS wrapper
	br   *bufio.Reader
	corr uint32
	used time.Time
}

func newAsker(secret []byte, tlsConfig *tls.Config) *asker {
	return &asker{secret: secret, tls: tlsConfig, idle: map[string][]*peerConn{}}
}

// get asks addr for [req.Start, req.End) of req.Key and returns exactly
// those bytes, or an error (the caller then reads the bucket). ctx bounds
// the dial, the handshake and the exchange.
func (a *asker) get(ctx context.Context, addr string, req Request) ([]byte, error) {
	pc, err := a.take(ctx, addr)
	if err != nil {
		return nil, err
	}
	// Cancelling ctx interrupts a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(time.Unix(1, 0)) })
	if dl, ok := ctx.Deadline(); ok {
		pc.nc.SetDeadline(dl)
	} else {
		pc.nc.SetDeadline(time.Time{})
	}
	pc.corr++
	req.Correlation = pc.corr
	resp, err := pc.exchange(req)
	if !stop() {
		err = errors.Join(err, ctx.Err()) // the deadline was moved: the connection is unusable
	}
	if err != nil {
		pc.nc.Close()
		return nil, err
	}
	a.put(addr, pc)
	if resp.Err != "" {
		return nil, fmt.Errorf("peer %s: %s", addr, resp.Err)
	}
	return resp.Data, nil
}

func (pc *peerConn) exchange(req Request) (Response, error) {
	if _, err := pc.rw.Write(req.AppendTo(nil)); err != nil {
		return Response{}, err
	}
	return readResponse(pc.br, req)
}

// take returns an idle connection to addr, or dials and authenticates a
// new one.
func (a *asker) take(ctx context.Context, addr string) (*peerConn, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, errors.New("peer client closed")
	}
	var stale []*peerConn
	var pc *peerConn
	for conns := a.idle[addr]; len(conns) > 0; conns = a.idle[addr] {
		last := conns[len(conns)-1]
		a.idle[addr] = conns[:len(conns)-1]
		if time.Since(last.used) < maxIdleAge {
			pc = last
			break
		}
		stale = append(stale, last)
	}
	a.mu.Unlock()
	for _, s := range stale {
		s.nc.Close()
	}
	if pc != nil {
		return pc, nil
	}
	return a.dial(ctx, addr)
}

func (a *asker) dial(ctx context.Context, addr string) (*peerConn, error) {
	nc, rw, err := dialPeer(ctx, addr, a.tls, func(rw io.ReadWriter) error { return Handshake(rw, a.secret) })
	if err != nil {
		return nil, err
	}
	return &peerConn{nc: nc, rw: rw, br: bufio.NewReaderSize(rw, 64<<10)}, nil
}

// DialNotices opens a connection to addr's peer listener that carries
// commit notices (internal/peernotice): TLS when tlsConfig is set, then
// HandshakeNotices, within ctx and handshakeTimeout. The connection it
// returns (TLS-wrapped or not) has no deadline.
func DialNotices(ctx context.Context, addr string, secret []byte, tlsConfig *tls.Config) (net.Conn, error) {
	nc, rw, err := dialPeer(ctx, addr, tlsConfig, func(rw io.ReadWriter) error { return HandshakeNotices(rw, secret) })
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // the deadline may have been moved to stop the handshake
		nc.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	conn, _ := rw.(net.Conn)
	return conn, nil
}

// dialPeer connects to addr, wraps the connection in TLS when tlsConfig
// is set and runs handshake on it, within ctx and handshakeTimeout. It
// returns the TCP connection (for deadlines) and what to read and write:
// the TLS connection or the TCP one.
func dialPeer(ctx context.Context, addr string, tlsConfig *tls.Config, handshake func(io.ReadWriter) error) (net.Conn, io.ReadWriter, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	var rw io.ReadWriter = nc
	if tlsConfig != nil {
		tc := tls.Client(nc, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("peer %s: TLS: %w", addr, err)
		}
		rw = tc
	}
	if err := handshake(rw); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("peer %s: handshake: %w", addr, err)
	}
	return nc, rw, nil
}

func (a *asker) put(addr string, pc *peerConn) {
	pc.used = time.Now()
	a.mu.Lock()
	if a.closed || len(a.idle[addr]) >= maxIdlePerPeer {
		a.mu.Unlock()
		pc.nc.Close()
		return
	}
	a.idle[addr] = append(a.idle[addr], pc)
	a.mu.Unlock()
}

// close closes the idle connections; connections in use close when their
// request ends.
func (a *asker) close() {
	a.mu.Lock()
	a.closed = true
	idle := a.idle
	a.idle = map[string][]*peerConn{}
	a.mu.Unlock()
	for _, conns := range idle {
		for _, pc := range conns {
			pc.nc.Close()
		}
	}
}
