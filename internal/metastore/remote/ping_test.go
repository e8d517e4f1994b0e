package remote

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// fakeServer is a control plane that welcomes every hello and answers
// every request with ErrTopicExists after delay. Stopped, it reads and
// writes nothing more, as a SIGSTOPped process: its kernel still accepts
// connections and buffers what they send.
type fakeServer struct {
	ln       net.Listener
	ping     bool // its welcome says it answers pings
	delay    time.Duration
	stopped  atomic.Bool
	hellos   atomic.Int32
	pings    atomic.Int32
	requests atomic.Int32
	unknown  atomic.Int32 // frames of a kind an old server does not know
	// unknownOps: requests are answered as by a server that does not
	// know their op, instead of ErrTopicExists.
	unknownOps atomic.Bool
	quit       chan struct{}

	// wrote is when it last wrote a frame (lastWrite).
	wmu   sync.Mutex
	wrote time.Time
}

// lastWrite is when the server last wrote a frame: a client hears
// nothing from it after that.
func (s *fakeServer) lastWrite() time.Time {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.wrote
}

// sleep waits d or until the test ends; false: it ended.
func (s *fakeServer) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-s.quit:
		return false
	}
}

func startFakeServer(t *testing.T, ping bool, delay time.Duration) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, ping: ping, delay: delay, quit: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		close(s.quit)
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(nc)
			}()
		}
	}()
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) serve(nc net.Conn) {
	defer nc.Close()
	if s.stopped.Load() {
		// Accepted by the kernel, never answered.
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, nc); close(gone) }()
		select {
		case <-gone:
		case <-s.quit:
		}
		return
	}
	r := bufio.NewReader(nc)
	var wmu sync.Mutex
	write := func(f Frame) {
		b, _ := AppendFrame(nil, f)
		wmu.Lock()
		defer wmu.Unlock()
		nc.Write(b)
		s.wmu.Lock()
		s.wrote = time.Now()
		s.wmu.Unlock()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		f, err := ReadFrame(r)
		if err != nil {
			return
		}
		for s.stopped.Load() {
			if !s.sleep(5 * time.Millisecond) {
				return
			}
		}
		switch f.Kind {
		case KindHello:
			s.hellos.Add(1)
			p, _ := Marshal(Welcome{Ping: s.ping})
			write(Frame{Kind: KindWelcome, Payload: p})
		case KindPing:
			if !s.ping {
				// An old server closes the connection on a kind it
				// does not know.
				s.unknown.Add(1)
				return
			}
			s.pings.Add(1)
			write(Frame{Kind: KindPong, ID: f.ID})
		case KindRequest:
			s.requests.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !s.sleep(s.delay) {
					return
				}
				for s.stopped.Load() {
					if !s.sleep(5 * time.Millisecond) {
						return
					}
				}
				resp := Response{Err: EncodeError(metastore.ErrTopicExists)}
				if s.unknownOps.Load() {
					resp.Err = &WireError{Msg: `unknown op "CommitSegments"`}
				}
				p, _ := Marshal(resp)
				write(Frame{Kind: KindResponse, ID: f.ID, Payload: p})
			}()
		default:
			return
		}
	}
}

func openFake(t *testing.T, addr string, timeout time.Duration) *Client {
	t.Helper()
	c, err := Open(t.Context(), Options{Addr: addr, VCluster: "v", Key: "k", PingTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPingSilentServer stops a server while a mutation waits for its
// answer: the call fails as on a lost connection, about a ping timeout
// after the server's last frame, not after the 2-minute mutation
// timeout; the next call goes to the other address.
func TestPingSilentServer(t *testing.T) {
	const timeout = 500 * time.Millisecond
	hung := startFakeServer(t, true, time.Hour)
	other := startFakeServer(t, true, 0)
	c := openFake(t, hung.addr()+","+other.addr(), timeout)

	hung.stopped.Store(true)
	start := time.Now()
	_, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1})
	took := time.Since(start)
	// Silence is counted from the server's last frame, which may be a
	// pong it wrote just before start.
	silent := time.Since(hung.lastWrite())
	t.Logf("mutation on a stopped server failed after %v, %v after its last frame (ping timeout %v): %v", took.Round(time.Millisecond), silent.Round(time.Millisecond), timeout, err)
	if !errors.Is(err, ErrSilent) || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("CreateTopic on a stopped server: %v, want a lost connection (ErrSilent)", err)
	}
	// An agent producing through an outage queues on such an error.
	if !Unreachable(err) {
		t.Fatalf("Unreachable(%v) = false: a silent control plane is unreachable", err)
	}
	if silent < timeout {
		t.Errorf("declared dead %v after the server's last frame, before the ping timeout %v", silent, timeout)
	}
	if took > 20*timeout {
		t.Errorf("declared dead after %v, ping timeout %v", took, timeout)
	}
	// The next call dials the other address first: it answers.
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("call after the silent connection: %v, want the other server's answer", err)
	}
	if other.requests.Load() != 1 {
		t.Errorf("the other server saw %d requests, want 1", other.requests.Load())
	}
}

