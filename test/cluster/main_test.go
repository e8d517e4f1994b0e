// Package cluster runs Floe as users run it: several `floe agent`
// processes on a real PostgreSQL and a real S3-compatible server
// (versitygw), driven by real clients (franz-go, kcat). It checks what
// issue 4 promises of a cluster of stateless agents:
//
//   - agents can be SIGKILLed and replaced under load without losing an
//     acknowledged record, duplicating one for idempotent producers or
//     reordering a partition, while a consumer group reads exactly once
//     by its committed offsets (TestThreeAgentsKillAndReplace), also with
//     SASL_SSL listeners, SCRAM users and ACLs on
//     (TestThreeAgentsKillAndReplaceSecure, see env.secure);
//   - a database restart fails produce requests with retriable errors
//     only, and they succeed again afterwards (TestDatabaseRestartDuringLoad);
//   - bucket errors and slow GETs are retried and hedged, and what is not
//     absorbed reaches clients as retriable errors (TestBucketFaultsAreRetriable);
//   - consumers reading through several agents of a zone cost about one
//     bucket GET per block (TestFiveConsumersOneGetPerBlock).
//   - transactions survive crashes: a consume-transform-produce copy in
//     transactions holds every input record exactly once while a seeded
//     nemesis SIGKILLs and restarts the agents (TestExactlyOnceUnderKills),
//     and a transaction whose coordinator, partition leader or database
//     crashes at a chosen step ends committed or aborted as a whole,
//     unseen by read_committed until then (TestTransactionCrashPoints).
//   - agents on `floe control` with two control processes on one journal
//     lose, duplicate and reorder nothing while the control leader is
//     SIGKILLed (twice) or stopped past its lease under load
//     (TestControlLeaderKilledUnderLoad), also when takeovers open the
//     vcluster from snapshots in the bucket
//     (TestControlLeaderKilledUnderLoadFromSnapshots).
//   - agents with --produce-through-metastore-outage keep acknowledging
//     while the only control process is dead for 60 s, and every
//     acknowledged record is in the log once afterwards, in order per
//     producer and partition (TestProduceThroughControlOutage; on
//     PostgreSQL TestProduceThroughDatabaseOutage), also when an agent
//     is SIGKILLed during the outage and started again under its
//     --outage-manifest-name (TestProduceThroughOutageAgentKilled).
//
// With FLOE_TEST_CLUSTER_METASTORE=control, the agents of every test
// that does not start its own control plane run on `floe control`
// instead of PostgreSQL: two control processes on the test's database
// as their journal, backing up to the test bucket, and agents whose
// --metastore lists both (env.startControlPlane). Tests whose meaning
// depends on PostgreSQL say what they do there (onControlPlane).
//
// TestMain builds the floe binary once. The servers come from
// scripts/services (eval "$(scripts/services postgres s3)"); without them
// the tests skip, unless FLOE_REQUIRE_SERVICES=1. Every test has its own
// database and its own key prefix in the bucket. FLOE_CLUSTER_VERBOSE=1
// shows the agents' logs even when a test passes.
package cluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/nemesis"
	"github.com/floe-io/floe/internal/testutil"
)

// floeBin is the floe binary TestMain builds.
var floeBin string

func TestMain(m *testing.M) { testutil.RunWithFloeBinary(m, "cluster", &floeBin) }

func verbose() bool { return os.Getenv("FLOE_CLUSTER_VERBOSE") != "" }

// onControlPlane reports whether the tests' agents run on `floe control`
// (FLOE_TEST_CLUSTER_METASTORE=control) rather than on PostgreSQL.
func onControlPlane() bool { return os.Getenv("FLOE_TEST_CLUSTER_METASTORE") == "control" }

// env is what one test's agents run on: a fresh database and a key prefix
// of its own in the test bucket.
type env struct {
	s3        testutil.S3Server
	serverURL string         // the PostgreSQL server
	pgURL     string         // the test's database: the agents' store, or the control plane's journal
	dbURL     string         // the agents' --metastore: pgURL, or the vcluster of ctls
	prefix    string         // the test's key prefix, without a trailing slash
	ctls      []*controlProc // on the control plane: its two processes
	// sec, if set, makes the agents listen for SASL_SSL only and
	// authorize with ACLs; clients log in as e.as(user).
	sec *testutil.SecureKafka
}

