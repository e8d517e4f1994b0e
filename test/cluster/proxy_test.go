package cluster

// A fault-injecting HTTP proxy in front of the S3 server (the nemesis's,
// which floe torture uses too): agents pointed at it see object PUTs and
// GETs fail with 503 SlowDown, GETs answer late, and, during an outage,
// every object request fail.

import (
	"testing"

	"github.com/floe-io/floe/internal/nemesis"
)

// startFaultProxy proxies to the S3 server at target; bucket is the
// bucket path-style requests name first. It stops when the test ends.
func startFaultProxy(t *testing.T, target, bucket string) *nemesis.BucketProxy {
	t.Helper()
	p, err := nemesis.StartBucketProxy(target, bucket, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
