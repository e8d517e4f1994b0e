package remote

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// URLScheme is the scheme of a control plane's URL:
// floe://HOST:PORT[,HOST:PORT…]/VCLUSTER?key=KEY[&tls=true&ca=/path/ca.pem&server_name=NAME][&ping_timeout=D&ping_interval=D].
// With several addresses the client connects to the first that leads the
// vcluster, trying them in turn.
const URLScheme = "floe"

// HandshakeTimeout bounds the hello and its welcome.
const HandshakeTimeout = 10 * time.Second

// mutationTimeout bounds how long a mutating call waits for its answer
// once sent, whatever its context says: past it the connection is
// dropped, since its answer can no longer be trusted to arrive.
const mutationTimeout = 2 * time.Minute

// DefaultPingTimeout is how long a connection may stay silent (no frame
// from the server, pings unanswered) before the client declares it dead:
// the control plane's default lease TTL, after which another process
// may have taken the vcluster over.
const DefaultPingTimeout = 10 * time.Second

// minPingTimeout bounds how eagerly a URL may ask for pings.
const minPingTimeout = 100 * time.Millisecond

// ErrSilent reports a connection declared dead because the server sent
// nothing, not even an answer to a ping, for the ping timeout: a server
// process stopped or cut off by a network that drops packets. Calls in
// flight on it fail as on any lost connection.
var ErrSilent = errors.New("control plane connection silent")

// noticeQueue bounds the notices waiting for the watchers; beyond it they
// collapse into one "everything changed" notice.
const noticeQueue = 1024

// Options configure a Client.
type Options struct {
	// Addr is HOST:PORT of the control plane's listener, or several
	// separated by commas (the control processes sharing one journal).
	Addr     string
	VCluster string
	Key      string
	// TLS, when set, makes the connection TLS.
	TLS    *tls.Config
	Logger *slog.Logger
	// PingTimeout is how long a connection may go without a frame from
	// the server before it is declared dead (closed, its calls failed
	// as on a lost connection, the next address tried); it also bounds
	// the hello's welcome. 0 means DefaultPingTimeout, negative turns
	// the check off. Only servers whose welcome says they answer pings
	// are pinged; with older ones the check is off.
	PingTimeout time.Duration
	// PingInterval is how long a connection stays silent before the
	// client pings; 0 means a quarter of PingTimeout.
	PingInterval time.Duration
}

// pingTimes returns the ping interval and timeout o asks for; a zero
// timeout: no pings.
func (o Options) pingTimes() (interval, timeout time.Duration) {
	timeout = o.PingTimeout
	switch {
	case timeout < 0:
		return 0, 0
	case timeout == 0:
		timeout = DefaultPingTimeout
	}
	interval = o.PingInterval
	if interval <= 0 || interval > timeout/2 {
		interval = timeout / 4
	}
	return interval, timeout
}

// ParseURL reads a floe:// URL into Options.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Options{}, errors.New("control plane URL is not a URL")
	}
	if u.Scheme != URLScheme {
		return Options{}, fmt.Errorf("control plane URL: scheme %q, want %s", u.Scheme, URLScheme)
	}
	o := Options{Addr: u.Host, VCluster: strings.TrimPrefix(u.Path, "/")}
	q := u.Query()
	o.Key = q.Get("key")
	switch {
	case o.Addr == "" || o.VCluster == "" || strings.Contains(o.VCluster, "/"):
		return Options{}, fmt.Errorf("control plane URL: want %s://HOST:PORT/VCLUSTER?key=KEY", URLScheme)
	case o.Key == "":
		return Options{}, errors.New("control plane URL: no key (…?key=KEY)")
	}
	for name, d := range map[string]*time.Duration{"ping_timeout": &o.PingTimeout, "ping_interval": &o.PingInterval} {
		if !q.Has(name) {
			continue
		}
		v, err := time.ParseDuration(q.Get(name))
		switch {
		case err != nil:
			return Options{}, fmt.Errorf("control plane URL: %s: %w", name, err)
		case v == 0:
			if name == "ping_timeout" {
				v = -1 // off
			}
		case v < minPingTimeout/4 || (name == "ping_timeout" && v < minPingTimeout):
			return Options{}, fmt.Errorf("control plane URL: %s %v is too short (ping_timeout=0 turns pings off)", name, v)
		}
		*d = v
	}
	if q.Get("tls") == "true" || q.Has("ca") {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: q.Get("server_name")}
		if o.TLS.ServerName == "" && !strings.Contains(o.Addr, ",") {
			o.TLS.ServerName, _, _ = net.SplitHostPort(o.Addr)
		}
		if ca := q.Get("ca"); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return Options{}, fmt.Errorf("control plane URL: ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return Options{}, fmt.Errorf("control plane URL: no certificate in %s", ca)
			}
			o.TLS.RootCAs = pool
		}
	}
	return o, nil
}

