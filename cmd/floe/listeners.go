package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/sasl"
)

// listenerFlags are the Kafka listeners' flags: listeners with their
// security protocols, TLS, and SASL (Kafka's names in the help).
type listenerFlags struct {
	listeners, advertised, protocolMap string
	tlsCert, tlsKey, tlsClientCA       string
	tlsClientAuth                      string
	principalRules                     string
	mechanisms                         string
	jwks, audience, issuer, claim      string
	maxReauth                          time.Duration
}

func (f *listenerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listeners, "listeners", "", "Kafka listeners, `LIST` of NAME://HOST:PORT where NAME is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, or a name of --listener-security-protocol-map (listeners; replaces --listen and --advertise)")
	fs.StringVar(&f.advertised, "advertised-listeners", "", "`LIST` of NAME://HOST:PORT clients of each listener are told to connect to (advertised.listeners; default: the bound addresses)")
	fs.StringVar(&f.protocolMap, "listener-security-protocol-map", "", "`LIST` of NAME:PROTOCOL giving listeners names of their own (listener.security.protocol.map), e.g. INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_SSL")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate `FILE` (chain) of the SSL and SASL_SSL listeners; read again when it changes")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.StringVar(&f.tlsClientCA, "tls-client-ca", "", "PEM `FILE` of the CAs whose client certificates are accepted (mutual TLS); on SSL listeners the certificate's subject is the principal")
	fs.StringVar(&f.tlsClientAuth, "tls-client-auth", "requested", "`MODE` with --tls-client-ca: required (no certificate, no connection) or requested (clients without one are User:ANONYMOUS on SSL listeners) (ssl.client.auth)")
	fs.StringVar(&f.principalRules, "ssl-principal-mapping-rules", "DEFAULT", "`RULES` mapping a client certificate's subject to a user name: RULE:pattern/replacement/[LU] and DEFAULT, comma-separated (ssl.principal.mapping.rules)")
	fs.StringVar(&f.mechanisms, "sasl-mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512", "`LIST` of SASL mechanisms SASL listeners offer: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (sasl.enabled.mechanisms); users: floe users set")
	fs.StringVar(&f.jwks, "oauth-jwks", "", "JWKS of the keys that sign OAUTHBEARER tokens, a `FILE` or an https:// URL (a file is read again when it changes, a URL hourly and when a token names an unknown key)")
	fs.StringVar(&f.audience, "oauth-audience", "", "`AUD` OAUTHBEARER tokens must be issued for (empty: not checked)")
	fs.StringVar(&f.issuer, "oauth-issuer", "", "`ISS` OAUTHBEARER tokens must come from (empty: not checked)")
	fs.StringVar(&f.claim, "oauth-principal-claim", "sub", "the token `CLAIM` that names the user")
	fs.DurationVar(&f.maxReauth, "connections-max-reauth", 0, "longest a SASL session lasts before the client must re-authenticate, capped by its token's expiry (connections.max.reauth.ms; 0: no limit)")
}

// apply sets cfg's listeners, TLS and SASL from the flags.
func (f *listenerFlags) apply(ctx context.Context, cfg *agent.Config, log func() *slog.Logger) error {
	if f.listeners == "" {
		if f.advertised != "" || f.protocolMap != "" {
			return errors.New("--advertised-listeners and --listener-security-protocol-map need --listeners")
		}
	} else {
		ls, err := agent.ParseListeners(f.listeners, f.advertised, f.protocolMap)
		if err != nil {
			return err
		}
		cfg.Listeners = ls
	}
	switch {
	case f.tlsCert != "" && f.tlsKey != "":
		certs, err := agent.NewCertReloader(f.tlsCert, f.tlsKey, func(err error) {
			l := log()
			if l == nil {
				l = slog.Default()
			}
			l.Warn("TLS certificate reload failed; serving the previous one", "err", err)
		})
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		var pool *x509.CertPool
		if f.tlsClientCA != "" {
			pem, err := os.ReadFile(f.tlsClientCA)
			if err != nil {
				return fmt.Errorf("TLS client CA: %w", err)
			}
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("TLS client CA %s: no PEM certificate", f.tlsClientCA)
			}
		}
		if f.tlsClientAuth != "required" && f.tlsClientAuth != "requested" {
			return fmt.Errorf("--tls-client-auth %q: want required or requested", f.tlsClientAuth)
		}
		cfg.TLS = agent.ServerTLS(certs, pool, f.tlsClientAuth == "required")
	case f.tlsCert != "" || f.tlsKey != "" || f.tlsClientCA != "":
		return errors.New("TLS: --tls-cert and --tls-key go together (and --tls-client-ca needs them)")
	}
	if cfg.TLS != nil && !slices.ContainsFunc(cfg.Listeners, func(l agent.Listener) bool { return l.Protocol == agent.SSL || l.Protocol == agent.SASLSSL }) {
		return errors.New("--tls-cert is for SSL and SASL_SSL listeners, and --listeners names none")
	}
	rules, err := agent.ParsePrincipalRules(f.principalRules)
	if err != nil {
		return err
	}
	cfg.PrincipalRules = rules
	cfg.SASLMechanisms = nil
	for _, m := range strings.Split(f.mechanisms, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
			cfg.SASLMechanisms = append(cfg.SASLMechanisms, m)
		}
	}
	cfg.MaxReauth = f.maxReauth
	if f.jwks != "" {
		keys, err := sasl.NewKeySet(ctx, f.jwks)
		if err != nil {
			return err
		}
		cfg.OAuth = sasl.NewTokenVerifier(keys, sasl.TokenOptions{Audience: f.audience, Issuer: f.issuer, PrincipalClaim: f.claim, Now: cfg.Clock})
	}
	return nil
}
