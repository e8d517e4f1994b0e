package s3_test

// Behaviour that needs a misbehaving or observed server: gofakes3 behind
// middleware that breaks or records requests.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/johannesboyne/gofakes3"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/s3"
)

// onGet applies change to the GET requests that reach the server.
func onGet(change func(w http.ResponseWriter, r *http.Request, next http.Handler)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && !r.URL.Query().Has("list-type") {
				change(w, r, next)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// truncatingWriter drops every byte after the first limit of the body.
type truncatingWriter struct {
	http.ResponseWriter
	limit int
}

func (w *truncatingWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > w.limit {
		p = p[:w.limit]
	}
	w.limit -= len(p)
	if _, err := w.ResponseWriter.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// TestRangeChecked shows that GetRange refuses answers that are not
// exactly the bytes asked for, whatever the server does.
func TestRangeChecked(t *testing.T) {
	data := []byte("0123456789abcdefghij")
	tests := []struct {
		name   string
		change func(w http.ResponseWriter, r *http.Request, next http.Handler)
	}{
		{"range ignored", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			r.Header.Del("Range")
			next.ServeHTTP(w, r)
		}},
		{"other range served", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			r.Header.Set("Range", "bytes=0-4")
			next.ServeHTTP(w, r)
		}},
		{"body cut short", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			// The connection closes before Content-Length bytes arrive.
			next.ServeHTTP(&truncatingWriter{ResponseWriter: w, limit: 2}, r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var broken atomic.Bool
			s := fakeServer(t, onGet(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if broken.Load() {
					tt.change(w, r, next)
					return
				}
				next.ServeHTTP(w, r)
			}))
			b := open(t, s, "")
			if err := b.Put(ctx, "k", data); err != nil {
				t.Fatal(err)
			}
			broken.Store(true)
			for _, r := range [][2]int64{{5, 5}, {5, -1}} {
				got, err := b.GetRange(ctx, "k", r[0], r[1])
				if err == nil {
					t.Errorf("GetRange(%d, %d) = %q and no error, from a broken server", r[0], r[1], got)
				}
			}
		})
	}
}

// TestErrorsClassified checks which failures come back as transient,
// which as missing objects, and that Resilient retries the first.
func TestErrorsClassified(t *testing.T) {
	ctx := context.Background()
	var failures atomic.Int64
	var status atomic.Int64
	s := fakeServer(t, onGet(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if failures.Add(-1) >= 0 {
			code := int(status.Load())
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(code)
			errCode := map[int]string{500: "InternalError", 503: "SlowDown", 403: "AccessDenied"}[code]
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + errCode +
				`</Code><Message>injected</Message></Error>`))
			return
		}
		next.ServeHTTP(w, r)
	}))
	b := open(t, s, "")
	if err := b.Put(ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		status    int
		transient bool
	}{{500, true}, {503, true}, {403, false}} {
		status.Store(int64(tt.status))
		failures.Store(1)
		_, err := b.GetRange(ctx, "k", 0, -1)
		if err == nil || errors.Is(err, objstore.ErrTransient) != tt.transient || objstore.IsRetriable(err) != tt.transient {
			t.Errorf("HTTP %d: GetRange = %v; want an error, transient %v", tt.status, err, tt.transient)
		}
	}
	if _, err := b.GetRange(ctx, "missing", 0, -1); !errors.Is(err, objstore.ErrNotFound) || objstore.IsRetriable(err) {
		t.Errorf("GetRange(missing) = %v, want ErrNotFound, not retriable", err)
	}

	r := objstore.Resilient(b, objstore.ResilientOptions{BaseDelay: time.Millisecond, HedgeAfter: -1})
	status.Store(503)
	failures.Store(2)
	if got, err := r.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "value" {
		t.Errorf("Resilient GetRange after two 503s = %q, %v; want the value", got, err)
	}
	status.Store(403)
	failures.Store(2)
	if _, err := r.GetRange(ctx, "k", 0, -1); err == nil {
		t.Error("Resilient GetRange after a 403 succeeded; it must not retry a permanent error")
	}
	if left := failures.Load(); left != 1 {
		t.Errorf("after a 403, %d injected failures left, want 1 (exactly one attempt)", left)
	}
}

