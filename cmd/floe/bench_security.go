package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// clientSecurityFlags are a Kafka client's security settings, named as
// librdkafka names them: what `floe bench` uses against a TLS or SASL
// listener.
type clientSecurityFlags struct {
	protocol, mechanism, user, password, caFile, certFile, keyFile, serverName string
}

func (f *clientSecurityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.protocol, "security-protocol", "PLAINTEXT", "how clients connect: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (security.protocol)")
	fs.StringVar(&f.mechanism, "sasl-mechanism", "SCRAM-SHA-512", "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (sasl.mechanism)")
	fs.StringVar(&f.user, "sasl-username", "", "SASL user name (sasl.username)")
	fs.StringVar(&f.password, "sasl-password", "", "SASL password, or the token for OAUTHBEARER (sasl.password; also FLOE_SASL_PASSWORD)")
	fs.StringVar(&f.caFile, "ssl-ca", "", "PEM `FILE` of the CA that signed the listener's certificate (ssl.ca.location; default: the system's)")
	fs.StringVar(&f.certFile, "ssl-cert", "", "PEM client certificate `FILE` for mutual TLS (ssl.certificate.location)")
	fs.StringVar(&f.keyFile, "ssl-key", "", "PEM private key `FILE` of --ssl-cert (ssl.key.location)")
	fs.StringVar(&f.serverName, "ssl-server-name", "", "host name to verify the listener's certificate against (default: the broker's host)")
}

// opts returns the client options the flags ask for.
func (f *clientSecurityFlags) opts() ([]kgo.Opt, error) {
	proto := strings.ToUpper(f.protocol)
	var opts []kgo.Opt
	switch proto {
	case "PLAINTEXT", "SASL_PLAINTEXT":
	case "SSL", "SASL_SSL":
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}
		if f.caFile != "" {
			pem, err := os.ReadFile(f.caFile)
			if err != nil {
				return nil, fmt.Errorf("--ssl-ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ssl-ca %s: no PEM certificate", f.caFile)
			}
		}
		if f.certFile != "" || f.keyFile != "" {
			cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
			if err != nil {
				return nil, fmt.Errorf("--ssl-cert/--ssl-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	default:
		return nil, fmt.Errorf("--security-protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", f.protocol)
	}
	if !strings.HasPrefix(proto, "SASL_") {
		return opts, nil
	}
	password := f.password
	if password == "" {
		password = os.Getenv("FLOE_SASL_PASSWORD")
	}
	var mech sasl.Mechanism
	switch strings.ToUpper(f.mechanism) {
	case "PLAIN":
		mech = plain.Auth{User: f.user, Pass: password}.AsMechanism()
	case "SCRAM-SHA-256":
		mech = scram.Auth{User: f.user, Pass: password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		mech = scram.Auth{User: f.user, Pass: password}.AsSha512Mechanism()
	case "OAUTHBEARER":
		mech = oauth.Auth{Token: password}.AsMechanism()
	default:
		return nil, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", f.mechanism)
	}
	if password == "" || (f.user == "" && strings.ToUpper(f.mechanism) != "OAUTHBEARER") {
		return nil, errors.New("SASL needs --sasl-username and --sasl-password (or FLOE_SASL_PASSWORD)")
	}
	return append(opts, kgo.SASL(mech)), nil
}
