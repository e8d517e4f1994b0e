package agent

import (
	"bufio"
	"errors"
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
}

type inflight struct {
	hdr   wire.Header
	reply protocol.Reply
	start time.Time
	size  int // request frame bytes
}

func newConn(a *Agent, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return &conn{a: a, nc: nc, remote: remote, host: "/" + host, principal: wire.AnonymousPrincipal, stopped: make(chan struct{})}
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
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.a.log.Debug("connection closed", "remote", c.remote)
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
		frame, err := wire.ReadFrame(br, c.a.cfg.MaxFrameBytes)
		if err != nil {
			return err
		}
		start := time.Now()
		req, err := wire.ParseRequest(frame)
		if err != nil {
			return err
		}
		req.ClientHost = c.host
		req.Principal = c.principal
		c.capFetch(req)
		reply, err := c.a.handler.Handle(c.a.ctx, req)
		if err != nil {
			return err
		}
		queue <- inflight{hdr: req.Header, reply: reply, start: start, size: len(frame)}
	}
}

func (c *conn) write(queue <-chan inflight) {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	broken := false
	for in := range queue {
		resp := in.reply(c.a.ctx)
		c.a.metrics.observe(in.hdr.Key, time.Since(in.start))
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
		buf = wire.AppendResponse(buf[:0], in.hdr.CorrelationID, resp)
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
			buf = nil // do not pin a large fetch response's buffer
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
