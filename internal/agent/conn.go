package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/wire"
)

// maxInflight bounds the requests one connection may have in flight; the
// reader stops reading past it, which pushes back on the client.
const maxInflight = 128

// conn serves one client connection. A reader goroutine decodes requests
// and starts them in order (so produce batches are appended in the order
// they were sent); a writer goroutine finishes them and writes responses
// in the same order, so pipelined requests are answered in order while
// their work overlaps.
type conn struct {
	a      *Agent
	l      *kafkaListener
	id     uint64 // unique within the agent (wire.Request.Conn)
	nc     net.Conn
	remote string
	host   string // "/IP", as Kafka reports client hosts
	// principal is who the connection authenticated as (Kafka's
	// "User:NAME" form).
	principal string

	// mutedUntil (Unix nanoseconds) is when the reader may read the next
	// request of a client throttled for its quota (KIP-219).
	mutedUntil atomic.Int64
	stopped    chan struct{} // closed by stopReading
	stopOnce   sync.Once
	// sasl is the authentication state on SASL listeners, nil on others.
	sasl *saslSession
}

type inflight struct {
	hdr   wire.Header
	reply protocol.Reply
	start time.Time
	size  int           // request frame bytes
	work  time.Duration // the agent's time handling it (request_percentage quotas)
	// raw, when set, is a SASL token answered without Kafka framing
	// (after SaslHandshake v0): only its length precedes it.
	raw *[]byte
}

func newConn(a *Agent, l *kafkaListener, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	c := &conn{a: a, l: l, id: a.connIDs.Add(1), nc: nc, remote: remote, host: "/" + host, principal: wire.AnonymousPrincipal, stopped: make(chan struct{})}
	if l.sasl() {
		c.sasl = &saslSession{}
	}
	return c
}

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// handshake completes a TLS listener's handshake and takes the client
// certificate's principal on SSL listeners.
func (c *conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.a.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if c.l.Protocol == SSL {
		c.principal = tlsPrincipal(tc.ConnectionState(), c.a.cfg.PrincipalRules)
	}
	return nil
}

// stopReading ends the reader; the writer answers what is in flight and
// then closes the connection.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() { close(c.stopped) })
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseRead()
		return
	}
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	m := c.a.metrics
	m.connections.Inc()
	defer m.connections.Dec()
	if err := c.handshake(); err != nil {
		c.nc.Close()
		m.tlsFailures.Inc()
		c.a.log.Debug("TLS handshake failed", "remote", c.remote, "listener", c.l.Name, "err", err)
		return
	}
	queue := make(chan inflight, maxInflight)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write(queue)
	}()
	err := c.read(queue)
	close(queue)
	<-writerDone
	c.nc.Close()
	// Fetch sessions do not outlive their connection
	// (internal/fetchsession).
	c.a.fetchSessions.CloseConn(c.id)
	// Nor does the writer's knowledge of its produce window.
	c.a.writer.CloseConn(c.id)
	// Nor do share sessions: their members' records are released.
	if c.a.shares != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.a.shares.CloseConn(ctx, c.id)
		cancel()
	}
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.a.log.Debug("connection closed", "remote", c.remote)
	case errors.Is(err, errAuthentication):
		c.a.log.Info("closing connection after failed authentication", "remote", c.remote, "listener", c.l.Name, "err", err)
	case errors.Is(err, errUnauthenticated), errors.Is(err, errSessionExpired):
		c.a.log.Debug("closing connection", "remote", c.remote, "listener", c.l.Name, "err", err)
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, protocol.ErrUnsupported):
		m.rejected.Inc()
		c.a.log.Warn("closing connection after bad request", "remote", c.remote, "err", err)
	default:
		c.a.log.Debug("connection ended", "remote", c.remote, "err", err)
	}
}

