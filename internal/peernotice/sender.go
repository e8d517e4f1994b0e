package peernotice

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/zonecache"
)

// Sender limits.
const (
	// maxPending bounds the partitions gathered for one peer between two
	// writes; more than half of it, once repeats are dropped, become
	// "everything".
	maxPending = 100_000
	// dialTimeout bounds connecting to a peer, TLS and handshake included.
	dialTimeout = 5 * time.Second
	// writeTimeout bounds one write of gathered notices.
	writeTimeout = 5 * time.Second
	// retryMin and retryMax bound the wait before redialling a peer.
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
	// drainTimeout bounds how long Close lets the peers write what they
	// have gathered.
	drainTimeout = time.Second
)

// maxIdle closes a connection unused that long, well before the
// receiver's idleTimeout, so a notice is never written into a connection
// the receiver already dropped. A variable for tests.
var maxIdle = time.Minute

// Options configure a Sender.
type Options struct {
	// Secret is the cluster secret of the peer handshake.
	Secret []byte
	// TLS, if set, wraps every connection (the peer client TLS).
	TLS        *tls.Config
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Sender relays this agent's commit notices to the other live agents: one
// connection per peer, written by one goroutine per peer, which sends in
// one write whatever gathered while the previous write was under way.
type Sender struct {
	opts    Options
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	metrics senderMetrics

	// draining is closed by Close: the peers write what they gathered,
	// then stop.
	draining chan struct{}

	mu      sync.Mutex
	peers   map[string]*peer // by peer address
	missing int              // live agents without a peer address
	known   bool             // SetPeers was called: until then nobody is known to be reached
	closed  bool
	wg      sync.WaitGroup
}

type senderMetrics struct {
	frames    prometheus.Counter
	peers     prometheus.Gauge
	connected prometheus.Gauge
	failures  prometheus.Counter
}

// NewSender returns a Sender with no peers (SetPeers names them).
func NewSender(opts Options) *Sender {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, peers: map[string]*peer{}, draining: make(chan struct{}),
		metrics: senderMetrics{
			frames: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "floe_peer_notice_frames_sent_total",
				Help: "Commit-notice frames this agent wrote to other agents.",
			}),
			peers: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "floe_peer_notice_peers",
				Help: "Other live agents this agent's commit notices should reach (those without a peer address included).",
			}),
			connected: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "floe_peer_notice_peers_connected",
				Help: "Other agents this agent has a working notice connection to.",
			}),
			failures: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "floe_peer_notice_failures_total",
				Help: "Notice connections that failed to open or to write (the notices are written again on the next connection, and the store's poll covers them meanwhile).",
			}),
		},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.metrics.frames, s.metrics.peers, s.metrics.connected, s.metrics.failures)
	}
	return s
}

// SetPeers sets the agents notices go to: the other live agents. Those
// without a peer address cannot be reached, so Send then reports false.
func (s *Sender) SetPeers(agents []metastore.AgentInfo) {
	want := map[string]bool{}
	missing := 0
	for _, a := range agents {
		if a.PeerAddr == "" {
			missing++
			continue
		}
		want[a.PeerAddr] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.missing, s.known = missing, true
	s.metrics.peers.Set(float64(len(want) + missing))
	for addr, p := range s.peers {
		if !want[addr] {
			p.stop()
			delete(s.peers, addr)
		}
	}
	for addr := range want {
		if s.peers[addr] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		p := &peer{s: s, addr: addr, stop: cancel, wake: make(chan struct{}, 1)}
		s.peers[addr] = p
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.run(ctx)
		}()
		p.poke() // connect now, so the first notice finds the connection open
	}
}

// Send queues n for every peer and reports whether every other live agent
// has a working connection, i.e. whether n reaches them all unless a
// connection fails from now on. When it reports false, the caller sends n
// through the store as well. An empty notice is not sent.
func (s *Sender) Send(n metastore.CommitNotice) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	all := s.known && s.missing == 0
	for _, p := range s.peers {
		if !p.add(n) {
			all = false
		}
	}
	return all
}

// Connected reports how many peers have a working connection, and of how
// many live agents.
func (s *Sender) Connected() (connected, of int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		p.mu.Lock()
		if p.connected {
			connected++
		}
		p.mu.Unlock()
	}
	return connected, len(s.peers) + s.missing
}

// Close lets every peer write what it has gathered on the connection it
// has (for at most drainTimeout), then stops them all.
func (s *Sender) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.draining)
	}
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	s.cancel()
	s.wg.Wait()
}

// peer is the notices waiting for one agent, and the goroutine writing
// them.
type peer struct {
	s    *Sender
	addr string
	stop context.CancelFunc
	wake chan struct{} // capacity 1

	mu sync.Mutex
	// pending is the partitions gathered since the last write, in
	// arrival order and possibly repeated (take sorts them and drops the
	// repeats: appending is far cheaper than a set); spare is the
	// buffer the last write gave back (recycle).
	pending, spare []metastore.TopicPartition
	merged         bool // pending holds more than one notice: it may repeat partitions
	everything     bool
	// connected: the last connection attempt succeeded and no write on
	// it failed since.
	connected bool
	warned    bool // a failure was logged at warning level
}