// Client is a metastore.Store served by `floe control`. It keeps one
// connection, redialled on the next call after it is lost; watchers hear
// every notice the control plane pushes, and one "everything changed"
// notice after a reconnection (notices may have been missed meanwhile).
type Client struct {
	metastore.Watchers
	metastore.TopicWatchers

	opts   Options
	log    *slog.Logger
	closed atomic.Bool
	// groupsRefusedUntil: the control plane did not know CommitSegments;
	// until then (ns since the epoch) groups are not asked for.
	groupsRefusedUntil atomic.Int64
	done               chan struct{} // closed by Close

	mu      sync.Mutex
	next    int         // the address to try first: the last that worked
	silent  int         // 1 + the address of the last connection that went silent; 0: none
	conn    *clientConn // nil until dialled, and after it is lost
	dialled bool        // a connection existed before: notices may have been missed

	notices chan func() // notice deliveries, run by the dispatcher in order
	lost    atomic.Bool // the notice queue overflowed

	schedule atomic.Pointer[scheduleWatch] // WatchSchedule's, if any
}

var _ metastore.Store = (*Client)(nil)

// Open connects to a control plane and checks the vcluster and key.
func Open(ctx context.Context, opts Options) (*Client, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: opts, log: log, done: make(chan struct{}), notices: make(chan func(), noticeQueue)}
	if _, err := c.connection(ctx); err != nil {
		return nil, err
	}
	go c.dispatch()
	return c, nil
}

// OpenURL opens the client a floe:// URL names.
func OpenURL(ctx context.Context, raw string, log *slog.Logger) (*Client, error) {
	o, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	o.Logger = log
	return Open(ctx, o)
}

// Close drops the connection; later calls fail with metastore.ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	close(c.done)
	c.mu.Lock()
	cc := c.conn
	c.conn = nil
	c.mu.Unlock()
	if cc != nil {
		cc.fail(metastore.ErrClosed)
	}
	return nil
}

// dispatch runs notice deliveries on their own goroutine: a watcher may
// read from the store, whose answers the connection's reader delivers.
func (c *Client) dispatch() {
	for {
		select {
		case <-c.done:
			return
		case fn := <-c.notices:
			fn()
			if c.lost.Swap(false) {
				c.Notify(metastore.CommitNotice{})
				c.NotifyTopics(metastore.TopicNotice{})
			}
		}
	}
}

// queueNotice hands fn to the dispatcher, or records that a notice was
// lost when its queue is full.
func (c *Client) queueNotice(fn func()) {
	select {
	case c.notices <- fn:
	default:
		c.lost.Store(true)
		select { // make sure the dispatcher wakes up to announce the loss
		case c.notices <- func() {}:
		default:
		}
	}
}

// connection returns the live connection, dialling one if needed.
func (c *Client) connection(ctx context.Context) (*clientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, metastore.ErrClosed
	}
	if c.conn != nil && !c.conn.dead() {
		return c.conn, nil
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if c.dialled {
		// Notices may have been missed while there was no connection.
		c.queueNotice(func() {
			c.Notify(metastore.CommitNotice{})
			c.NotifyTopics(metastore.TopicNotice{})
		})
		c.log.Info("reconnected to the control plane", "addr", c.opts.Addr, "vcluster", c.opts.VCluster)
	}
	c.dialled = true
	c.conn = cc
	return cc, nil
}

// maxAddrs bounds the addresses a client tries.
const maxAddrs = 16

