package zonecache_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/zonecache"
)

type oneObject struct{ size int64 }

func (o oneObject) ObjectSize(context.Context, string) (int64, bool, error) { return o.size, true, nil }

type zeros struct{}

func (zeros) ReadRange(_ context.Context, _ string, _, _, length int64) ([]byte, error) {
	return make([]byte, length), nil
}

// members is a fixed zone: self and one owner of every block.
type members struct{ self, other metastore.AgentInfo }

func (m members) Self() metastore.AgentInfo   { return m.self }
func (m members) Live() []metastore.AgentInfo { return []metastore.AgentInfo{m.other} }

// Mutual TLS between agents: a peer with a certificate from the cluster's
// CA is served; one from another CA, or without TLS, is not.
func TestMutualTLS(t *testing.T) {
	ca, other := testutil.NewCA(t, "floe test CA"), testutil.NewCA(t, "other CA")
	serverTLS, _, err := agent.PeerTLS(ca.Issue(t, pkix.Name{CommonName: "agent-1"}), ca.Pool)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zonecache.Serve(ln, zonecache.ServerOptions{Secret: secret, TLS: serverTLS, Sizes: oneObject{1000}, Blocks: zeros{}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	bucket, err := localdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	owner := metastore.AgentInfo{ID: "owner", PeerAddr: srv.Addr().String(), Roles: []string{"fetch"}}
	ask := func(clientTLS *tls.Config) error {
		// The bucket is empty: only the peer can answer.
		r := zonecache.NewRing(members{self: metastore.AgentInfo{ID: "self"}, other: owner}, bucket, zonecache.RingOptions{
			BlockSize: 100, Role: "fetch", Secret: secret, TLS: clientTLS, Timeout: 5 * time.Second,
		})
		defer r.Close()
		_, err := r.Fetch(t.Context(), "segments/x", 1000, 0, 100)
		return err
	}
	_, good, _ := agent.PeerTLS(ca.Issue(t, pkix.Name{CommonName: "agent-2"}), ca.Pool)
	if err := ask(good); err != nil {
		t.Fatalf("peer with the cluster CA's certificate: %v", err)
	}
	_, stranger, _ := agent.PeerTLS(other.Issue(t, pkix.Name{CommonName: "intruder"}), other.Pool)
	if err := ask(stranger); err == nil {
		t.Fatal("peer with another CA's certificate was served")
	}
	if err := ask(nil); err == nil {
		t.Fatal("peer without TLS was served")
	}
}