func (p *peer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// add queues n and reports whether the peer is connected.
func (p *peer) add(n metastore.CommitNotice) bool {
	p.mu.Lock()
	switch {
	case p.everything:
	case n.Partitions == nil:
		p.gatherEverything()
	default:
		p.merged = p.merged || len(p.pending) > 0
		p.pending = append(p.pending, n.Partitions...)
		if len(p.pending) > maxPending {
			// Past half the bound once distinct, everything: so the
			// next sort is at least maxPending/2 appends away.
			p.merged = false
			if p.pending = distinct(p.pending); len(p.pending) > maxPending/2 {
				p.gatherEverything()
			}
		}
	}
	connected := p.connected
	p.mu.Unlock()
	p.poke()
	return connected
}

// gatherEverything replaces what is pending with "everything". p.mu is
// held.
func (p *peer) gatherEverything() {
	p.everything, p.merged = true, false
	p.pending = p.pending[:0]
}

// take empties the queue: the partitions gathered (the caller hands the
// slice back with recycle), or everything. merged reports partitions of
// several notices, which may repeat.
func (p *peer) take() (parts []metastore.TopicPartition, everything, merged bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.everything {
		p.everything = false
		return nil, true, false
	}
	parts, p.pending, p.spare = p.pending, p.spare[:0], nil
	merged, p.merged = p.merged, false
	return parts, false, merged
}

// takeDistinct is take with the repeats dropped, outside the lock Send
// takes.
func (p *peer) takeDistinct() (parts []metastore.TopicPartition, everything bool) {
	parts, everything, merged := p.take()
	if merged {
		parts = distinct(parts)
	}
	return parts, everything
}

// recycle gives back a slice take returned, for the next gathering.
func (p *peer) recycle(parts []metastore.TopicPartition) {
	if cap(parts) > 4*maxFramePartitions {
		return // do not keep a burst's buffer
	}
	p.mu.Lock()
	p.spare = parts[:0]
	p.mu.Unlock()
}

// distinct sorts parts and drops repeats, in place.
func distinct(parts []metastore.TopicPartition) []metastore.TopicPartition {
	if len(parts) < 2 {
		return parts
	}
	slices.SortFunc(parts, func(a, b metastore.TopicPartition) int {
		if c := bytes.Compare(a.TopicID[:], b.TopicID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	return slices.Compact(parts)
}

func (p *peer) setConnected(c bool) {
	p.mu.Lock()
	was := p.connected
	p.connected = c
	p.mu.Unlock()
	switch {
	case c && !was:
		p.s.metrics.connected.Inc()
	case !c && was:
		p.s.metrics.connected.Dec()
	}
}

// run writes the peer's notices until ctx ends.
func (p *peer) run(ctx context.Context) {
	var (
		conn  net.Conn
		buf   []byte
		retry = retryMin
		idle  = time.NewTimer(maxIdle)
		// open is conn for the goroutine that closes it when ctx ends,
		// so that stopping never waits for a write to a stuck peer.
		openMu sync.Mutex
		open   net.Conn
	)
	setConn := func(c net.Conn) {
		if conn != nil && c == nil {
			conn.Close()
		}
		conn = c
		openMu.Lock()
		open = c
		openMu.Unlock()
	}
	stopClosing := context.AfterFunc(ctx, func() {
		openMu.Lock()
		if open != nil {
			open.Close()
		}
		openMu.Unlock()
	})
	defer func() {
		stopClosing()
		idle.Stop()
		setConn(nil)
		p.setConnected(false)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.s.draining:
			if conn != nil {
				parts, everything := p.takeDistinct()
				if everything || len(parts) > 0 {
					conn.SetWriteDeadline(time.Now().Add(drainTimeout))
					conn.Write(appendFrames(buf[:0], parts, everything))
				}
			}
			return
		case <-idle.C:
			setConn(nil) // reopened by the next notice
			continue
		case <-p.wake:
		}
		if conn == nil {
			c, err := p.dial(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.fail("connecting failed", err, retry)
				if !p.sleep(ctx, retry) {
					return
				}
				retry = min(2*retry, retryMax)
				p.poke() // try again, whether or not notices wait
				continue
			}
			setConn(c)
			retry = retryMin
			idle.Reset(maxIdle) // the timer may have fired while there was no connection
			p.setConnected(true)
		}
		parts, everything := p.takeDistinct()
		if !everything && len(parts) == 0 {
			p.recycle(parts)
			continue
		}
		buf = appendFrames(buf[:0], parts, everything)
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(buf); err != nil {
			setConn(nil)
			// Written again on the next connection (the receiver may see
			// some twice: a notice only makes it re-read).
			if everything {
				p.add(metastore.CommitNotice{})
			} else {
				p.add(metastore.CommitNotice{Partitions: parts})
				p.recycle(parts)
			}
			if ctx.Err() != nil {
				return
			}
			p.fail("writing failed", err, retry)
			continue
		}
		p.s.metrics.frames.Add(float64(max(1, (len(parts)+maxFramePartitions-1)/maxFramePartitions)))
		p.recycle(parts)
		if cap(buf) > 1<<20 {
			buf = nil
		}
		idle.Reset(maxIdle)
	}
}

// fail records a failed connection: Send reports false until one works.
func (p *peer) fail(what string, err error, retry time.Duration) {
	p.mu.Lock()
	loud := p.connected || !p.warned // the first failure, and every lost connection
	p.warned = true
	p.mu.Unlock()
	p.setConnected(false)
	p.s.metrics.failures.Inc()
	if loud {
		p.s.log.Warn("notice connection to a peer "+what+"; notices go through the store until it works", "peer", p.addr, "err", err, "retry_in", retry)
	} else {
		p.s.log.Debug("notice connection to a peer "+what, "peer", p.addr, "err", err, "retry_in", retry)
	}
}

func (p *peer) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return zonecache.DialNotices(ctx, p.addr, p.s.opts.Secret, p.s.opts.TLS)
}

// sleep waits d before the next dial, and reports false if the sender
// stops meanwhile (with no connection there is nothing to drain).
func (p *peer) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-p.s.draining:
		return false
	case <-t.C:
		return true
	}
}