// dial connects to the first of the addresses, from the last that
// worked, that admits the session; c.mu is held.
func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	addrs := strings.Split(c.opts.Addr, ",")
	if len(addrs) > maxAddrs {
		return nil, fmt.Errorf("control plane: %d addresses, at most %d", len(addrs), maxAddrs)
	}
	start := c.next
	if c.silent == start+1 {
		// That one stopped answering: another may lead by now.
		start = (start + 1) % len(addrs)
	}
	c.silent = 0
	var errs []error
	for i := range addrs {
		k := (start + i) % len(addrs)
		cc, err := c.dialAddr(ctx, strings.TrimSpace(addrs[k]), k)
		if err == nil {
			c.next = k
			return cc, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (c *Client) dialAddr(ctx context.Context, addr string, index int) (*clientConn, error) {
	interval, timeout := c.opts.pingTimes()
	// A server that does not welcome within the ping timeout is as
	// silent as one that stops answering pings (a stopped process still
	// accepts connections: its kernel does).
	handshake := HandshakeTimeout
	if timeout > 0 {
		handshake = min(handshake, timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, handshake)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control plane %s: %w", addr, err)
	}
	if c.opts.TLS != nil {
		conf := c.opts.TLS
		if conf.ServerName == "" {
			conf = conf.Clone()
			conf.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("control plane %s: TLS: %w", addr, err)
		}
		nc = tc
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	hello, _ := Marshal(Hello{V: Version, VCluster: c.opts.VCluster, Key: c.opts.Key})
	r := bufio.NewReaderSize(nc, 64<<10)
	b, _ := AppendFrame(nil, Frame{Kind: KindHello, Payload: hello})
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, fmt.Errorf("control plane %s: hello: %w", addr, err)
	}
	f, err := ReadFrame(r)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("control plane %s: welcome: %w", addr, err)
	}
	var w Welcome
	if f.Kind != KindWelcome || Unmarshal(f.Payload, &w) != nil {
		nc.Close()
		return nil, fmt.Errorf("control plane %s: malformed welcome", addr)
	}
	if w.NotLeader {
		nc.Close()
		return nil, fmt.Errorf("control plane %s: %w: %s", addr, ErrNotLeader, w.Err)
	}
	if w.Err != "" {
		nc.Close()
		return nil, fmt.Errorf("control plane %s, vcluster %s: %s", addr, c.opts.VCluster, w.Err)
	}
	nc.SetDeadline(time.Time{})
	cc := &clientConn{c: c, addr: addr, index: index, nc: nc, r: r, w: bufio.NewWriterSize(nc, 64<<10),
		pending: map[uint64]chan Response{}, gone: make(chan struct{}), born: time.Now()}
	cc.heard.Store(int64(time.Since(cc.born)))
	go cc.read()
	if w.Ping && timeout > 0 {
		go cc.watch(interval, timeout)
	}
	return cc, nil
}

// clientConn is one connection and its calls in flight.
type clientConn struct {
	c     *Client
	addr  string
	index int // of addr in the client's addresses
	nc    net.Conn
	r     *bufio.Reader

	born    time.Time    // when it was dialled: the origin of heard
	heard   atomic.Int64 // when its last frame arrived, in ns since born (monotonic)
	pinging atomic.Bool  // a ping is being written
	pings   atomic.Uint64

	wmu sync.Mutex
	w   *bufio.Writer
	// senders counts the requests writing or waiting for wmu: a sender
	// that leaves others behind it leaves the flush to the last of
	// them, so that requests sent together share a write.
	senders atomic.Int32
	// woken counts the callers answered since their last send, about:
	// callers woken together yield to each other before flushing
	// (send).
	woken atomic.Int32

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan Response
	err     error         // why the connection ended
	gone    chan struct{} // closed when it ends
}

func (cc *clientConn) dead() bool {
	select {
	case <-cc.gone:
		return true
	default:
		return false
	}
}

// fail ends the connection with err, once.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	close(cc.gone)
	cc.mu.Unlock()
	cc.nc.Close()
}

