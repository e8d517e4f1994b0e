package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
	"github.com/floe-io/floe/internal/objstore/s3"
	"github.com/floe-io/floe/internal/testutil"
)

// The real-server tests run when FLOE_TEST_S3_ENDPOINT is set, against
// an existing bucket (`scripts/services s3` starts versitygw and prints
// these variables):
//
//	FLOE_TEST_S3_ENDPOINT    http://127.0.0.1:7070
//	FLOE_TEST_S3_BUCKET      bucket name (default floe-test)
//	FLOE_TEST_S3_REGION      default us-east-1
//	FLOE_TEST_S3_PATH_STYLE  default true
//	FLOE_TEST_S3_ACCESS_KEY, FLOE_TEST_S3_SECRET_KEY
//	                         credentials; if unset, the standard AWS chain
//
// Each test works under a fresh random key prefix and deletes what it
// wrote. Without the endpoint they skip, unless FLOE_REQUIRE_SERVICES=1.

// server says how to reach one S3 server.
type server struct {
	endpoint  string
	bucket    string
	region    string
	pathStyle bool
	creds     aws.CredentialsProvider // nil: the standard chain
}

func (s server) options(prefix string) s3.Options {
	return s3.Options{
		Bucket: s.bucket, Prefix: prefix, Endpoint: s.endpoint,
		Region: s.region, PathStyle: s.pathStyle, Credentials: s.creds,
	}
}

// realServer returns the server named by the environment, or skips.
func realServer(t *testing.T) server {
	t.Helper()
	endpoint := testutil.RequireService(t, "FLOE_TEST_S3_ENDPOINT", "s3")
	s := server{
		endpoint:  endpoint,
		bucket:    envOr("FLOE_TEST_S3_BUCKET", "floe-test"),
		region:    envOr("FLOE_TEST_S3_REGION", "us-east-1"),
		pathStyle: true,
	}
	if v := os.Getenv("FLOE_TEST_S3_PATH_STYLE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			t.Fatalf("FLOE_TEST_S3_PATH_STYLE=%q: %v", v, err)
		}
		s.pathStyle = b
	}
	if key := os.Getenv("FLOE_TEST_S3_ACCESS_KEY"); key != "" {
		s.creds = credentials.NewStaticCredentialsProvider(key, os.Getenv("FLOE_TEST_S3_SECRET_KEY"), "")
	}
	return s
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

const fakeBucket = "floe-test"

var fakeCreds = credentials.NewStaticCredentialsProvider("fake-key", "fake-secret", "")

// fakeServer starts gofakes3 in memory, with one bucket, behind an
// optional middleware.
func fakeServer(t *testing.T, wrap func(http.Handler) http.Handler, opts ...gofakes3.Option) server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(fakeBucket); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(backend, opts...).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return server{
		endpoint: srv.URL, bucket: fakeBucket, region: "us-east-1", pathStyle: true,
		creds: fakeCreds,
	}
}

// randomPrefix returns a prefix no other test run uses.
func randomPrefix(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "floe-test-" + hex.EncodeToString(b[:]) + "/"
}

// open opens s under prefix and deletes everything under it at cleanup.
func open(t *testing.T, s server, prefix string) *s3.Bucket {
	t.Helper()
	b, err := s3.Open(context.Background(), s.options(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAll(t, b) })
	return b
}

func deleteAll(t *testing.T, b objstore.Bucket) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var keys []string
	if err := b.List(ctx, "", func(oi objstore.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Errorf("cleanup: list: %v", err)
		return
	}
	for _, k := range keys {
		if err := b.Delete(ctx, k); err != nil {
			t.Errorf("cleanup: delete %s: %v", k, err)
		}
	}
}

// runContract runs the contract suite on s, plain and wrapped in
// objstore.Resilient, each bucket under a fresh prefix.
func runContract(t *testing.T, s server) {
	base := randomPrefix(t)
	var n atomic.Int64
	fresh := func(t *testing.T) *s3.Bucket {
		return open(t, s, fmt.Sprintf("%s%03d/", base, n.Add(1)))
	}
	t.Run("Plain", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Bucket { return fresh(t) })
	})
	t.Run("Resilient", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Bucket {
			return objstore.Resilient(fresh(t), objstore.ResilientOptions{})
		})
	})
}

