package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/wire"
)

// Kafka's security protocols: what a listener wraps its connections in.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Listener is one Kafka listener, as Kafka's listeners setting names
// them: NAME://HOST:PORT with a security protocol.
type Listener struct {
	// Name is the listener name; clients that connect through it are
	// told the other agents' addresses of the listener with the same
	// name. Default: the protocol.
	Name string
	// Protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default
	// PLAINTEXT).
	Protocol string
	// Addr is the HOST:PORT to listen on (port 0 picks a free port).
	Addr string
	// Advertise is the HOST:PORT clients of this listener are told to
	// connect to (default: the bound address).
	Advertise string
}

func (l Listener) tls() bool  { return l.Protocol == SSL || l.Protocol == SASLSSL }
func (l Listener) sasl() bool { return l.Protocol == SASLPlaintext || l.Protocol == SASLSSL }

// ParseListeners reads Kafka's listeners syntax: a comma-separated list
// of NAME://HOST:PORT, where NAME is a security protocol or, with
// protocolMap (Kafka's listener.security.protocol.map, NAME:PROTOCOL
// pairs), any listener name. advertised, in the same syntax, gives
// listeners other advertised addresses.
func ParseListeners(listeners, advertised, protocolMap string) ([]Listener, error) {
	protocols := map[string]string{}
	for _, pair := range splitList(protocolMap) {
		name, proto, ok := strings.Cut(pair, ":")
		if !ok || !validProtocol(proto) {
			return nil, fmt.Errorf("listener protocol map: %q is not NAME:PROTOCOL (protocols: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)", pair)
		}
		protocols[strings.ToUpper(name)] = proto
	}
	parse := func(s string) (name, addr string, err error) {
		name, addr, ok := strings.Cut(s, "://")
		if !ok || name == "" {
			return "", "", fmt.Errorf("listener %q is not NAME://HOST:PORT", s)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", fmt.Errorf("listener %q: %w", s, err)
		}
		return strings.ToUpper(name), addr, nil
	}
	var out []Listener
	for _, s := range splitList(listeners) {
		name, addr, err := parse(s)
		if err != nil {
			return nil, err
		}
		proto := protocols[name]
		if proto == "" {
			if !validProtocol(name) {
				return nil, fmt.Errorf("listener %s: not a security protocol, and not in the listener protocol map", name)
			}
			proto = name
		}
		for _, l := range out {
			if l.Name == name {
				return nil, fmt.Errorf("listener %s named twice", name)
			}
		}
		out = append(out, Listener{Name: name, Protocol: proto, Addr: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("no listeners")
	}
	for _, s := range splitList(advertised) {
		name, addr, err := parse(s)
		if err != nil {
			return nil, fmt.Errorf("advertised %w", err)
		}
		found := false
		for i := range out {
			if out[i].Name == name {
				out[i].Advertise, found = addr, true
			}
		}
		if !found {
			return nil, fmt.Errorf("advertised listener %s is not a listener", name)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func validProtocol(p string) bool {
	switch p {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
		return true
	}
	return false
}

// kafkaListener is a listener as the agent runs it.
type kafkaListener struct {
	Listener
	ln        net.Listener
	advertise protocol.Broker
	handler   *protocol.Handler
}

// listeners returns cfg's listeners: Listeners, or else one PLAINTEXT
// listener on Listen advertised as Advertise.
func (cfg Config) listeners() ([]Listener, error) {
	if len(cfg.Listeners) == 0 {
		return []Listener{{Name: Plaintext, Protocol: Plaintext, Addr: cfg.Listen, Advertise: cfg.Advertise}}, nil
	}
	ls := make([]Listener, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		if l.Protocol == "" {
			l.Protocol = Plaintext
		}
		if !validProtocol(l.Protocol) {
			return nil, fmt.Errorf("listener %s: unknown security protocol %q", l.Name, l.Protocol)
		}
		if l.Name == "" {
			l.Name = l.Protocol
		}
		if l.tls() && cfg.TLS == nil {
			return nil, fmt.Errorf("listener %s: %s needs a TLS certificate", l.Name, l.Protocol)
		}
		if l.sasl() && len(cfg.SASLMechanisms) == 0 {
			return nil, fmt.Errorf("listener %s: %s needs SASL mechanisms", l.Name, l.Protocol)
		}
		ls[i] = l
	}
	return ls, nil
}

func advertisedAddr(addr string, bound net.Addr) (protocol.Broker, error) {
	if addr == "" {
		addr = bound.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return protocol.Broker{}, fmt.Errorf("advertised address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return protocol.Broker{}, fmt.Errorf("advertised port %q: %w", port, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return protocol.Broker{Host: host, Port: int32(p)}, nil
}

// ListenerAddr is the bound address of the listener named name, or "".
func (a *Agent) ListenerAddr(name string) string {
	for _, l := range a.listeners {
		if l.Name == name {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// CertReloader serves a certificate from PEM files, read again when
// either file's modification time changes (looked at no more than every
// few seconds), so that renewed certificates are served without a
// restart. A failed reload (a half-written pair) keeps the certificate
// in use and is reported to onError; the next change is tried again.
// The files are read by the handshake that finds the check due, without
// a lock; other handshakes meanwhile get the current certificate.
type CertReloader struct {
	certFile, keyFile string
	every             time.Duration
	onError           func(error)
	cert              atomic.Pointer[tls.Certificate]

	mu      sync.Mutex
	mtimes  [2]time.Time
	checked time.Time
	loading bool
}

// NewCertReloader loads the certificate once; onError (optional) hears
// of failed reloads.
func NewCertReloader(certFile, keyFile string, onError func(error)) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, every: 5 * time.Second, onError: onError}
	m, cert, err := r.read()
	if err != nil {
		return nil, err
	}
	r.mtimes, r.checked = m, time.Now()
	r.cert.Store(cert)
	return r, nil
}

func (r *CertReloader) modTimes() ([2]time.Time, error) {
	var out [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, err
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

func (r *CertReloader) read() ([2]time.Time, *tls.Certificate, error) {
	m, err := r.modTimes()
	if err != nil {
		return m, nil, err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return m, nil, err
	}
	return m, &cert, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now()
	r.mu.Lock()
	due := !r.loading && now.Sub(r.checked) >= r.every
	last := r.mtimes
	if due {
		r.checked, r.loading = now, true
	}
	r.mu.Unlock()
	if due {
		m, err := r.modTimes()
		if err == nil && m != last {
			var cert *tls.Certificate
			if m, cert, err = r.read(); err == nil {
				r.cert.Store(cert)
			}
		}
		if err != nil && r.onError != nil {
			r.onError(err)
		}
		r.mu.Lock()
		if err == nil {
			r.mtimes = m
		}
		r.loading = false
		r.mu.Unlock()
	}
	return r.cert.Load(), nil
}

// ServerTLS is the Kafka listeners' TLS: TLS 1.2 or later, the
// certificate from certs; with clientCAs, clients may present a
// certificate, which must chain to one of them (mutual TLS; the
// certificate's subject becomes the connection's principal on SSL
// listeners). requireClientCert refuses clients without one.
func ServerTLS(certs *CertReloader, clientCAs *x509.CertPool, requireClientCert bool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if requireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg
}

// PrincipalRules map a client certificate's subject (RFC 2253 form,
// "CN=alice,OU=eng,O=Example") to a user name, like Kafka's
// ssl.principal.mapping.rules: a comma-separated list of
// RULE:pattern/replacement/[LU] and DEFAULT, tried in order; the first
// whose pattern matches the whole subject decides. DEFAULT is the subject
// unchanged. No rules is DEFAULT.
type PrincipalRules []principalRule

type principalRule struct {
	def     bool
	re      *regexp.Regexp
	replace string
	caseFn  func(string) string
}

// ParsePrincipalRules reads rules in Kafka's syntax.
func ParsePrincipalRules(s string) (PrincipalRules, error) {
	var rules PrincipalRules
	rest := strings.TrimSpace(s)
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			rules = append(rules, principalRule{def: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			rest = rest[len("RULE:"):]
			pattern, r, ok := cutUnescaped(rest, '/')
			if !ok {
				return nil, fmt.Errorf("principal rule: %q lacks /replacement/", s)
			}
			replace, r, ok := cutUnescaped(r, '/')
			if !ok {
				return nil, fmt.Errorf("principal rule: %q lacks the closing /", s)
			}
			rule := principalRule{replace: strings.ReplaceAll(replace, `\/`, "/")}
			if strings.HasPrefix(r, "L") {
				rule.caseFn, r = strings.ToLower, r[1:]
			} else if strings.HasPrefix(r, "U") {
				rule.caseFn, r = strings.ToUpper, r[1:]
			}
			re, err := regexp.Compile(`^(?:` + strings.ReplaceAll(pattern, `\/`, "/") + `)$`)
			if err != nil {
				return nil, fmt.Errorf("principal rule %q: %w", pattern, err)
			}
			rule.re, rest = re, r
			rules = append(rules, rule)
		default:
			return nil, fmt.Errorf("principal rules: %q: want RULE:pattern/replacement/[LU] or DEFAULT", rest)
		}
		rest = strings.TrimSpace(rest)
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("principal rules: %q: rules are separated by commas", rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return rules, nil
}

// cutUnescaped cuts s at the first sep not preceded by a backslash.
func cutUnescaped(s string, sep byte) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Map returns the user name for subject.
func (rules PrincipalRules) Map(subject string) string {
	if len(rules) == 0 {
		return subject
	}
	for _, r := range rules {
		if r.def {
			return subject
		}
		m := r.re.FindStringSubmatchIndex(subject)
		if m == nil {
			continue
		}
		out := string(r.re.ExpandString(nil, r.replace, subject, m))
		if r.caseFn != nil {
			out = r.caseFn(out)
		}
		return out
	}
	// Kafka fails the connection when no rule matches; a principal
	// nobody can grant anything to does the same for ACLs.
	return subject
}

// tlsPrincipal is the principal of a TLS connection: the mapped subject
// of the client's certificate, or ANONYMOUS without one.
func tlsPrincipal(cs tls.ConnectionState, rules PrincipalRules) string {
	if len(cs.PeerCertificates) == 0 {
		return wire.AnonymousPrincipal
	}
	return "User:" + rules.Map(cs.PeerCertificates[0].Subject.String())
}
