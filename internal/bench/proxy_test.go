package bench_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/objstore/s3"
	"github.com/floe-io/floe/internal/testutil"
)

// TestLatencyProxy puts the proxy between the S3 backend and gofakes3 and
// checks that requests still work (the SDK's signature survives the hop)
// and that each one waited at least the injected minimum. It asserts lower
// bounds only, never a speed.
func TestLatencyProxy(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("floe-test"); err != nil {
		t.Fatal(err)
	}
	fake := httptest.NewServer(gofakes3.New(backend).Server())
	defer fake.Close()

	lat := bench.LatencyRange{Min: 40 * time.Millisecond, Max: 60 * time.Millisecond}
	proxy, err := bench.StartLatencyProxy(fake.URL, lat, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	ctx := context.Background()
	b, err := s3.Open(ctx, s3.Options{
		Bucket: "floe-test", Endpoint: proxy.Endpoint(), Region: "us-east-1", PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("key", "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("0123456789")
	timed := func(name string, op func() error) {
		t.Helper()
		start := time.Now()
		if err := op(); err != nil {
			t.Fatalf("%s through the proxy: %v", name, err)
		}
		if took := time.Since(start); took < lat.Min {
			t.Errorf("%s took %v, less than the injected minimum %v", name, took, lat.Min)
		}
	}
	timed("put", func() error { return b.Put(ctx, "k", data) })
	timed("get", func() error {
		got, err := b.GetRange(ctx, "k", 2, 3)
		if err == nil && !bytes.Equal(got, data[2:5]) {
			t.Errorf("get: %q, want %q", got, data[2:5])
		}
		return err
	})
	if s := proxy.Stats(); !strings.Contains(s, "PUT 1") || !strings.Contains(s, "GET 1") {
		t.Errorf("proxy stats %q: want PUT 1 and GET 1", s)
	}
}
