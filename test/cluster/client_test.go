package cluster

// Who the test's Kafka clients connect as: plain, or a SCRAM user over
// TLS when the test's agents are secure.

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil"
)

// The users of a secure test: the super user does the test's own work
// (topics, ACLs, reading the log back, finding coordinators); the
// producers and the group's members are granted only what they need.
const (
	adminUser    = "admin"
	producerUser = "producer"
	consumerUser = "consumer"
)

// client is who a test's Kafka client connects as: its client id (naming
// its zone, if any) and, on a secure cluster, the user it logs in as with
// SCRAM-SHA-512 over TLS. The zero value is a PLAINTEXT client, which is
// User:ANONYMOUS.
type client struct {
	id   string
	user string
	sec  *testutil.SecureKafka
}

// as is user on e's cluster: a plain client if e is not secure.
func (e *env) as(user string) client {
	if e.sec == nil {
		return client{}
	}
	return client{user: user, sec: e.sec}
}

// admin is the super user on a secure cluster, a plain client otherwise.
func (e *env) admin() client { return e.as(adminUser) }

// withID returns c with client id id.
func (c client) withID(id string) client {
	c.id = id
	return c
}

// opts are the options of a franz-go client of c bootstrapped from seeds.
func (c client) opts(t *testing.T, seeds ...string) []kgo.Opt {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	if c.id != "" {
		opts = append(opts, kgo.ClientID(c.id))
	}
	if c.sec != nil {
		opts = append(opts, c.sec.KgoOpts(t, c.user)...)
	}
	return opts
}

// newClient is a franz-go client of c with more options.
func (c client) newClient(t *testing.T, seeds []string, more ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(c.opts(t, seeds...), more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// kcatArgs are kcat's options for c's security (none when plain).
func (c client) kcatArgs(t *testing.T) []string {
	t.Helper()
	if c.sec == nil {
		return nil
	}
	return c.sec.KcatArgs(t, c.user)
}
