package main

import (
	"crypto/x509/pkix"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
)

// TestListenerFlags: the listener, TLS and SASL flags of playground and
// agent, and the combinations they refuse.
func TestListenerFlags(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "flags CA")
	cert, key := testutil.WriteCert(t, ca.Issue(t, pkix.Name{CommonName: "agent"}, "127.0.0.1"), dir, "agent")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	parse := parseAgentFlags
	cfg, err := parse("--listeners", "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0", "--advertised-listeners", "SASL_SSL://kafka.example.com:9093",
		"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", caFile, "--sasl-mechanisms", "scram-sha-512, PLAIN",
		"--ssl-principal-mapping-rules", "RULE:^CN=(.*)$/$1/L,DEFAULT", "--connections-max-reauth", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 || cfg.Listeners[1].Advertise != "kafka.example.com:9093" || cfg.TLS == nil ||
		strings.Join(cfg.SASLMechanisms, ",") != "SCRAM-SHA-512,PLAIN" || cfg.PrincipalRules.Map("CN=Bob") != "bob" || cfg.MaxReauth.Hours() != 1 {
		t.Fatalf("config: %+v", cfg)
	}
	for name, args := range map[string][]string{
		"TLS without a TLS listener":     {"--tls-cert", cert, "--tls-key", key},
		"key without certificate":        {"--listeners", "SSL://:0", "--tls-key", key},
		"advertised without listeners":   {"--advertised-listeners", "SSL://a:1"},
		"bad rules":                      {"--ssl-principal-mapping-rules", "RULE:x"},
		"client CA that is no PEM":       {"--listeners", "SSL://:0", "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key},
		"unknown client auth":            {"--listeners", "SSL://:0", "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", caFile, "--tls-client-auth", "maybe"},
		"JWKS that does not exist":       {"--oauth-jwks", dir + "/nope.json"},
		"listener with unknown protocol": {"--listeners", "TLS://:0"},
	} {
		if _, err := parse(args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// parseAgentFlags parses args as the agent's flags and applies them.
func parseAgentFlags(args ...string) (agent.Config, error) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f agentFlags
	f.register(fs, "")
	if err := fs.Parse(args); err != nil {
		return agent.Config{}, err
	}
	return f.cfg, f.finish()
}
