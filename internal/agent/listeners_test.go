package agent_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
)

func TestParseListeners(t *testing.T) {
	for _, c := range []struct {
		name, listeners, advertised, protocols string
		want                                   []agent.Listener
		wantErr                                bool
	}{
		{name: "protocols as names", listeners: "PLAINTEXT://127.0.0.1:9092, sasl_ssl://0.0.0.0:9093",
			want: []agent.Listener{{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: "127.0.0.1:9092"}, {Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "0.0.0.0:9093"}}},
		{name: "named with a protocol map", listeners: "INTERNAL://:9092,EXTERNAL://:9093", protocols: "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_SSL",
			advertised: "EXTERNAL://kafka.example.com:443",
			want:       []agent.Listener{{Name: "INTERNAL", Protocol: "SASL_PLAINTEXT", Addr: ":9092"}, {Name: "EXTERNAL", Protocol: "SASL_SSL", Addr: ":9093", Advertise: "kafka.example.com:443"}}},
		{name: "unknown protocol", listeners: "FOO://:9092", wantErr: true},
		{name: "no port", listeners: "PLAINTEXT://localhost", wantErr: true},
		{name: "twice", listeners: "SSL://:1,SSL://:2", wantErr: true},
		{name: "advertised unknown listener", listeners: "SSL://:1", advertised: "PLAINTEXT://a:1", wantErr: true},
		{name: "bad map", listeners: "A://:1", protocols: "A:TLS", wantErr: true},
		{name: "none", listeners: " ", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := agent.ParseListeners(c.listeners, c.advertised, c.protocols)
			if c.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestPrincipalRules(t *testing.T) {
	const subject = "CN=Alice,OU=ServiceUsers,O=Floe,C=DE"
	for _, c := range []struct{ rules, subject, want string }{
		{"", subject, subject},
		{"DEFAULT", subject, subject},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/`, subject, "Alice"},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L`, subject, "alice"},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U`, subject, "ALICE"},
		// Kafka's documentation's example: the first matching rule wins.
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT`, subject, "alice@serviceusers"},
		{`RULE:^CN=(.*?),OU=Admins.*$/$1/, DEFAULT`, subject, subject},
		{`RULE:^CN=([^,]*),.*$/user\/$1/`, subject, "user/Alice"},
	} {
		rules, err := agent.ParsePrincipalRules(c.rules)
		if err != nil {
			t.Fatalf("%q: %v", c.rules, err)
		}
		if got := rules.Map(c.subject); got != c.want {
			t.Errorf("%q maps %q to %q, want %q", c.rules, c.subject, got, c.want)
		}
	}
	for _, bad := range []string{"RULE:abc", "RULE:a/b", "NOPE", "RULE:(/x/", "DEFAULT DEFAULT"} {
		if _, err := agent.ParsePrincipalRules(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCertReloader: a certificate renewed on disk is served by new TLS
// connections without a restart.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "reload CA")
	first := ca.Issue(t, pkix.Name{CommonName: "first"}, "127.0.0.1")
	certFile, keyFile := testutil.WriteCert(t, first, dir, "server")
	r, err := agent.NewCertReloader(certFile, keyFile, func(err error) { t.Errorf("reload: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("serves %q", got)
	}
	second := ca.Issue(t, pkix.Name{CommonName: "second"}, "127.0.0.1")
	tmp := t.TempDir()
	c2, k2 := testutil.WriteCert(t, second, tmp, "server")
	for _, f := range [][2]string{{c2, certFile}, {k2, keyFile}} {
		if err := os.Rename(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Minute) // a new mtime, whatever the file system's resolution
		os.Chtimes(f[1], future, future)
	}
	deadline := time.Now().Add(10 * time.Second)
	for served() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served after 10s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestListenersAdvertised: two agents with two named listeners each; Metadata through either listener lists
// both agents at their addresses on that listener.
func TestListenersAdvertised(t *testing.T) {
	listeners := func(cfg *agent.Config) {
		cfg.Listeners = []agent.Listener{
			{Name: "INTERNAL", Protocol: agent.Plaintext, Addr: "127.0.0.1:0"},
			{Name: "CLIENTS", Protocol: agent.Plaintext, Addr: "127.0.0.1:0"},
		}
	}
	a := agenttest.Start(t, agenttest.Options{Config: listeners})
	b := agenttest.StartPeer(t, a, agenttest.Options{Config: listeners})
	for _, name := range []string{"INTERNAL", "CLIENTS"} {
		want := map[int32]string{a.NodeID(): a.ListenerAddr(name), b.NodeID(): b.ListenerAddr(name)}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c := testutil.Dial(t, a.ListenerAddr(name))
			resp := c.Do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
			got := map[int32]string{}
			for _, br := range resp.Brokers {
				got[br.NodeID] = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
			}
			if len(got) == 2 && got[a.NodeID()] == want[a.NodeID()] && got[b.NodeID()] == want[b.NodeID()] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Metadata through %s: brokers %v, want %v", name, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
