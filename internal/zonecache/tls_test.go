package zonecache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/zonecache"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue signs a certificate for an agent, with no host name in it.
func (ca *testCA) issue(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

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
	ca, other := newCA(t), newCA(t)
	serverTLS, _, err := agent.PeerTLS(ca.issue(t, "agent-1"), ca.pool)
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
	_, good, _ := agent.PeerTLS(ca.issue(t, "agent-2"), ca.pool)
	if err := ask(good); err != nil {
		t.Fatalf("peer with the cluster CA's certificate: %v", err)
	}
	_, stranger, _ := agent.PeerTLS(other.issue(t, "intruder"), other.pool)
	if err := ask(stranger); err == nil {
		t.Fatal("peer with another CA's certificate was served")
	}
	if err := ask(nil); err == nil {
		t.Fatal("peer without TLS was served")
	}
}
