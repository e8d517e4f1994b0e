package testutil

// Real servers and clients for tests: the PostgreSQL, S3-compatible and
// Azure Blob servers that scripts/services starts on loopback, found
// through the environment it prints (eval "$(scripts/services postgres
// s3)"), and the external Kafka clients scripts/test installs.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireService returns the value of the environment variable name, which
// locates a server scripts/services starts (service names it there: postgres,
// s3, azblob). When it is empty the test is skipped, or fails if
// FLOE_REQUIRE_SERVICES=1 (as in CI, where a missing server must not pass as
// a skip).
func RequireService(t testing.TB, name, service string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	hint := `run: eval "$(scripts/services ` + service + `)"`
	if os.Getenv("FLOE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is not set and FLOE_REQUIRE_SERVICES=1; %s", name, hint)
	}
	t.Skipf("no %s server: %s is not set; %s", service, name, hint)
	return ""
}

// RequirePostgres returns FLOE_TEST_POSTGRES_URL, the URL of a PostgreSQL
// server the test may create databases on.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	return RequireService(t, "FLOE_TEST_POSTGRES_URL", "postgres")
}

// S3Server is an S3-compatible server with a bucket the test may write
// under its own key prefix.
type S3Server struct {
	Endpoint  string // http://HOST:PORT
	Bucket    string
	AccessKey string
	SecretKey string
}

// RequireS3 returns the S3-compatible server of FLOE_TEST_S3_ENDPOINT,
// FLOE_TEST_S3_BUCKET, FLOE_TEST_S3_ACCESS_KEY and FLOE_TEST_S3_SECRET_KEY.
func RequireS3(t testing.TB) S3Server {
	t.Helper()
	s := S3Server{
		Endpoint:  RequireService(t, "FLOE_TEST_S3_ENDPOINT", "s3"),
		Bucket:    os.Getenv("FLOE_TEST_S3_BUCKET"),
		AccessKey: os.Getenv("FLOE_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("FLOE_TEST_S3_SECRET_KEY"),
	}
	if s.Bucket == "" {
		s.Bucket = "floe-test"
	}
	return s
}

// BucketURL is an s3:// bucket URL for the server's bucket under prefix,
// reached through endpoint (the server's own, or a proxy in front of it).
func (s S3Server) BucketURL(endpoint, prefix string) string {
	q := url.Values{"endpoint": {endpoint}, "region": {"us-east-1"}, "path_style": {"true"}}
	return "s3://" + s.Bucket + "/" + prefix + "?" + q.Encode()
}

// Env is the environment a process needs to reach the server with the
// standard AWS chain: the key pair, and no shared configuration files or
// instance metadata lookups.
func (s S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// RequireClient returns the path of the external client program name,
// skipping the test when it is not on PATH, or failing it when
// FLOE_REQUIRE_CLIENTS is set (as scripts/test sets it after installing
// the clients).
func RequireClient(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		MissingClient(t, "%s not found on PATH: %v", name, err)
	}
	return path
}

// MissingClient skips the test because a client it needs is missing, or
// fails it when FLOE_REQUIRE_CLIENTS is set.
func MissingClient(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("FLOE_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s (FLOE_REQUIRE_CLIENTS is set; run scripts/test to install clients)", msg)
	}
	t.Skip(msg)
}

// RandomName returns prefix followed by 12 random hex digits: a name for a
// database or a key prefix that no other test run uses.
func RandomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// CreateDatabase creates a database named prefix plus random digits on the
// server of serverURL and returns the URL of the new database. The
// database is dropped (with any connections left to it) when the test
// ends.
func CreateDatabase(t testing.TB, serverURL, prefix string) string {
	t.Helper()
	name := RandomName(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", redactURL(serverURL), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
