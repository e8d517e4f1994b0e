package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/floe-io/floe/internal/agent"
)

// securityFlags are the flags of the agent's internal doors: the peer
// listener, where agents ask each other for cache blocks, and the admin
// listener.
type securityFlags struct {
	peerSecretFile                        string
	peerTLSCert, peerTLSKey, peerTLSCA    string
	adminTLSCert, adminTLSKey, adminToken string
	adminPeerCA                           string
}

// minSecretBytes is the shortest cluster secret accepted from a file or
// the environment.
const minSecretBytes = 16

func (f *securityFlags) register(fs *flag.FlagSet, cfg *agent.Config) {
	fs.StringVar(&cfg.PeerListen, "peer-listen", "", "`HOST:PORT` of the peer listener, where agents of a zone ask each other for cache blocks; never reachable by Kafka clients (default: the Kafka listener's host, a free port)")
	fs.StringVar(&cfg.PeerAdvertise, "peer-advertise", "", "`HOST:PORT` other agents dial for the peer listener (default: the advertised host, the bound peer port)")
	fs.BoolVar(&cfg.StoreNotices, "store-notices", false, "send commit notices through the metadata store's channel (PostgreSQL LISTEN/NOTIFY) only, instead of relaying them to the other agents over the peer listeners")
	fs.StringVar(&f.peerSecretFile, "peer-secret-file", "", "`FILE` holding the cluster secret agents prove to each other on the peer listeners (also FLOE_PEER_SECRET; default: a secret the metadata store makes once for the cluster)")
	fs.StringVar(&f.peerTLSCert, "peer-tls-cert", "", "PEM certificate `FILE` for the peer listener and for dialling peers (with --peer-tls-key and --peer-tls-ca: mutual TLS between agents)")
	fs.StringVar(&f.peerTLSKey, "peer-tls-key", "", "PEM private key `FILE` of --peer-tls-cert")
	fs.StringVar(&f.peerTLSCA, "peer-tls-ca", "", "PEM `FILE` of the CA that signs every agent's peer certificate")
	fs.StringVar(&f.adminTLSCert, "admin-tls-cert", "", "PEM certificate `FILE`: serve the admin listener over HTTPS (with --admin-tls-key)")
	fs.StringVar(&f.adminTLSKey, "admin-tls-key", "", "PEM private key `FILE` of --admin-tls-cert")
	fs.StringVar(&cfg.AdminAdvertise, "admin-advertise", "", "`URL` (http://HOST:PORT or https://HOST:PORT) other agents' consoles use for this agent's admin API (default: the admin listener's scheme and address, the advertised host when it listens on all addresses)")
	fs.StringVar(&f.adminPeerCA, "admin-peer-ca", "", "PEM `FILE` of the CA that signed the other agents' https admin certificates, which this agent's console asks (default: the system's roots and --admin-tls-cert's own certificates)")
	fs.StringVar(&f.adminToken, "admin-token-file", "", "`FILE` holding a bearer token that every admin request but /healthz must carry (also FLOE_ADMIN_TOKEN)")
}

// apply reads the files the flags name into cfg.
func (f *securityFlags) apply(cfg *agent.Config) error {
	secret, err := secretFrom(f.peerSecretFile, "FLOE_PEER_SECRET")
	if err != nil {
		return fmt.Errorf("peer secret: %w", err)
	}
	if secret != nil && len(secret) < minSecretBytes {
		return fmt.Errorf("peer secret: %d bytes, want at least %d", len(secret), minSecretBytes)
	}
	cfg.PeerSecret = secret
	if cfg.PeerServerTLS, cfg.PeerClientTLS, err = peerTLS(f.peerTLSCert, f.peerTLSKey, f.peerTLSCA); err != nil {
		return fmt.Errorf("peer TLS: %w", err)
	}
	switch {
	case f.adminTLSCert != "" && f.adminTLSKey != "":
		cert, err := tls.LoadX509KeyPair(f.adminTLSCert, f.adminTLSKey)
		if err != nil {
			return fmt.Errorf("admin TLS: %w", err)
		}
		cfg.AdminTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case f.adminTLSCert != "" || f.adminTLSKey != "":
		return errors.New("admin TLS: --admin-tls-cert and --admin-tls-key go together")
	}
	if cfg.AdminClientTLS, err = adminClientTLS(f.adminTLSCert, f.adminPeerCA); err != nil {
		return fmt.Errorf("admin peer CA: %w", err)
	}
	if a := cfg.AdminAdvertise; a != "" {
		if u, err := url.Parse(a); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("--admin-advertise %q: want http://HOST:PORT or https://HOST:PORT", a)
		}
	}
	token, err := secretFrom(f.adminToken, "FLOE_ADMIN_TOKEN")
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	cfg.AdminToken = string(token)
	return nil
}

// secretFrom reads a secret from file, or else from the environment
// variable env; nil if neither is set. Surrounding white space is dropped.
func secretFrom(file, env string) ([]byte, error) {
	var raw []byte
	switch {
	case file != "":
		var err error
		if raw, err = os.ReadFile(file); err != nil {
			return nil, err
		}
	case os.Getenv(env) != "":
		raw = []byte(os.Getenv(env))
	default:
		return nil, nil
	}
	s := bytes.TrimSpace(raw)
	if len(s) == 0 {
		return nil, errors.New("empty")
	}
	return s, nil
}

// peerTLS builds both sides of mutual TLS between agents: each presents
// cert, and accepts only peers whose certificate ca signed. Agents are
// identified by the CA, not by host names (peer addresses are often bare
// IPs), so the name in a certificate is not checked.
func peerTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, nil, errors.New("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return agent.PeerTLS(cert, pool)
}

// adminClientTLS is what the console trusts when it asks other agents'
// https admin APIs: the system's roots, the certificates in the agent's
// own admin certificate file (agents that share one self-signed
// certificate trust each other) and those in caFile. nil when there is
// neither file: the system's roots.
func adminClientTLS(certFile, caFile string) (*tls.Config, error) {
	if certFile == "" && caFile == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range []string{certFile, caFile} {
		if f == "" {
			continue
		}
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) && f == caFile {
			return nil, fmt.Errorf("%s holds no PEM certificate", f)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
