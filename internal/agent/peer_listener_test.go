package agent_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
	"github.com/floe-io/floe/internal/zonecache"
)

// oldPeerAttack is the 60-byte frame that ended an agent with "out of
// memory" when block requests were served on the Kafka listener: the
// private API key 20000 asking for 2^40 bytes of an object.
func oldPeerAttack() []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, 20000)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	key := "segments/0123456789abcdef"
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, 1<<40)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, 1<<40)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// send writes frame on a new connection to addr, after the peer
// handshake when secret is set, closes its writing side and reads until
// the agent closes the connection or five seconds pass.
func send(t *testing.T, addr string, secret []byte, frame []byte) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v (is the agent down?)", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if secret != nil {
		if err := zonecache.Handshake(nc, secret); err != nil {
			t.Fatalf("handshake with %s: %v", addr, err)
		}
	}
	nc.Write(frame)
	nc.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, bufio.NewReader(nc))
}

// The Kafka listener serves Kafka clients only, and the peer listener
// only agents that know the cluster secret, each checking every size
// before it allocates: the old attack frame and random frames of every
// API key, sent to both listeners with and without the secret, leave the
// agent up, its memory bounded and its cache correct.
func TestHostileFramesOnBothListeners(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	b := agenttest.StartPeer(t, a, agenttest.Options{})
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "victim", 2)
	for i := range 8 {
		c.Do(produceRequest("victim", -1, batchSpec{partition: int32(i % 2), records: 10}))
	}
	secret, err := a.Store.ClusterSecret(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	frames := [][]byte{oldPeerAttack()}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := append(kmsg.NewPtrApiVersionsResponse().ApiKeys[:0], kmsg.ApiVersionsResponseApiKey{ApiKey: 20000})
	for k := range int16(kmsg.MaxKey + 1) {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k})
	}
	for _, k := range keys {
		for range 8 {
			body := make([]byte, 4+rng.IntN(60))
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
			frame = binary.BigEndian.AppendUint16(frame, uint16(k.ApiKey))
			frame = binary.BigEndian.AppendUint16(frame, uint16(rng.IntN(20)))
			frames = append(frames, append(frame, body...))
		}
	}
	start := time.Now()
	for _, target := range []struct {
		name, addr string
		secret     []byte
	}{
		{"kafka listener", a.Addr(), nil},
		{"peer listener without the secret", a.PeerAddr(), nil},
		{"peer listener with the secret", a.PeerAddr(), secret},
	} {
		for _, f := range frames {
			send(t, target.addr, target.secret, f)
		}
		// Still serving Kafka clients.
		c := testutil.Dial(t, a.Addr())
		if resp := c.Do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("after hostile frames on the %s: ApiVersions error %d", target.name, resp.ErrorCode)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d frames to each listener in %v; heap in use %d MiB", len(frames), time.Since(start).Round(time.Millisecond), ms.HeapInuse>>20)
	if ms.HeapInuse > 1<<30 {
		t.Fatalf("heap in use %d MiB after hostile frames", ms.HeapInuse>>20)
	}

	// Nothing was cached wrong: a reader in the zone reads every record
	// back through the other agent's cache.
	rb := testutil.Dial(t, b.Addr())
	for p := int32(0); p < 2; p++ {
		if n := readAll(t, rb, "victim", p, 40); n != 40 {
			t.Fatalf("partition %d: read to %d, want 40", p, n)
		}
	}
}

// A peer with the wrong secret is refused, and so is a Kafka client
// dialling the peer port by mistake: the agent serves neither.
func TestPeerListenerNeedsTheSecret(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.PeerSecret = []byte("a secret from a file, 32 bytes..")
	}})
	nc, err := net.Dial("tcp", a.PeerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := zonecache.Handshake(nc, []byte("the wrong secret, also 32 bytes.")); err == nil {
		t.Fatal("handshake with a wrong secret succeeded")
	}
	// A Kafka client's ApiVersions on the peer port is not answered.
	kc, err := net.Dial("tcp", a.PeerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, 18)
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 0xffff)
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	kc.Write(frame)
	kc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, kc)
	var ne net.Error
	if n != 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("peer port answered a Kafka request with %d bytes, or kept the connection open (%v)", n, err)
	}
}
