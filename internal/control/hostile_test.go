package control_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/testutil"
)

// TestHostileConnections sends what no client sends: the server closes
// the connection (never panics, never allocates what a length claims),
// and goes on serving well-behaved clients.
func TestHostileConnections(t *testing.T) {
	cp := newControl(t)
	key, err := cp.server.CreateVCluster(t.Context(), "hostile")
	if err != nil {
		t.Fatal(err)
	}
	frame := func(kind byte, payload []byte) []byte {
		b, err := remote.AppendFrame(nil, remote.Frame{Kind: kind, ID: 1, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hello, _ := remote.Marshal(remote.Hello{V: remote.Version, VCluster: "hostile", Key: key})
	req, _ := remote.Marshal(remote.Request{Op: "Topics"})
	cases := map[string][][]byte{
		"huge length":            {binary.BigEndian.AppendUint32(nil, 1<<31)},
		"hello over its bound":   {binary.BigEndian.AppendUint32(nil, remote.MaxHelloFrame+1)},
		"request before hello":   {frame(remote.KindRequest, req)},
		"garbage hello":          {frame(remote.KindHello, []byte{0xff, 0x00, 0x13})},
		"wrong version":          {frame(remote.KindHello, must(remote.Marshal(remote.Hello{V: 99, VCluster: "hostile", Key: key})))},
		"frame of unknown kind":  {frame(remote.KindHello, hello), frame(99, nil)},
		"oversized after hello":  {frame(remote.KindHello, hello), binary.BigEndian.AppendUint32(nil, remote.MaxFrame+1)},
		"truncated":              {frame(remote.KindHello, hello), binary.BigEndian.AppendUint32(nil, 100), []byte{3, 0}},
		"bad request in session": {frame(remote.KindHello, hello), frame(remote.KindRequest, []byte{0xbf})},
	}
	for name, sends := range cases {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", cp.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			for _, b := range sends {
				nc.Write(b)
			}
			if name == "truncated" {
				nc.(*net.TCPConn).CloseWrite()
			}
			// Read until the server closes: a welcome or an error
			// response may come first, nothing else.
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(nc)
			for range 3 {
				f, err := remote.ReadFrame(r)
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("connection still open after hostile input")
					}
					return // closed
				}
				switch f.Kind {
				case remote.KindWelcome:
				case remote.KindResponse:
					var resp remote.Response
					if err := remote.Unmarshal(f.Payload, &resp); err != nil || resp.Err == nil {
						t.Fatalf("response to a malformed request: %+v, %v", resp, err)
					}
					return // answered with an error: fine
				default:
					t.Fatalf("unexpected frame kind %d", f.Kind)
				}
			}
			t.Fatal("server kept talking")
		})
	}
	// Still serving.
	c := cp.client(t, "hostile", key)
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "still", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestTLS serves over TLS: a client trusting the CA works, a plaintext
// client is refused.
func TestTLS(t *testing.T) {
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	j, err := journal.Open(t.Context(), dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ca := testutil.NewCA(t, "control-ca")
	cert := ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"}, "127.0.0.1")
	srv, err := control.New(t.Context(), control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t),
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	key, err := srv.CreateVCluster(t.Context(), "tls")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(t.Context(), remote.Options{Addr: l.Addr().String(), VCluster: "tls", Key: key,
		TLS: &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "secure", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if c2, err := remote.Open(t.Context(), remote.Options{Addr: l.Addr().String(), VCluster: "tls", Key: key}); err == nil {
		c2.Close()
		t.Fatal("plaintext client admitted by a TLS server")
	}
}
