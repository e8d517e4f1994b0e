package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floe-io/floe/internal/testutil"
)

// TestAgentSASLOnPostgres goes the way an operator does: the first user
// is set in a PostgreSQL metadata store with floe users set, two agents
// start with a PLAINTEXT and a SASL_SSL listener, and a SCRAM client of
// the SASL_SSL listener is shown both agents at their SASL_SSL addresses
// and can produce; a wrong password is refused.
func TestAgentSASLOnPostgres(t *testing.T) {
	server := testutil.RequirePostgres(t)
	db := testutil.CreateDatabase(t, server, "floe_sasl_")
	dir := t.TempDir()
	ca := testutil.NewCA(t, "e2e CA")
	cert, key := testutil.WriteCert(t, ca.Issue(t, pkix.Name{CommonName: "agent"}, "127.0.0.1"), dir, "agent")

	stdin = strings.NewReader("op-password\n")
	defer func() { stdin = os.Stdin }()
	var out bytes.Buffer
	if err := usersCmd(context.Background(), []string{"set", "--metastore", db, "--mechanism", "SCRAM-SHA-512", "operator"}, &out, &out); err != nil {
		t.Fatalf("users set: %v\n%s", err, out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	var saslAddrs []string
	done := make(chan error, 2)
	for i := range 2 {
		plain, saslPort := freePort(t), freePort(t)
		saslAddrs = append(saslAddrs, "127.0.0.1:"+saslPort)
		args := []string{"--bucket", "file://" + dir + "/bucket", "--metastore", db, "--admin-listen", "",
			"--listeners", "PLAINTEXT://127.0.0.1:" + plain + ",SASL_SSL://127.0.0.1:" + saslPort,
			"--tls-cert", cert, "--tls-key", key, "--sasl-mechanisms", "SCRAM-SHA-512", "--node-id", strconv.Itoa(i), "--log-level", "warn"}
		go func() { done <- agentCmd(ctx, args, testWriter{t}) }()
	}
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}()

	client := func(password string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(saslAddrs[0]), kgo.AllowAutoTopicCreation(),
			kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}),
			kgo.SASL(scram.Auth{User: "operator", Pass: password}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	cl := client("op-password")
	deadline := time.Now().Add(20 * time.Second)
	for {
		// kadm's BrokerMetadata answers from the client's view; the raw
		// request shows what the agent says.
		meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		var got []string
		if err == nil {
			for _, b := range meta.Brokers {
				got = append(got, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
			}
		}
		if err == nil && len(got) == 2 && strings.Join(got, ",") == strings.Join(saslAddrs, ",") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("an agent stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("brokers through SASL_SSL: %v (%v), want %v", got, err, saslAddrs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "e2e", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := client("wrong").Ping(pctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