// TestPingStoppedBeforeDial: a stopped server accepts the connection but
// never welcomes it; the dial gives up after the ping timeout and tries
// the next address.
func TestPingStoppedBeforeDial(t *testing.T) {
	const timeout = 500 * time.Millisecond
	hung := startFakeServer(t, true, 0)
	hung.stopped.Store(true)
	other := startFakeServer(t, true, 0)
	start := time.Now()
	c := openFake(t, hung.addr()+","+other.addr(), timeout)
	took := time.Since(start)
	t.Logf("open went past a stopped server in %v (ping timeout %v)", took.Round(time.Millisecond), timeout)
	if took < timeout || took > 20*timeout {
		t.Errorf("open took %v past a stopped server, want about the ping timeout %v", took, timeout)
	}
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t"}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic: %v", err)
	}
}

// TestPingSlowServer: a server that takes several ping timeouts to answer
// a mutation but answers the pings meanwhile is alive: the call waits for
// its answer.
func TestPingSlowServer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := startFakeServer(t, true, 5*timeout)
	c := openFake(t, s.addr(), timeout)
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t"}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic on a slow server: %v, want its answer", err)
	}
	if s.pings.Load() == 0 {
		t.Error("no ping sent while the answer took 5 ping timeouts")
	}
	if s.hellos.Load() != 1 {
		t.Errorf("%d hellos: the connection was redialled", s.hellos.Load())
	}
}

// TestPingIdle: an idle connection is pinged too (an agent waiting for
// notices or its schedule must learn that its server stopped), and stays
// up while the server answers.
func TestPingIdle(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := startFakeServer(t, true, 0)
	c := openFake(t, s.addr(), timeout)
	time.Sleep(4 * timeout)
	if s.pings.Load() == 0 {
		t.Error("an idle connection was not pinged")
	}
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t"}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic: %v", err)
	}
	if s.hellos.Load() != 1 {
		t.Errorf("%d hellos: the connection was redialled", s.hellos.Load())
	}
	s.stopped.Store(true)
	time.Sleep(4 * timeout)
	c.mu.Lock()
	cc := c.conn
	c.mu.Unlock()
	if cc == nil || !cc.dead() || !errors.Is(cc.err, ErrSilent) {
		t.Errorf("idle connection to a stopped server not declared dead: %v", cc.err)
	}
}

// TestPingOldServer: a server whose welcome does not offer pings is
// never pinged (it would close the connection); slow answers then wait
// as before.
func TestPingOldServer(t *testing.T) {
	const timeout = 200 * time.Millisecond
	s := startFakeServer(t, false, 4*timeout)
	c := openFake(t, s.addr(), timeout)
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t"}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic on an old server: %v", err)
	}
	if s.unknown.Load() != 0 || s.hellos.Load() != 1 {
		t.Errorf("old server: %d unknown frames, %d hellos", s.unknown.Load(), s.hellos.Load())
	}
}

