package zonecache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sizes is an ObjectSizer over a map.
type sizes map[string]int64

func (s sizes) ObjectSize(_ context.Context, key string) (int64, bool, error) {
	n, ok := s[key]
	return n, ok, nil
}

// objects is a RangeReader over in-memory objects that records every
// read it is asked for.
type objects struct {
	data  map[string][]byte
	mu    sync.Mutex
	reads []Request
}

func (o *objects) ReadRange(_ context.Context, key string, objectSize, offset, length int64) ([]byte, error) {
	o.mu.Lock()
	o.reads = append(o.reads, Request{Key: key, ObjectSize: objectSize, Start: offset, End: offset + length})
	o.mu.Unlock()
	return bytes.Clone(o.data[key][offset : offset+length]), nil
}

func (o *objects) takeReads() []Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.reads
	o.reads = nil
	return r
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

type fixture struct {
	srv     *Server
	objects *objects
	reg     *prometheus.Registry
}

func startServer(t *testing.T, maxRun int64) *fixture {
	t.Helper()
	obj := make([]byte, 10000)
	for i := range obj {
		obj[i] = byte(i * 7)
	}
	f := &fixture{objects: &objects{data: map[string][]byte{"segments/a": obj}}, reg: prometheus.NewRegistry()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = Serve(ln, ServerOptions{
		Secret: testSecret, Sizes: sizes{"segments/a": 10000}, Blocks: f.objects,
		MaxRunBytes: maxRun, Registerer: f.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fixture) rejected(reason string) float64 {
	return counterValue(f.srv.metrics.rejected.WithLabelValues(reason))
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// closedByServer reports whether the server closed nc (it reads EOF or a
// reset within a few seconds).
func closedByServer(t *testing.T, nc net.Conn) bool {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(nc)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestServeAuthenticated(t *testing.T) {
	f := startServer(t, 0)
	a := newAsker(testSecret, nil)
	defer a.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 { // the second and third reuse the pooled connection
		got, err := a.get(ctx, f.srv.Addr().String(), Request{Key: "segments/a", ObjectSize: 10000, Start: 100, End: 4200})
		if err != nil || !bytes.Equal(got, f.objects.data["segments/a"][100:4200]) {
			t.Fatalf("get: %d bytes, %v", len(got), err)
		}
	}
	if n := counterValue(f.srv.metrics.served); n != 3 {
		t.Fatalf("served %v, want 3", n)
	}
}

// Requests that name what the metadata store does not say are answered
// with an error, before the cache is asked for anything: in particular a
// size shorter than the object's, which would cache a truncated block.
func TestServeChecksAgainstTheStore(t *testing.T) {
	f := startServer(t, 4096)
	a := newAsker(testSecret, nil)
	defer a.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, tc := range map[string]struct {
		req  Request
		want string
	}{
		"short size":     {Request{Key: "segments/a", ObjectSize: 5000, Start: 4096, End: 5000}, "has 10000 bytes"},
		"long size":      {Request{Key: "segments/a", ObjectSize: 1 << 40, Start: 0, End: 100}, "has 10000 bytes"},
		"unknown object": {Request{Key: "segments/b", ObjectSize: 100, Start: 0, End: 100}, "unknown object"},
		"too long a run": {Request{Key: "segments/a", ObjectSize: 10000, Start: 0, End: 4097}, "limit 4096"},
	} {
		_, err := a.get(ctx, f.srv.Addr().String(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	if reads := f.objects.takeReads(); len(reads) != 0 {
		t.Fatalf("the cache was read for refused requests: %+v", reads)
	}
	if n := f.rejected("invalid"); n != 4 {
		t.Errorf("rejected{invalid} = %v, want 4", n)
	}
	// The connection survived the refusals.
	if _, err := a.get(ctx, f.srv.Addr().String(), Request{Key: "segments/a", ObjectSize: 10000, Start: 0, End: 10}); err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesStrangers(t *testing.T) {
	f := startServer(t, 0)
	addr := f.srv.Addr().String()
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}

	t.Run("wrong secret", func(t *testing.T) {
		a := newAsker([]byte("not the cluster secret, at all!!"), nil)
		defer a.close()
		_, err := a.get(t.Context(), addr, Request{Key: "segments/a", ObjectSize: 10000, Start: 0, End: 10})
		if !errors.Is(err, errAuth) {
			t.Fatalf("get with a wrong secret: %v, want errAuth (the server cannot prove itself)", err)
		}
	})
	t.Run("replayed proof", func(t *testing.T) {
		// Magic and a nonce, then a proof made for another server nonce.
		nc := dial()
		hello := append(bytes.Clone(magic), make([]byte, nonceBytes)...)
		nc.Write(hello)
		answer := make([]byte, nonceBytes+macBytes)
		if _, err := io.ReadFull(nc, answer); err != nil {
			t.Fatal(err)
		}
		nc.Write(proof(testSecret, "asker", make([]byte, nonceBytes), make([]byte, nonceBytes)))
		nc.Write(Request{Key: "segments/a", ObjectSize: 10000, End: 10}.AppendTo(nil))
		if !closedByServer(t, nc) {
			t.Fatal("connection still open")
		}
	})
	t.Run("server proof used as asker proof", func(t *testing.T) {
		nc := dial()
		nonce := bytes.Repeat([]byte{1}, nonceBytes)
		nc.Write(append(bytes.Clone(magic), nonce...))
		answer := make([]byte, nonceBytes+macBytes)
		if _, err := io.ReadFull(nc, answer); err != nil {
			t.Fatal(err)
		}
		nc.Write(answer[nonceBytes:])
		if !closedByServer(t, nc) {
			t.Fatal("connection still open")
		}
	})
	t.Run("silent", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for the handshake timeout")
		}
		nc := dial()
		if !closedByServer(t, nc) {
			t.Fatal("a connection that never said anything is still open")
		}
	})
	if reads := f.objects.takeReads(); len(reads) != 0 {
		t.Fatalf("the cache was read for strangers: %+v", reads)
	}
	if n := f.rejected("auth"); n < 4 {
		t.Errorf("rejected{auth} = %v, want at least 4", n)
	}
}

// An authenticated peer that breaks the framing is disconnected before
// anything sized by it is allocated.
func TestServeClosesOnMalformedFrames(t *testing.T) {
	f := startServer(t, 0)
	for name, frame := range map[string][]byte{
		"2 GiB frame":      {0x7f, 0xff, 0xff, 0xff},
		"frame over limit": binary.BigEndian.AppendUint32(nil, maxRequestFrame+1),
		"bad range":        Request{Correlation: 1, Key: "segments/a", ObjectSize: 10, Start: 5, End: 1 << 40}.AppendTo(nil),
		"garbage":          {0, 0, 0, 3, 1, 2, 3},
	} {
		nc, err := net.Dial("tcp", f.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := Handshake(nc, testSecret); err != nil {
			t.Fatal(err)
		}
		nc.Write(frame)
		if !closedByServer(t, nc) {
			t.Errorf("%s: connection still open", name)
		}
		nc.Close()
	}
	if n := f.rejected("malformed"); n != 4 {
		t.Errorf("rejected{malformed} = %v, want 4", n)
	}
}

func TestCloseTwice(t *testing.T) {
	f := startServer(t, 0)
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	f.srv.Close()
}

// Notice connections pass the handshake only where the server takes
// notices, are bounded apart from block connections, and do not take
// their place.
func TestNoticeConnections(t *testing.T) {
	dial := func(addr string) net.Conn {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		return nc
	}
	f := startServer(t, 0) // takes no notices
	if err := HandshakeNotices(dial(f.srv.Addr().String()), testSecret); err == nil {
		t.Fatal("a server without Notices accepted a notice connection")
	}

	defer func(n int) { maxNoticeConns = n }(maxNoticeConns)
	maxNoticeConns = 2
	served := make(chan struct{}, 8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	obj := &objects{data: map[string][]byte{"segments/a": make([]byte, 100)}}
	srv, err := Serve(ln, ServerOptions{
		Secret: testSecret, Sizes: sizes{"segments/a": 100}, Blocks: obj,
		Notices: func(ctx context.Context, r io.Reader, nc net.Conn) {
			served <- struct{}{}
			io.Copy(io.Discard, r)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addr().String()
	for i := range 2 {
		if err := HandshakeNotices(dial(addr), testSecret); err != nil {
			t.Fatalf("notice connection %d: %v", i, err)
		}
		<-served
	}
	if err := HandshakeNotices(dial(addr), testSecret); err == nil {
		t.Fatal("a notice connection past the limit was accepted")
	}
	// Block requests are still served.
	a := newAsker(testSecret, nil)
	defer a.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.get(ctx, addr, Request{Key: "segments/a", ObjectSize: 100, Start: 0, End: 10}); err != nil {
		t.Fatalf("a block request beside full notice connections: %v", err)
	}
}
