package nemesis

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers each line with itself; closed records when a
// connection's client end closed.
func echoServer(t *testing.T) (addr string, closed <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				ch <- struct{}{}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func readLine(t *testing.T, r *bufio.Reader, c net.Conn, within time.Duration) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	defer c.SetReadDeadline(time.Time{})
	return r.ReadString('\n')
}

// TestTCPProxyCut: a cut holds data both ways and new connections; the
// heal delivers what was held, in order, and a close made during the
// cut arrives after it.
func TestTCPProxyCut(t *testing.T) {
	addr, serverSawClose := echoServer(t)
	p, err := StartTCPProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	a, ar := dial()
	io.WriteString(a, "one\n")
	if l, err := readLine(t, ar, a, 5*time.Second); err != nil || l != "one\n" {
		t.Fatalf("before the cut: %q, %v", l, err)
	}

	p.Cut()
	io.WriteString(a, "two\n")
	b, br := dial() // accepted, not forwarded
	io.WriteString(b, "three\n")
	c, _ := dial()
	io.WriteString(c, "four\n")
	c.Close() // gives up during the cut
	if l, err := readLine(t, ar, a, 300*time.Millisecond); err == nil {
		t.Fatalf("during the cut, the echo came through: %q", l)
	}
	select {
	case <-serverSawClose:
		t.Fatal("during the cut, the server saw a close")
	case <-time.After(100 * time.Millisecond):
	}

	p.Heal()
	if l, err := readLine(t, ar, a, 5*time.Second); err != nil || l != "two\n" {
		t.Errorf("after the heal, the open connection: %q, %v", l, err)
	}
	if l, err := readLine(t, br, b, 5*time.Second); err != nil || l != "three\n" {
		t.Errorf("after the heal, the connection made during the cut: %q, %v", l, err)
	}
	select {
	case <-serverSawClose:
	case <-time.After(5 * time.Second):
		t.Error("after the heal, the close made during the cut did not arrive")
	}
	if p.Held.Load() == 0 {
		t.Error("Held counted nothing")
	}
}

// TestTCPProxyUpstreamDown: with nothing listening upstream, a
// connection through the proxy ends at once.
func TestTCPProxyUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := StartTCPProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		return // reset before the dial returned: ended at once too
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read through a proxy to nothing returned data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection stayed open with nothing upstream")
	}
}

// TestTCPProxyCutsOnePath: two agents' paths to one server; cutting one
// leaves the other's open.
func TestTCPProxyCutsOnePath(t *testing.T) {
	addr, _ := echoServer(t)
	var paths []*TCPProxy
	for range 2 {
		p, err := StartTCPProxy(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		paths = append(paths, p)
	}
	paths[0].Cut()
	for i, p := range paths {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "ping\n")
		cut := i == 0
		within := 5 * time.Second
		if cut {
			within = 300 * time.Millisecond
		}
		l, err := readLine(t, bufio.NewReader(c), c, within)
		if cut != (err != nil) {
			t.Errorf("path %d (cut %v): %q, %v", i, cut, l, err)
		}
	}
}