// TestPingURL reads the ping settings from a URL.
func TestPingURL(t *testing.T) {
	for _, tc := range []struct {
		query             string
		interval, timeout time.Duration
		bad               bool
	}{
		{query: "", interval: DefaultPingTimeout / 4, timeout: DefaultPingTimeout},
		{query: "&ping_timeout=2s", interval: 500 * time.Millisecond, timeout: 2 * time.Second},
		{query: "&ping_timeout=2s&ping_interval=200ms", interval: 200 * time.Millisecond, timeout: 2 * time.Second},
		{query: "&ping_timeout=2s&ping_interval=5s", interval: 500 * time.Millisecond, timeout: 2 * time.Second},
		{query: "&ping_timeout=0"},
		{query: "&ping_timeout=1ms", bad: true},
		{query: "&ping_timeout=-3s", bad: true},
		{query: "&ping_timeout=soon", bad: true},
		{query: "&ping_interval=1ns", bad: true},
	} {
		o, err := ParseURL("floe://127.0.0.1:9700/prod?key=k" + tc.query)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted", tc.query)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if i, to := o.pingTimes(); i != tc.interval || to != tc.timeout {
			t.Errorf("%q: interval %v, timeout %v; want %v, %v", tc.query, i, to, tc.interval, tc.timeout)
		}
	}
}

// FuzzClientFrames feeds a connection's reader whatever a server may
// send after its welcome: it ends the connection or goes on, never
// panics, and a call in flight gets an answer or the connection's loss.
func FuzzClientFrames(f *testing.F) {
	frame := func(kind byte, id uint64, payload []byte) []byte {
		b, _ := AppendFrame(nil, Frame{Kind: kind, ID: id, Payload: payload})
		return b
	}
	resp, _ := Marshal(Response{Err: EncodeError(metastore.ErrTopicExists)})
	f.Add(frame(KindPong, 7, nil))
	f.Add(frame(KindPong, 0, []byte{1, 2, 3}))
	f.Add(append(frame(KindPong, 1, nil), frame(KindResponse, 1, resp)...))
	f.Add(frame(KindResponse, 1, []byte{0xbf}))
	f.Add(frame(KindCommitNotice, 0, []byte{0xa0}))
	f.Add(frame(KindSchedule, 0, []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
	f.Add(frame(KindPing, 3, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		c := &Client{log: slog.New(slog.DiscardHandler), done: make(chan struct{}), notices: make(chan func(), noticeQueue)}
		cc := &clientConn{c: c, addr: "fuzz", nc: client, r: bufio.NewReader(client), w: bufio.NewWriter(client),
			pending: map[uint64]chan Response{}, gone: make(chan struct{}), born: time.Now()}
		c.conn = cc
		go cc.read()
		go func() {
			// Swallow what the client writes, send the input, hang up.
			go func() {
				var buf [512]byte
				for {
					if _, err := server.Read(buf[:]); err != nil {
						return
					}
				}
			}()
			server.Write(in)
			server.Close()
		}()
		// A mutation waits for its answer or the connection's end (the
		// server hangs up after the input), whatever its context says.
		c.CreateTopic(context.Background(), metastore.TopicSpec{Name: "t"})
		<-cc.gone
		client.Close()
	})
}

// TestCommitSegmentsOlderServer: a control plane that does not know
// CommitSegments applied nothing; the client answers ErrGroupsUnsupported
// and, for a while, answers it again without asking.
func TestCommitSegmentsOlderServer(t *testing.T) {
	s := startFakeServer(t, true, 0)
	s.unknownOps.Store(true)
	c := openFake(t, s.addr(), 0)
	group := []metastore.SegmentCommit{
		{Object: "segments/a", Size: 10, Batches: []metastore.BatchCommit{{ByteLength: 10, OffsetCount: 1, ProducerID: -1}}},
		{Object: "segments/b", Size: 10, Batches: []metastore.BatchCommit{{ByteLength: 10, OffsetCount: 1, ProducerID: -1}}},
	}
	for i := range 2 {
		if _, err := c.CommitSegments(t.Context(), group); !errors.Is(err, metastore.ErrGroupsUnsupported) {
			t.Fatalf("call %d: %v, want ErrGroupsUnsupported", i, err)
		}
	}
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("%d requests reached the server, want 1 (the second answered by the client)", n)
	}
	// Any other error is the server's, not a refusal of groups.
	s.unknownOps.Store(false)
	c2 := openFake(t, s.addr(), 0)
	if _, err := c2.CommitSegments(t.Context(), group); err == nil || errors.Is(err, metastore.ErrGroupsUnsupported) {
		t.Fatalf("a server error came back as %v", err)
	}
}