func TestContractFake(t *testing.T) { runContract(t, fakeServer(t, nil)) }
func TestContractReal(t *testing.T) { runContract(t, realServer(t)) }

// testPrefixIsolation checks that a prefix is applied on the way in and
// stripped on the way out, and that neighbouring prefixes do not mix.
func testPrefixIsolation(t *testing.T, s server) {
	ctx := context.Background()
	base := randomPrefix(t)
	root := open(t, s, base)
	a := open(t, s, base+"a/")
	ab := open(t, s, base+"a/b/")
	ax := open(t, s, base+"ax/")
	for _, put := range []struct {
		b   *s3.Bucket
		key string
	}{{a, "k"}, {a, "b-not-nested"}, {ab, "k"}, {ax, "k"}} {
		if err := put.b.Put(ctx, put.key, []byte(put.b.Prefix()+put.key)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		b    *s3.Bucket
		want []string
	}{
		{root, []string{"a/b-not-nested", "a/b/k", "a/k", "ax/k"}},
		{a, []string{"b-not-nested", "b/k", "k"}},
		{ab, []string{"k"}},
		{ax, []string{"k"}},
	}
	for _, tt := range tests {
		var got []string
		err := tt.b.List(ctx, "", func(oi objstore.ObjectInfo) error {
			got = append(got, oi.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List under %q = %q, want %q", tt.b.Prefix(), got, tt.want)
		}
	}
	// The same object seen through two prefixes.
	got, err := root.GetRange(ctx, "a/b/k", 0, -1)
	if err != nil || string(got) != base+"a/b/k" {
		t.Errorf("GetRange(a/b/k) through the parent prefix = %q, %v", got, err)
	}
	if _, err := ax.GetRange(ctx, "b/k", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("GetRange(b/k) under %q = %v, want ErrNotFound", ax.Prefix(), err)
	}
	// Deleting under one prefix leaves the others alone.
	if err := a.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*s3.Bucket{ab, ax} {
		if got, err := b.GetRange(ctx, "k", 0, -1); err != nil || string(got) != b.Prefix()+"k" {
			t.Errorf("after deleting %sk, GetRange(k) under %q = %q, %v", a.Prefix(), b.Prefix(), got, err)
		}
	}
}

func TestPrefixIsolationFake(t *testing.T) { testPrefixIsolation(t, fakeServer(t, nil)) }
func TestPrefixIsolationReal(t *testing.T) { testPrefixIsolation(t, realServer(t)) }

// testPagination lists n keys in pages of pageSize (0: the server's
// default, 1,000 on S3).
func testPagination(t *testing.T, s server, n int, pageSize int32) {
	ctx := context.Background()
	opts := s.options(randomPrefix(t))
	opts.ListPageSize = pageSize
	b, err := s3.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAll(t, b) })
	want := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		want[i] = fmt.Sprintf("p/%05d", i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.Put(ctx, want[i], []byte{byte(i)}); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	wg.Wait()
	var got []string
	if err := b.List(ctx, "p/", func(oi objstore.ObjectInfo) error {
		got = append(got, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List of %d keys in pages of %d returned %d keys (first %q), want them all in order",
			n, pageSize, len(got), got[:min(len(got), 3)])
	}
}

func TestPaginationFake(t *testing.T) {
	s := fakeServer(t, nil)
	t.Run("small pages", func(t *testing.T) { testPagination(t, s, 25, 4) })
	t.Run("1100 keys", func(t *testing.T) { testPagination(t, s, 1100, 0) })
}

func TestPaginationReal(t *testing.T) {
	s := realServer(t)
	t.Run("small pages", func(t *testing.T) { testPagination(t, s, 25, 4) })
	if os.Getenv("FLOE_TEST_S3_LARGE") == "1" {
		t.Run("1100 keys", func(t *testing.T) { testPagination(t, s, 1100, 0) })
	}
}

// TestCredentialsReal checks that credentials come from the standard AWS
// environment variables, and that wrong ones are refused (which
// gofakes3 cannot show: it checks none).
func TestCredentialsReal(t *testing.T) {
	s := realServer(t)
	key, secret := os.Getenv("FLOE_TEST_S3_ACCESS_KEY"), os.Getenv("FLOE_TEST_S3_SECRET_KEY")
	if key == "" {
		key, secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if key == "" {
		t.Skip("no credentials in FLOE_TEST_S3_ACCESS_KEY or AWS_ACCESS_KEY_ID")
	}
	isolateAWSConfig(t)
	ctx := context.Background()
	s.creds = nil

	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	b := open(t, s, randomPrefix(t))
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("Put with credentials from the environment: %v", err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", secret+"-wrong")
	wrong, err := s3.Open(ctx, s.options(b.Prefix()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetRange(ctx, "k", 0, -1)
	if err == nil || errors.Is(err, objstore.ErrNotFound) || objstore.IsRetriable(err) {
		t.Errorf("GetRange with a wrong secret = %v, want a permanent, non-NotFound error", err)
	}
}

// isolateAWSConfig keeps the developer's own AWS profile out of a test.
func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestBigObjectReal moves one segment-sized object through the real
// server, whole and in blocks.
func TestBigObjectReal(t *testing.T) {
	s := realServer(t)
	ctx := context.Background()
	b := open(t, s, randomPrefix(t))
	data := make([]byte, 8<<20+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "segments/big", data); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetRange(ctx, "segments/big", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetRange(whole) = %d bytes, %v; want the %d put", len(got), err, len(data))
	}
	const block = 4 << 20
	for off := int64(0); off < int64(len(data)); off += block {
		n := min(block, int64(len(data))-off)
		got, err := b.GetRange(ctx, "segments/big", off, n)
		if err != nil || !bytes.Equal(got, data[off:off+n]) {
			t.Fatalf("GetRange(%d, %d) = %d bytes, %v", off, n, len(got), err)
		}
	}
}

// testResilience puts a misbehaving proxy in front of s: the first GET
// stalls, the first PUT fails with 503. Wrapped in objstore.Resilient, the
// stalled GET is hedged and the PUT retried.
func testResilience(t *testing.T, s server) {
	target, err := url.Parse(s.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var gets, puts atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && puts.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<Error><Code>SlowDown</Code><Message>injected</Message></Error>`))
			return
		case r.Method == http.MethodGet && !r.URL.Query().Has("list-type") && gets.Add(1) == 1:
			select { // a stalled response, until the client gives up on it
			case <-r.Context().Done():
				return
			case <-time.After(30 * time.Second):
			}
		}
		// The client signed the proxy's host name, which Director keeps.
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	proxied := s
	proxied.endpoint = srv.URL
	reg := prometheus.NewRegistry()
	b := objstore.Resilient(open(t, proxied, randomPrefix(t)), objstore.ResilientOptions{
		BaseDelay: time.Millisecond, HedgeAfter: 100 * time.Millisecond,
		Metrics: objstore.NewResilienceMetrics(reg),
	})
	ctx := context.Background()
	if err := b.Put(ctx, "k", []byte("value")); err != nil {
		t.Fatalf("Put through a 503: %v", err)
	}
	start := time.Now()
	got, err := b.GetRange(ctx, "k", 0, -1)
	if err != nil || string(got) != "value" {
		t.Fatalf("GetRange through a stall = %q, %v", got, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("hedged GetRange took %v", took)
	}
	if n := puts.Load(); n != 2 {
		t.Errorf("%d PUTs reached the proxy, want 2 (one retry)", n)
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("%d GETs reached the proxy, want 2 (one hedge)", n)
	}
	want := map[string]float64{
		"floe_objstore_retries_total": 1,
		"floe_objstore_hedges_total":  1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		if w, ok := want[mf.GetName()]; ok && sum != w {
			t.Errorf("%s = %v, want %v", mf.GetName(), sum, w)
		}
	}
}

func TestResilienceFake(t *testing.T) { testResilience(t, fakeServer(t, nil)) }
func TestResilienceReal(t *testing.T) { testResilience(t, realServer(t)) }