// newEnv checks for the servers and gives the test a database and a key
// prefix. serverURL, if set, is a PostgreSQL server the test started
// itself; otherwise the one of FLOE_TEST_POSTGRES_URL. On the control
// plane (onControlPlane), the agents' store is a vcluster of two control
// processes journaling in that database.
func newEnv(t *testing.T, serverURL string) *env {
	t.Helper()
	e := newPostgresEnv(t, serverURL)
	if onControlPlane() {
		e.startControlPlane(t)
	}
	return e
}

// controlTTL is the lease TTL of the control plane of newEnv, and the
// agents' ping timeout.
const controlTTL = 3 * time.Second

// startControlPlane starts two `floe control` processes with e's
// database as their journal and the test bucket (a prefix of their own)
// as their backup bucket, creates a vcluster, and points e's agents at
// both processes.
func (e *env) startControlPlane(t *testing.T) {
	t.Helper()
	flags := []string{"--lease-ttl", controlTTL.String(), "--bucket", e.s3.BucketURL(e.s3.Endpoint, e.prefix+"-control")}
	e.ctls = []*controlProc{startControl(t, e, flags...), startControl(t, e, flags...)}
	for i, c := range e.ctls {
		c.Name = fmt.Sprintf("control c%d", i)
	}
	key := e.ctls[0].createVCluster(t, "cluster")
	e.dbURL = fmt.Sprintf("floe://%s,%s/cluster?key=%s&ping_timeout=%v", e.ctls[0].listen, e.ctls[1].listen, key, controlTTL)
	t.Logf("agents on floe control: %s and %s, journal %s", e.ctls[0].listen, e.ctls[1].listen, e.pgURL)
}

// controlKillFault is, on the control plane, a nemesis fault that
// SIGKILLs the process leading the vcluster (none while a takeover is
// under way) and, healed, starts every stopped one again (standing by).
func (e *env) controlKillFault() nemesis.Fault {
	return nemesis.New("kill", "control-leader",
		func(context.Context) error {
			for _, c := range e.ctls {
				if ep, _ := c.epoch("cluster"); ep > 0 {
					fmt.Fprintf(c.log, "--- %s: SIGKILL (leading at epoch %d) ---\n", time.Now().Format("15:04:05.000"), ep)
					return c.Kill()
				}
			}
			return nil
		},
		func(ctx context.Context) error {
			for _, c := range e.ctls {
				if !c.Running() {
					if err := c.Start(ctx); err != nil {
						return err
					}
				}
			}
			return nil
		})
}

// newPostgresEnv is newEnv with the agents on PostgreSQL whatever the
// mode: for the tests that start control processes of their own.
func newPostgresEnv(t *testing.T, serverURL string) *env {
	t.Helper()
	if serverURL == "" {
		serverURL = testutil.RequirePostgres(t)
	}
	s3 := testutil.RequireS3(t)
	e := &env{s3: s3, serverURL: serverURL, prefix: testutil.RandomName("cluster-")}
	e.pgURL = testutil.CreateDatabase(t, serverURL, "floe_cluster_")
	e.dbURL = e.pgURL
	t.Logf("database %s, objects under s3://%s/%s/", e.pgURL, s3.Bucket, e.prefix)
	return e
}

// secure turns security on for e's agents, before the first starts: one
// SASL_SSL listener each (a certificate from a test CA), SCRAM-SHA-512
// users admin (the super user), producer and consumer in the test's
// database, and --authorizer acl. Nothing is granted yet.
func (e *env) secure(t *testing.T) {
	t.Helper()
	e.sec = testutil.NewSecureKafka(t, adminUser, producerUser, consumerUser)
	e.sec.CreateUsers(t, floeBin, "--metastore", e.dbURL)
}

// requireServices skips (or fails) before a test starts anything of its own.
func requireServices(t *testing.T) {
	t.Helper()
	testutil.RequirePostgres(t)
	testutil.RequireS3(t)
}

// bucketURL is the test's bucket URL through endpoint ("" for the
// server's own endpoint).
func (e *env) bucketURL(endpoint string) string {
	if endpoint == "" {
		endpoint = e.s3.Endpoint
	}
	return e.s3.BucketURL(endpoint, e.prefix)
}