func (cc *clientConn) read() {
	for {
		f, err := ReadFrame(cc.r)
		cc.heard.Store(int64(time.Since(cc.born)))
		if err != nil {
			if !cc.c.closed.Load() {
				cc.c.log.Warn("connection to the control plane lost", "addr", cc.c.opts.Addr, "err", err)
			}
			cc.fail(fmt.Errorf("control plane %s: %w: %w", cc.c.opts.Addr, errConnLost, err))
			return
		}
		switch f.Kind {
		case KindResponse:
			var resp Response
			if err := Unmarshal(f.Payload, &resp); err != nil {
				cc.fail(fmt.Errorf("control plane %s: malformed response: %w", cc.c.opts.Addr, err))
				return
			}
			cc.mu.Lock()
			ch := cc.pending[f.ID]
			delete(cc.pending, f.ID)
			cc.mu.Unlock()
			if ch != nil {
				cc.woken.Add(1)
				ch <- resp // buffered
			}
		case KindCommitNotice:
			var n metastore.CommitNotice
			if err := Unmarshal(f.Payload, &n); err != nil {
				cc.fail(fmt.Errorf("control plane %s: malformed notice: %w", cc.c.opts.Addr, err))
				return
			}
			cc.c.queueNotice(func() { cc.c.Notify(n) })
		case KindTopicNotice:
			var n metastore.TopicNotice
			if err := Unmarshal(f.Payload, &n); err != nil {
				cc.fail(fmt.Errorf("control plane %s: malformed notice: %w", cc.c.opts.Addr, err))
				return
			}
			cc.c.queueNotice(func() { cc.c.NotifyTopics(n) })
		case KindSchedule:
			var s metastore.Schedule
			if err := Unmarshal(f.Payload, &s); err != nil {
				cc.fail(fmt.Errorf("control plane %s: malformed schedule: %w", cc.c.opts.Addr, err))
				return
			}
			cc.c.offerSchedule(s)
		case KindPong:
			// Hearing it was the point (heard, above).
		default:
			cc.fail(fmt.Errorf("control plane %s: unexpected frame kind %d", cc.c.opts.Addr, f.Kind))
			return
		}
	}
}

// watch checks the connection's liveness until it ends: silent for
// interval, it pings the server; silent for timeout, it declares the
// connection dead, which fails its calls in flight as the connection's
// loss does (a mutation sent on it has an unknown outcome, as when the
// connection breaks) and makes the next dial start at another address.
func (cc *clientConn) watch(interval, timeout time.Duration) {
	period := max(interval/2, 5*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-cc.gone:
			return
		case <-t.C:
		}
		now := time.Now()
		// Woken late, this process was not running (starved of CPU,
		// stopped): frames that arrived meanwhile may not be read yet,
		// so no verdict this time.
		late := now.Sub(last) > 2*period+100*time.Millisecond
		last = now
		quiet := time.Duration(int64(now.Sub(cc.born)) - cc.heard.Load())
		if quiet >= timeout && !late {
			err := fmt.Errorf("control plane %s: %w: %w: nothing received for %v (ping timeout %v)",
				cc.addr, errConnLost, ErrSilent, quiet.Round(time.Millisecond), timeout)
			if !cc.c.closed.Load() {
				cc.c.log.Warn("control plane connection silent; closing it", "addr", cc.addr, "quiet", quiet.Round(time.Millisecond), "ping_timeout", timeout)
			}
			cc.c.mu.Lock()
			if cc.c.conn == cc {
				cc.c.silent = cc.index + 1
			}
			cc.c.mu.Unlock()
			cc.fail(err)
			return
		}
		if quiet >= interval && !cc.pinging.Swap(true) {
			// Written on its own goroutine: a write blocked on a full
			// socket (the server not reading) must not stop the verdict.
			go func() {
				defer cc.pinging.Store(false)
				cc.ping()
			}()
		}
	}
}

// ping writes one ping frame.
func (cc *clientConn) ping() {
	b, _ := AppendFrame(nil, Frame{Kind: KindPing, ID: cc.pings.Add(1)})
	cc.wmu.Lock()
	_, err := cc.w.Write(b)
	if err == nil {
		err = cc.w.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(fmt.Errorf("control plane %s: send: %w", cc.addr, err))
	}
}