func (c *conn) read(queue chan<- inflight) error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		c.waitUnmuted()
		limit := c.a.cfg.MaxFrameBytes
		if c.sasl != nil && !c.sasl.authenticated() {
			// Kafka's sasl.server.max.receive.size: whoever has not
			// authenticated sends small frames.
			limit = min(limit, maxUnauthenticatedFrame)
		}
		frame, err := wire.ReadFrame(br, limit)
		if err != nil {
			return err
		}
		start := time.Now()
		if c.sasl != nil && c.sasl.state == saslRawTokens {
			out, err := c.rawToken(frame)
			if err != nil {
				return err
			}
			queue <- inflight{raw: &out, start: start}
			continue
		}
		req, err := wire.ParseRequest(frame)
		if err != nil {
			return err
		}
		req.ClientHost = c.host
		req.Conn = c.id
		if c.sasl != nil {
			switch {
			case req.Key == saslHandshakeKey || req.Key == saslAuthenticateKey:
				resp, err := c.saslRequest(req)
				if resp != nil {
					delay := time.Duration(0)
					if err != nil {
						delay = failedAuthDelay
					}
					queue <- inflight{hdr: req.Header, reply: delayed(resp, delay), start: start}
				}
				if err != nil {
					return err
				}
				continue
			case !c.sasl.authenticated():
				if req.Key != wire.ApiVersionsKey {
					return fmt.Errorf("%w: %s before SASL authentication", errUnauthenticated, keyName(req.Key))
				}
			case c.sasl.expired(c.a.cfg.Clock()):
				return fmt.Errorf("%w: %s after the session expired without re-authentication", errSessionExpired, keyName(req.Key))
			}
		}
		req.Principal = c.principal
		c.capFetch(req)
		reply, err := c.l.handler.Handle(c.a.ctx, req)
		if err != nil {
			return err
		}
		queue <- inflight{hdr: req.Header, reply: reply, start: start, size: len(frame), work: time.Since(start)}
	}
}

func (c *conn) write(queue <-chan inflight) {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	bufs := c.l.handler.Buffers()
	broken := false
	for in := range queue {
		if in.raw != nil {
			if !broken {
				buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(*in.raw)))
				buf = append(buf, *in.raw...)
				if _, err := bw.Write(buf); err != nil || bw.Flush() != nil {
					broken = true
					c.nc.Close()
				}
			}
			continue
		}
		// A reply that may wait (a produce for its segment's commit, a
		// fetch for data) must not hold back the answers already
		// written to the buffer: the client's next requests wait on
		// them (an idempotent producer has at most 5 in flight).
		if waitsInPurgatory(in.hdr.Key) && bw.Buffered() > 0 && !broken {
			if err := bw.Flush(); err != nil {
				broken = true
				c.nc.Close()
			}
		}
		replyStart := time.Now()
		resp := in.reply(c.a.ctx)
		c.a.metrics.observe(in.hdr, time.Since(in.start))
		if !waitsInPurgatory(in.hdr.Key) {
			in.work += time.Since(replyStart)
		}
		if throttle := c.throttle(in, resp); throttle > 0 {
			if mutes(in.hdr) {
				c.mutedUntil.Store(time.Now().Add(throttle).UnixNano())
			} else {
				// Clients before KIP-219 do not wait by themselves: the
				// response is delayed instead.
				c.sleep(throttle)
			}
		}
		if resp == nil || broken {
			continue
		}
		encodeStart := time.Now()
		if n := wire.ResponseSizeBound(resp); n > cap(buf) {
			// A large fetch response: a recycled buffer, not a new one
			// that Go would zero first.
			bufs.Put(buf)
			buf = bufs.Get(n)
		}
		buf = wire.AppendResponse(buf[:0], in.hdr.CorrelationID, resp)
		// The records are in buf now: their buffers go back to the
		// reader for the next fetch.
		c.l.handler.ReleaseResponse(resp)
		c.recordWork(in, time.Since(encodeStart))
		c.a.metrics.frameBytes(in.hdr.Key, in.size, len(buf))
		if _, err := bw.Write(buf); err != nil {
			broken = true
			c.nc.Close() // unblocks the reader
			continue
		}
		if len(queue) == 0 {
			if err := bw.Flush(); err != nil {
				broken = true
				c.nc.Close()
			}
		}
		if cap(buf) > 1<<20 {
			// Do not pin a large fetch response's buffer to the
			// connection: give it back for any connection's next one.
			bufs.Put(buf)
			buf = nil
		}
	}
	if !broken {
		bw.Flush()
	}
}

// keyName names an API key for metric labels.
func keyName(key int16) string {
	if name := kmsg.NameForKey(key); name != "" {
		return name
	}
	return "Unknown"
}
