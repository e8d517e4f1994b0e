package kproxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kproxy"
)

// TestCutAndHeal: Cut closes the connections to the upstream and leaves
// new ones unanswered; Heal closes those, and new connections reach the
// upstream again.
func TestCutAndHeal(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p, addr, err := kproxy.Start(up.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	upstreamGets := func(want bool) {
		t.Helper()
		select {
		case c := <-accepted:
			defer c.Close()
			if !want {
				t.Fatalf("a connection reached the upstream while cut")
			}
		case <-time.After(300 * time.Millisecond):
			if want {
				t.Fatalf("no connection reached the upstream")
			}
		}
	}
	before := dial()
	defer before.Close()
	upstreamGets(true)

	p.Cut(up.Addr().String())
	before.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := before.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("connection open before the cut: read %v, want EOF", err)
	}
	during := dial()
	defer during.Close()
	upstreamGets(false)
	during.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := during.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection made during the cut: read %v, want no answer", err)
	}

	p.Heal(up.Addr().String())
	during.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := during.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("connection held during the cut: read %v after the heal, want EOF", err)
	}
	after := dial()
	defer after.Close()
	upstreamGets(true)
}