// send writes a request and returns the channel its response comes on.
// The frame's header, the envelope's head and the arguments go straight
// into the connection's buffer, without being gathered first.
func (cc *clientConn) send(o *Op, args []byte) (uint64, chan Response, error) {
	if len(args) == 0 {
		args = null
	}
	var headBuf [frameHeaderLength + 4 + 64]byte
	head := appendRequestHead(headBuf[4+frameHeaderLength:4+frameHeaderLength], o.Name)
	n := frameHeaderLength + len(head) + len(args)
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%s: %w: %d bytes", o.Name, ErrFrameTooLarge, n)
	}
	ch := make(chan Response, 1)
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return 0, nil, cc.err
	}
	cc.nextID++
	id := cc.nextID
	cc.pending[id] = ch
	cc.mu.Unlock()

	hdr := binary.BigEndian.AppendUint32(headBuf[:0], uint32(n))
	hdr = append(hdr, KindRequest)
	hdr = binary.BigEndian.AppendUint64(hdr, id)
	cc.senders.Add(1)
	cc.wmu.Lock()
	_, err := cc.w.Write(hdr)
	if err == nil {
		_, err = cc.w.Write(head)
	}
	if err == nil {
		_, err = cc.w.Write(args)
	}
	cc.wmu.Unlock()
	// While callers woken by the same read of answers (one batch of the
	// server's) have yet to send, let them run first: they send
	// together, and the last of them flushes what all wrote, in one
	// write. A caller alone flushes at once (a failed write fails the
	// connection, and with it every request waiting for an answer).
	if cc.othersWoken() {
		runtime.Gosched()
	}
	if cc.senders.Add(-1) == 0 && err == nil {
		cc.wmu.Lock()
		err = cc.w.Flush()
		cc.wmu.Unlock()
	}
	if err != nil {
		cc.forget(id)
		cc.fail(fmt.Errorf("control plane %s: send: %w: %w", cc.c.opts.Addr, errConnLost, err))
		return 0, nil, cc.err
	}
	return id, ch, nil
}

// othersWoken takes this sender off the count of callers woken by
// answers that have not sent since, and reports whether others remain.
// A caller that does not call again leaves its count behind, which the
// next sends take off: a stale count costs a yield, not an answer.
func (cc *clientConn) othersWoken() bool {
	for {
		n := cc.woken.Load()
		if n <= 0 {
			return false
		}
		if cc.woken.CompareAndSwap(n, n-1) {
			return n > 1
		}
	}
}

func (cc *clientConn) forget(id uint64) {
	cc.mu.Lock()
	delete(cc.pending, id)
	cc.mu.Unlock()
}

// do runs one op and returns its encoded result.
func (c *Client) do(ctx context.Context, o *Op, args any) (RawMessage, error) {
	if c.closed.Load() {
		return nil, metastore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	cc, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	id, ch, err := cc.send(o, raw)
	if err != nil {
		return nil, c.closedOr(err)
	}
	var resp Response
	if o.Mutates {
		// Once sent, a mutation may be applied: wait for its answer, so
		// that an error means it was not.
		t := time.NewTimer(mutationTimeout)
		defer t.Stop()
		select {
		case resp = <-ch:
		case <-cc.gone:
			return nil, c.closedOr(cc.err)
		case <-t.C:
			cc.fail(fmt.Errorf("control plane %s: %w to %s within %v", c.opts.Addr, ErrNoAnswer, o.Name, mutationTimeout))
			return nil, cc.err
		}
	} else {
		select {
		case resp = <-ch:
		case <-cc.gone:
			return nil, c.closedOr(cc.err)
		case <-ctx.Done():
			cc.forget(id)
			return nil, ctx.Err()
		}
	}
	// Announce what this call changed before it returns (the watchers'
	// contract); the other sessions hear it as pushed notices.
	for _, n := range resp.Commits {
		c.Notify(n)
	}
	for _, n := range resp.Topics {
		c.NotifyTopics(n)
	}
	if resp.Err != nil {
		return nil, resp.Err.Err()
	}
	return resp.Result, nil
}

func (c *Client) closedOr(err error) error {
	if c.closed.Load() {
		return metastore.ErrClosed
	}
	return err
}

// call runs o with a and decodes its result.
func (o op[A, R]) call(ctx context.Context, c *Client, a A) (R, error) {
	var r R
	raw, err := c.do(ctx, o.Op, a)
	if err != nil {
		return r, err
	}
	if err := Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("%s: malformed result: %w", o.Name, err)
	}
	return r, nil
}