// TestVirtualHosted checks that without path_style the bucket goes into
// the host name, and with it into the path.
func TestVirtualHosted(t *testing.T) {
	for _, pathStyle := range []bool{false, true} {
		var mu sync.Mutex
		var hosts, paths []string
		record := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hosts, paths = append(hosts, r.Host), append(paths, r.URL.Path)
				mu.Unlock()
				// gofakes3 matches the host name without the port.
				r.Host, _, _ = net.SplitHostPort(r.Host)
				next.ServeHTTP(w, r)
			})
		}
		s := fakeServer(t, record, gofakes3.WithHostBucketBase("s3.floe.test"))
		// Send every host name to the test server.
		addr := strings.TrimPrefix(s.endpoint, "http://")
		// A BuildableClient, because the SDK adds AWS_CA_BUNDLE to it.
		dialer := &net.Dialer{}
		client := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			}
		})
		_, port, _ := net.SplitHostPort(addr)
		opts := s.options("pre/")
		opts.Endpoint = "http://s3.floe.test:" + port
		opts.PathStyle = pathStyle
		opts.HTTPClient = client
		b, err := s3.Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := b.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatalf("path style %v: Put: %v", pathStyle, err)
		}
		if got, err := b.GetRange(ctx, "k", 0, -1); err != nil || string(got) != "v" {
			t.Fatalf("path style %v: GetRange = %q, %v", pathStyle, got, err)
		}
		wantHost, wantPath := fakeBucket+".s3.floe.test:"+port, "/pre/k"
		if pathStyle {
			wantHost, wantPath = "s3.floe.test:"+port, "/"+fakeBucket+"/pre/k"
		}
		mu.Lock()
		if hosts[0] != wantHost || paths[0] != wantPath {
			t.Errorf("path style %v: request to host %q path %q, want %q %q", pathStyle, hosts[0], paths[0], wantHost, wantPath)
		}
		mu.Unlock()
	}
}

// TestCredentialsFromEnvironment checks that requests are signed with
// the key in AWS_ACCESS_KEY_ID and the region in AWS_REGION when the
// options name neither.
func TestCredentialsFromEnvironment(t *testing.T) {
	isolateAWSConfig(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "floe-env-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "floe-env-secret")
	t.Setenv("AWS_REGION", "eu-central-1")
	var auth atomic.Value
	s := fakeServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth.Store(r.Header.Get("Authorization"))
			next.ServeHTTP(w, r)
		})
	})
	s.creds, s.region = nil, ""
	b := open(t, s, "")
	if err := b.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	got, _ := auth.Load().(string)
	if !strings.Contains(got, "Credential=floe-env-key/") || !strings.Contains(got, "/eu-central-1/s3/") {
		t.Errorf("Authorization = %q, want it signed by floe-env-key for eu-central-1", got)
	}
}

// TestDefaultRegion checks the us-east-1 default when nothing names a
// region.
func TestDefaultRegion(t *testing.T) {
	isolateAWSConfig(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	var auth atomic.Value
	s := fakeServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth.Store(r.Header.Get("Authorization"))
			next.ServeHTTP(w, r)
		})
	})
	s.region = ""
	b := open(t, s, "")
	if err := b.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, _ := auth.Load().(string); !strings.Contains(got, "/"+s3.DefaultRegion+"/s3/") {
		t.Errorf("Authorization = %q, want region %s", got, s3.DefaultRegion)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := s3.Open(ctx, s3.Options{}); err == nil {
		t.Error("Open without a bucket: no error")
	}
	if _, err := s3.Open(ctx, s3.Options{Bucket: "b-1", Prefix: "no-slash"}); err == nil {
		t.Error("Open with a prefix not ending in /: no error")
	}
	b, err := s3.Open(ctx, s3.Options{Bucket: "b-1", Endpoint: "http://127.0.0.1:1", PathStyle: true, Credentials: fakeCreds})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "", []byte("x")); err == nil {
		t.Error("Put with an empty key: no error")
	}
	// Nothing listens on port 1: a connection refusal is worth a retry.
	if _, err := b.GetRange(ctx, "k", 0, 1); !objstore.IsRetriable(err) {
		t.Errorf("GetRange from a closed port = %v, want a retriable error", err)
	}
}

// TestEndpointClosed checks that an httptest server gone away mid-test
// gives retriable errors (connection refused or reset).
func TestEndpointClosed(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	b, err := s3.Open(context.Background(), s3.Options{Bucket: "b-1", Endpoint: endpoint, PathStyle: true, Credentials: fakeCreds})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(context.Background(), "k", []byte("x")); !objstore.IsRetriable(err) {
		t.Errorf("Put to a closed server = %v, want a retriable error", err)
	}
}
