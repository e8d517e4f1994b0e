package peernotice

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/zonecache"
)

var secret = []byte("test cluster secret")

func parts(n int) []metastore.TopicPartition {
	out := make([]metastore.TopicPartition, n)
	for i := range out {
		out[i].TopicID[0], out[i].TopicID[1], out[i].TopicID[15] = byte(i>>16), byte(i>>8), byte(i)
		out[i].Partition = int32(i % 7)
	}
	return out
}

func TestFramesRoundTrip(t *testing.T) {
	for _, n := range []int{1, 3, maxFramePartitions, maxFramePartitions + 1, 3*maxFramePartitions + 5} {
		want := parts(n)
		buf := appendFrames(nil, want, false)
		var got []metastore.TopicPartition
		frames := 0
		for len(buf) > 0 {
			size := int(binary.BigEndian.Uint32(buf))
			notice, err := decodeFrame(buf[4 : 4+size])
			if err != nil {
				t.Fatalf("%d partitions: %v", n, err)
			}
			got = append(got, notice.Partitions...)
			buf = buf[4+size:]
			frames++
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%d partitions: decoded %d, not what was encoded", n, len(got))
		}
		if wantFrames := (n + maxFramePartitions - 1) / maxFramePartitions; frames != wantFrames {
			t.Fatalf("%d partitions in %d frames, want %d", n, frames, wantFrames)
		}
	}
	buf := appendFrames(nil, nil, true)
	if n, err := decodeFrame(buf[4:]); err != nil || n.Partitions != nil {
		t.Fatalf("everything decoded as %v, %v", n, err)
	}
}

func TestMalformedFrames(t *testing.T) {
	valid := appendFrame(nil, kindPartitions, parts(2))[4:]
	cases := map[string][]byte{
		"short":                      {0, 0, 0},
		"unknown kind":               append([]byte{7}, valid[1:]...),
		"no partitions":              {kindPartitions, 0, 0, 0, 0},
		"count past the bytes":       append([]byte{kindPartitions, 0, 0, 0, 3}, valid[5:]...),
		"count over the limit":       binary.BigEndian.AppendUint32([]byte{kindPartitions}, maxFramePartitions+1),
		"everything with partitions": append([]byte{kindEverything}, valid[1:]...),
		"negative partition":         append(slices.Clone(valid[:5+16]), 0xff, 0xff, 0xff, 0xff),
	}
	for name, body := range cases {
		if _, err := decodeFrame(body); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, kindPartitions, parts(3))[4:])
	f.Add(appendFrame(nil, kindEverything, nil)[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := decodeFrame(body)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		again := appendFrames(nil, n.Partitions, n.Partitions == nil)
		if !bytes.Equal(again[4:], body) {
			t.Fatalf("decoded %x, encoded back %x", body, again[4:])
		}
	})
}

// heardLog collects what a receiver hears.
type heardLog struct {
	mu         sync.Mutex
	parts      map[metastore.TopicPartition]bool
	everything int
}

func (h *heardLog) hear(n metastore.CommitNotice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n.Partitions == nil {
		h.everything++
	}
	for _, tp := range n.Partitions {
		h.parts[tp] = true
	}
}

func (h *heardLog) has(want []metastore.TopicPartition) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tp := range want {
		if !h.parts[tp] {
			return false
		}
	}
	return true
}

type noBlocks struct{}

func (noBlocks) ObjectSize(context.Context, string) (int64, bool, error) { return 0, false, nil }
func (noBlocks) ReadRange(context.Context, string, int64, int64, int64) ([]byte, error) {
	return nil, context.Canceled
}

// serve starts a peer listener on addr ("" for a free port) whose notices
// go to h (none when h is nil).
func serve(t *testing.T, addr string, h *heardLog, reg prometheus.Registerer) *zonecache.Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port of a server just closed may take a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts := zonecache.ServerOptions{Secret: secret, Sizes: noBlocks{}, Blocks: noBlocks{}}
	if h != nil {
		opts.Notices = NewReceiver(h.hear, testutil.Logger(t), reg).Serve
	}
	s, err := zonecache.Serve(ln, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting until " + what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func connected(s *Sender) bool { c, of := s.Connected(); return c == of }

func TestSenderReachesEveryPeer(t *testing.T) {
	logs := []*heardLog{{parts: map[metastore.TopicPartition]bool{}}, {parts: map[metastore.TopicPartition]bool{}}}
	var peers []metastore.AgentInfo
	for _, h := range logs {
		peers = append(peers, metastore.AgentInfo{PeerAddr: serve(t, "", h, nil).Addr().String()})
	}
	s := NewSender(Options{Secret: secret, Logger: testutil.Logger(t)})
	defer s.Close()
	s.SetPeers(peers)
	waitFor(t, "the sender is connected to both peers", func() bool { return connected(s) })

	want := parts(2*maxFramePartitions + 10) // more than one frame
	for i := 0; i < len(want); i += 1000 {
		if !s.Send(metastore.CommitNotice{Partitions: want[i:min(i+1000, len(want))]}) {
			t.Fatal("Send reported a peer unreached while connected to both")
		}
	}
	for i, h := range logs {
		waitFor(t, "every partition reached the peer", func() bool { return h.has(want) })
		t.Logf("peer %d heard %d partitions", i, len(h.parts))
	}
	// "Everything" replaces the partitions waiting with it.
	s.Send(metastore.CommitNotice{})
	for _, h := range logs {
		waitFor(t, "everything reached the peer", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.everything == 1 })
	}

	// A live agent without a peer address cannot be reached.
	s.SetPeers(append(peers, metastore.AgentInfo{}))
	if s.Send(metastore.CommitNotice{Partitions: want[:1]}) {
		t.Fatal("Send reported every agent reached, with one that has no peer address")
	}
	if c, of := s.Connected(); c != 2 || of != 3 {
		t.Fatalf("connected to %d of %d, want 2 of 3", c, of)
	}
}

