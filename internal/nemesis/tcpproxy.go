package nemesis

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPProxy forwards loopback TCP connections to one upstream and can cut
// them as a network partition does: while cut, nothing passes in either
// direction (data, the close of either end), on the connections open and
// on new ones, which are accepted but not yet dialled upstream. Healed,
// everything held passes, in order: as TCP delivers what it
// retransmitted once a partition shorter than its timeouts ends. An end
// that gave up meanwhile and closed its connection has its data and its
// close delivered then too, as the other end would receive them.
//
// floe torture puts one in front of PostgreSQL for each agent and one in
// front of the bucket for each agent, so that one agent's path can be
// cut while the others keep theirs.
type TCPProxy struct {
	// Addr is the proxy's listener (127.0.0.1:PORT).
	Addr   string
	target string
	ln     net.Listener

	mu     sync.Mutex
	cut    bool
	healed chan struct{} // closed when the current cut heals
	conns  map[net.Conn]struct{}
	closed chan struct{}

	// Accepted counts connections accepted; Held the chunks of data (and
	// closes) that waited for a heal.
	Accepted, Held atomic.Int64
}

// StartTCPProxy listens on a free loopback port and forwards to target
// (HOST:PORT).
func StartTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCPProxy{
		Addr: ln.Addr().String(), target: target, ln: ln,
		healed: make(chan struct{}), conns: map[net.Conn]struct{}{}, closed: make(chan struct{}),
	}
	close(p.healed)
	go p.accept()
	return p, nil
}

// Cut stops everything passing until Heal.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		p.cut, p.healed = true, make(chan struct{})
	}
}

// Heal lets everything held pass, and what follows.
func (p *TCPProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		p.cut = false
		close(p.healed)
	}
}

// IsCut reports whether the proxy is cut.
func (p *TCPProxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Close stops the listener and closes every connection.
func (p *TCPProxy) Close() error {
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return nil
	default:
	}
	close(p.closed)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	return p.ln.Close()
}

// pass waits while the proxy is cut; false if it closed meanwhile.
func (p *TCPProxy) pass() bool {
	p.mu.Lock()
	cut, healed := p.cut, p.healed
	p.mu.Unlock()
	if cut {
		p.Held.Add(1)
	}
	select {
	case <-healed:
		return true
	case <-p.closed:
		return false
	}
}

// track registers c, or closes it if the proxy is closed.
func (p *TCPProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *TCPProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
	p.mu.Unlock()
}

func (p *TCPProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		p.Accepted.Add(1)
		if !p.track(c) {
			return
		}
		go p.serve(c)
	}
}

func (p *TCPProxy) serve(client net.Conn) {
	// A connection made during a cut waits for the heal before the
	// proxy dials: the SYN that gets through once the network is back.
	if !p.pass() {
		p.untrack(client)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		// Nothing listens upstream (a database stopped): the client's
		// connection is refused, as it would be without the proxy.
		if tc, ok := client.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		p.untrack(client)
		return
	}
	if !p.track(up) {
		p.untrack(client)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.copy(up, client) })
	wg.Go(func() { p.copy(client, up) })
	wg.Wait()
	p.untrack(client, up)
}

// copy forwards src to dst, each chunk once the proxy is not cut, and
// src's end (a close or an error) the same way.
func (p *TCPProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if !p.pass() {
				return
			}
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			dst.Close()
			return
		}
	}
}

// DBPartition is the fault that cuts one agent (named name) off the
// database through its proxy p.
func DBPartition(p *TCPProxy, name string) Fault {
	return New("db-partition", name,
		func(context.Context) error { p.Cut(); return nil },
		func(context.Context) error { p.Heal(); return nil })
}

// BucketPartition is the fault that cuts one agent (named name) off the
// bucket through its proxy p.
func BucketPartition(p *TCPProxy, name string) Fault {
	return New("bucket-partition", name,
		func(context.Context) error { p.Cut(); return nil },
		func(context.Context) error { p.Heal(); return nil })
}
