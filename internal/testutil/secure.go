package testutil

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SecureKafka is what a test needs to run floe agents (as processes) with
// one SASL_SSL listener and Kafka ACLs, and to connect to them as one of
// a few SCRAM-SHA-512 users: a CA, the agents' certificate for 127.0.0.1
// and its key in files, and a random password per user. The first user is
// the super user, who creates topics and grants the others what they need.
type SecureKafka struct {
	CA       *CA
	CAFile   string // PEM, for kcat's ssl.ca.location
	CertFile string // the agents' --tls-cert
	KeyFile  string // the agents' --tls-key
	Super    string // the super user's name

	passwords map[string]string
}

// NewSecureKafka makes the CA, the agents' certificate and the passwords
// of super and users, in a temporary directory of t. Nothing is in a
// metadata store yet: see CreateUsers.
func NewSecureKafka(t testing.TB, super string, users ...string) *SecureKafka {
	t.Helper()
	dir := t.TempDir()
	ca := NewCA(t, "floe test CA")
	s := &SecureKafka{CA: ca, CAFile: ca.WriteCA(t, dir, "ca.pem"), Super: super, passwords: map[string]string{}}
	s.CertFile, s.KeyFile = WriteCert(t, ca.Issue(t, pkix.Name{CommonName: "floe agent"}, "127.0.0.1", "localhost"), dir, "agent")
	for _, u := range append([]string{super}, users...) {
		s.passwords[u] = RandomName(u + "-")
	}
	return s
}

// CreateUsers runs `floe users set` (the binary at floeBin) for every user,
// the password on stdin, in the metadata store that store names
// (--metastore URL or --data-dir DIR). The store must not be locked by a
// running playground.
func (s *SecureKafka) CreateUsers(t testing.TB, floeBin string, store ...string) {
	t.Helper()
	for u, pw := range s.passwords {
		args := append(append([]string{"users", "set"}, store...), "--mechanism", "SCRAM-SHA-512", u)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, floeBin, args...)
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("floe %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// AgentArgs are the flags that make an agent (or playground) listen for
// SASL_SSL at hostPort (one listener, advertised as bound), offer
// SCRAM-SHA-512 only and authorize every request with ACLs, the super
// user excepted.
func (s *SecureKafka) AgentArgs(hostPort string) []string {
	return []string{
		"--listeners", "SASL_SSL://" + hostPort,
		"--tls-cert", s.CertFile, "--tls-key", s.KeyFile,
		"--sasl-mechanisms", "SCRAM-SHA-512",
		"--authorizer", "acl", "--super-users", "User:" + s.Super,
	}
}

// Password is user's password.
func (s *SecureKafka) Password(t testing.TB, user string) string {
	t.Helper()
	pw, ok := s.passwords[user]
	if !ok {
		t.Fatalf("no SCRAM user %q in this test", user)
	}
	return pw
}

// KgoOpts make a franz-go client log in as user with SCRAM-SHA-512 over
// TLS, trusting the test CA (the server name is the dialled host's).
func (s *SecureKafka) KgoOpts(t testing.TB, user string) []kgo.Opt {
	t.Helper()
	return []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{RootCAs: s.CA.Pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: s.Password(t, user)}.AsSha512Mechanism()),
	}
}

// KcatArgs make kcat (librdkafka) log in as user the same way.
func (s *SecureKafka) KcatArgs(t testing.TB, user string) []string {
	t.Helper()
	return []string{
		"-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
		"-X", "sasl.username=" + user, "-X", "sasl.password=" + s.Password(t, user),
		"-X", "ssl.ca.location=" + s.CAFile,
	}
}

// Grant has the super user allow user ops on the named topics and groups
// (literal names, from any host), through seeds.
func (s *SecureKafka) Grant(t testing.TB, seeds []string, user string, topics, groups []string, ops ...kadm.ACLOperation) {
	t.Helper()
	cl, err := kgo.NewClient(append(s.KgoOpts(t, s.Super), kgo.SeedBrokers(seeds...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b := kadm.NewACLs().Allow("User:" + user).AllowHosts().
		MaybeTopics(topics...).MaybeGroups(groups...).
		Operations(ops...).ResourcePatternType(kadm.ACLPatternLiteral)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	results, err := kadm.NewClient(cl).CreateACLs(ctx, b)
	if err != nil {
		t.Fatalf("grant %s %v on topics %v, groups %v: %v", user, ops, topics, groups, err)
	}
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("grant %s %v on %v %s: %v", user, r.Operation, r.Type, r.Name, r.Err)
		}
	}
}