// A peer that restarts is reconnected to, and Send reports it unreached
// until then; notices sent after the reconnection arrive.
func TestSenderReconnects(t *testing.T) {
	h := &heardLog{parts: map[metastore.TopicPartition]bool{}}
	srv := serve(t, "", h, nil)
	addr := srv.Addr().String()
	s := NewSender(Options{Secret: secret, Logger: testutil.Logger(t)})
	defer s.Close()
	s.SetPeers([]metastore.AgentInfo{{PeerAddr: addr}})
	waitFor(t, "connected", func() bool { return connected(s) })
	srv.Close()
	// The first writes after the close may still be taken by the kernel;
	// one of the next fails and the sender notices.
	waitFor(t, "Send reports the peer unreached", func() bool {
		return !s.Send(metastore.CommitNotice{Partitions: parts(1)})
	})
	h2 := &heardLog{parts: map[metastore.TopicPartition]bool{}}
	serve(t, addr, h2, nil)
	waitFor(t, "reconnected", func() bool { return connected(s) })
	want := parts(50)[10:]
	if !s.Send(metastore.CommitNotice{Partitions: want}) {
		t.Fatal("Send reported the peer unreached after reconnecting")
	}
	waitFor(t, "the notice after the reconnection arrived", func() bool { return h2.has(want) })
}

// An agent that takes no notice connections (one that predates them)
// turns the sender away, so Send keeps reporting it unreached and the
// store keeps sending notices itself.
func TestPeerWithoutNoticesIsUnreached(t *testing.T) {
	srv := serve(t, "", nil, nil)
	s := NewSender(Options{Secret: secret, Logger: testutil.Logger(t)})
	defer s.Close()
	s.SetPeers([]metastore.AgentInfo{{PeerAddr: srv.Addr().String()}})
	time.Sleep(300 * time.Millisecond) // a few dial attempts
	if s.Send(metastore.CommitNotice{Partitions: parts(1)}) {
		t.Fatal("Send reported a peer that takes no notices reached")
	}
	if c, _ := s.Connected(); c != 0 {
		t.Fatalf("connected to %d peers", c)
	}
}

// A sender with the wrong secret is turned away too.
func TestWrongSecretIsUnreached(t *testing.T) {
	h := &heardLog{parts: map[metastore.TopicPartition]bool{}}
	srv := serve(t, "", h, nil)
	s := NewSender(Options{Secret: []byte("another secret"), Logger: testutil.Logger(t)})
	defer s.Close()
	s.SetPeers([]metastore.AgentInfo{{PeerAddr: srv.Addr().String()}})
	time.Sleep(300 * time.Millisecond)
	if s.Send(metastore.CommitNotice{Partitions: parts(1)}) {
		t.Fatal("Send reported a peer reached with the wrong secret")
	}
}

// A malformed frame closes the connection, and nothing of it is heard.
func TestReceiverClosesOnMalformedFrame(t *testing.T) {
	h := &heardLog{parts: map[metastore.TopicPartition]bool{}}
	reg := prometheus.NewRegistry()
	srv := serve(t, "", h, reg)
	for name, frame := range map[string][]byte{
		"too large":      binary.BigEndian.AppendUint32(nil, maxFrameBytes+1),
		"count too high": append(binary.BigEndian.AppendUint32(nil, 5), kindPartitions, 0xff, 0xff, 0xff, 0xff),
	} {
		nc, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := zonecache.HandshakeNotices(nc, secret); err != nil {
			t.Fatal(err)
		}
		nc.Write(frame)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("%s: the connection stayed open (%v)", name, err)
		}
		nc.Close()
	}
	if got := testutil.MetricSum(t, reg, "floe_peer_notice_malformed_total"); got != 2 {
		t.Fatalf("%v malformed frames counted, want 2", got)
	}
	if len(h.parts) > 0 || h.everything > 0 {
		t.Fatal("a malformed frame was heard")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// The receiver reads whatever a peer sends without panicking, hears only
// notices that decode, and stops at the first broken frame.
func FuzzReceiverServe(f *testing.F) {
	f.Add(appendFrames(appendFrames(nil, parts(3), false), nil, true))
	f.Add(append(appendFrame(nil, kindPartitions, parts(1)), 0, 0, 0, 1, 9))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var heard []metastore.CommitNotice
		r := NewReceiver(func(n metastore.CommitNotice) { heard = append(heard, n) }, nil, nil)
		client, server := net.Pipe()
		go func() {
			client.Write(stream)
			client.Close()
		}()
		r.Serve(context.Background(), server, server)
		server.Close()
		// What was heard is what the stream's leading well-formed frames say.
		rest := stream
		for i, n := range heard {
			size := int(binary.BigEndian.Uint32(rest))
			want, err := decodeFrame(rest[4 : 4+size])
			if err != nil || !slices.Equal(want.Partitions, n.Partitions) || (want.Partitions == nil) != (n.Partitions == nil) {
				t.Fatalf("notice %d heard as %v, the frame says %v (%v)", i, n, want, err)
			}
			rest = rest[4+size:]
		}
	})
}

