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
// TestMain builds the floe binary once. The servers come from
// scripts/services (eval "$(scripts/services postgres s3)"); without them
// the tests skip, unless FLOE_REQUIRE_SERVICES=1. Every test has its own
// database and its own key prefix in the bucket. FLOE_CLUSTER_VERBOSE=1
// shows the agents' logs even when a test passes.
package cluster

import (
	"os"
	"testing"

	"github.com/floe-io/floe/internal/testutil"
)

// floeBin is the floe binary TestMain builds.
var floeBin string

func TestMain(m *testing.M) { testutil.RunWithFloeBinary(m, "cluster", &floeBin) }

func verbose() bool { return os.Getenv("FLOE_CLUSTER_VERBOSE") != "" }

// env is what one test's agents run on: a fresh database and a key prefix
// of its own in the test bucket.
type env struct {
	s3        testutil.S3Server
	serverURL string // the PostgreSQL server
	dbURL     string // the test's database
	prefix    string // the test's key prefix, without a trailing slash
	// sec, if set, makes the agents listen for SASL_SSL only and
	// authorize with ACLs; clients log in as e.as(user).
	sec *testutil.SecureKafka
}

// newEnv checks for the servers and gives the test a database and a key
// prefix. serverURL, if set, is a PostgreSQL server the test started
// itself; otherwise the one of FLOE_TEST_POSTGRES_URL.
func newEnv(t *testing.T, serverURL string) *env {
	t.Helper()
	if serverURL == "" {
		serverURL = testutil.RequirePostgres(t)
	}
	s3 := testutil.RequireS3(t)
	e := &env{s3: s3, serverURL: serverURL, prefix: testutil.RandomName("cluster-")}
	e.dbURL = testutil.CreateDatabase(t, serverURL, "floe_cluster_")
	t.Logf("database %s, objects under s3://%s/%s/", e.dbURL, s3.Bucket, e.prefix)
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
