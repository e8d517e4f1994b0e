package agent_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/wire"
)

// TestTLSPrincipal: the principal of an SSL connection is its client
// certificate's subject in RFC 2253 order, mapped by the rules.
func TestTLSPrincipal(t *testing.T) {
	ca := testutil.NewCA(t, "principal CA")
	cert := ca.Issue(t, pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"clients"}, Organization: []string{"Floe"}, Country: []string{"DE"}})
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
	if got := agent.TLSPrincipal(cs, nil); got != "User:CN=Alice,OU=clients,O=Floe,C=DE" {
		t.Fatalf("DEFAULT: %q", got)
	}
	rules, err := agent.ParsePrincipalRules(`RULE:^CN=([^,]+),OU=clients,.*$/$1/L`)
	if err != nil {
		t.Fatal(err)
	}
	if got := agent.TLSPrincipal(cs, rules); got != "User:alice" {
		t.Fatalf("mapped: %q", got)
	}
	if got := agent.TLSPrincipal(tls.ConnectionState{}, rules); got != wire.AnonymousPrincipal {
		t.Fatalf("without a certificate: %q", got)
	}
}