// A peer's queue keeps each partition once, and turns into "everything"
// only when the distinct partitions pass half of maxPending.
func TestPendingDistinct(t *testing.T) {
	p := &peer{s: NewSender(Options{}), wake: make(chan struct{}, 1)}
	ps := parts(maxPending / 2)
	for range 3 { // repeats do not count against the bound
		p.add(metastore.CommitNotice{Partitions: ps})
	}
	got, everything, merged := p.take()
	if merged {
		got = distinct(got)
	}
	if everything || len(got) != maxPending/2 {
		t.Fatalf("took %d partitions (everything %v), want %d", len(got), everything, maxPending/2)
	}
	p.recycle(got)
	p.add(metastore.CommitNotice{Partitions: ps})
	p.add(metastore.CommitNotice{Partitions: parts(maxPending/2 + 1)})
	if _, everything, _ := p.take(); !everything {
		t.Fatal("more than maxPending/2 distinct partitions did not become everything")
	}
}

// Close does not wait for a write to a peer that stopped reading.
func TestCloseDoesNotWaitForAStuckPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zonecache.Serve(ln, zonecache.ServerOptions{
		Secret: secret, Sizes: noBlocks{}, Blocks: noBlocks{},
		Notices: func(ctx context.Context, _ io.Reader, _ net.Conn) { <-ctx.Done() }, // reads nothing
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s := NewSender(Options{Secret: secret, Logger: testutil.Logger(t)})
	s.SetPeers([]metastore.AgentInfo{{PeerAddr: srv.Addr().String()}})
	waitFor(t, "connected", func() bool { return connected(s) })
	ps := parts(maxPending)
	for range 20 { // 2 MB a write: more than the socket buffers hold
		s.Send(metastore.CommitNotice{Partitions: ps})
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > writeTimeout/2 {
		t.Fatalf("Close took %v with a write stuck on a peer", took)
	}
}

// What a peer gathered before Close is written before the sender stops.
func TestCloseWritesWhatGathered(t *testing.T) {
	h := &heardLog{parts: map[metastore.TopicPartition]bool{}}
	addr := serve(t, "", h, nil).Addr().String()
	for i := range 20 {
		s := NewSender(Options{Secret: secret, Logger: testutil.Logger(t)})
		if s.Send(metastore.CommitNotice{Partitions: parts(1)}) {
			t.Fatal("Send reported every agent reached before the peers were known")
		}
		s.SetPeers([]metastore.AgentInfo{{PeerAddr: addr}})
		waitFor(t, "connected", func() bool { return connected(s) })
		tp := metastore.TopicPartition{Partition: int32(i)}
		s.Send(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}})
		s.Close()
		waitFor(t, "the notice sent just before Close arrived", func() bool { return h.has([]metastore.TopicPartition{tp}) })
	}
}

// A connection opened after the idle timer fired (while there was none)
// still closes when idle, so a notice is never written into a connection
// the receiver dropped for idleness.
func TestIdleCloseAfterReconnect(t *testing.T) {
	oldIdle, oldTimeout := maxIdle, idleTimeout
	t.Cleanup(func() { maxIdle, idleTimeout = oldIdle, oldTimeout }) // after the server's cleanup
	maxIdle, idleTimeout = 100*time.Millisecond, 400*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the sender's dials fail while its idle timer fires
	s := NewSender(Options{Secret: secret, Logger: testutil.Logger(t)})
	defer s.Close()
	s.SetPeers([]metastore.AgentInfo{{PeerAddr: addr}})
	time.Sleep(3 * maxIdle)
	h := &heardLog{parts: map[metastore.TopicPartition]bool{}}
	serve(t, addr, h, nil)
	waitFor(t, "connected", func() bool { return connected(s) })
	time.Sleep(idleTimeout + 2*maxIdle) // the receiver has dropped an idle connection
	want := parts(3)
	s.Send(metastore.CommitNotice{Partitions: want})
	waitFor(t, "the notice after the idle period arrived", func() bool { return h.has(want) })
}
