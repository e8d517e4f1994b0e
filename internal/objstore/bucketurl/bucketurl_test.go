package bucketurl_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/azblob"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
	"github.com/floe-io/floe/internal/objstore/s3"
	"github.com/floe-io/floe/internal/testutil"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want bucketurl.Spec
	}{
		{"file:///var/lib/floe", bucketurl.Spec{Scheme: "file", Bucket: filepath.FromSlash("/var/lib/floe")}},
		{"file:///var/lib/floe/", bucketurl.Spec{Scheme: "file", Bucket: filepath.FromSlash("/var/lib/floe")}},
		{"file://localhost/data", bucketurl.Spec{Scheme: "file", Bucket: filepath.FromSlash("/data")}},
		{"file:///a/../b/./c", bucketurl.Spec{Scheme: "file", Bucket: filepath.FromSlash("/b/c")}},
		{"file:///with%20space", bucketurl.Spec{Scheme: "file", Bucket: filepath.FromSlash("/with space")}},
		{"FILE:///upper-scheme", bucketurl.Spec{Scheme: "file", Bucket: filepath.FromSlash("/upper-scheme")}},

		{"s3://my-bucket", bucketurl.Spec{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/", bucketurl.Spec{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/floe/prod", bucketurl.Spec{Scheme: "s3", Bucket: "my-bucket", Prefix: "floe/prod/"}},
		{"s3://my-bucket/floe/prod/", bucketurl.Spec{Scheme: "s3", Bucket: "my-bucket", Prefix: "floe/prod/"}},
		{"s3://my.dotted.bucket?region=eu-west-1", bucketurl.Spec{Scheme: "s3", Bucket: "my.dotted.bucket", Region: "eu-west-1"}},
		{
			"s3://floe?endpoint=http://localhost:9000&region=us-east-1&path_style=true",
			bucketurl.Spec{Scheme: "s3", Bucket: "floe", Endpoint: "http://localhost:9000", Region: "us-east-1", PathStyle: true},
		},
		{
			"s3://floe/p?endpoint=https%3A%2F%2Facct.r2.cloudflarestorage.com&region=auto&path_style=0",
			bucketurl.Spec{Scheme: "s3", Bucket: "floe", Prefix: "p/", Endpoint: "https://acct.r2.cloudflarestorage.com", Region: "auto"},
		},

		{"gs://floe-data", bucketurl.Spec{Scheme: "gs", Bucket: "floe-data"}},
		{"gs://floe_data.example.com/x", bucketurl.Spec{Scheme: "gs", Bucket: "floe_data.example.com", Prefix: "x/"}},
		{"gs://floe-data?endpoint=http://127.0.0.1:4443", bucketurl.Spec{Scheme: "gs", Bucket: "floe-data", Endpoint: "http://127.0.0.1:4443"}},

		{"azblob://floe", bucketurl.Spec{Scheme: "azblob", Bucket: "floe"}},
		{
			"azblob://floe-segments/a/b?endpoint=https://acct.blob.core.windows.net",
			bucketurl.Spec{Scheme: "azblob", Bucket: "floe-segments", Prefix: "a/b/", Endpoint: "https://acct.blob.core.windows.net"},
		},
		{
			"azblob://floe?endpoint=http://127.0.0.1:10000/devstoreaccount1",
			bucketurl.Spec{Scheme: "azblob", Bucket: "floe", Endpoint: "http://127.0.0.1:10000/devstoreaccount1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := bucketurl.Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			// String is canonical: it parses back to the same Spec.
			again, err := bucketurl.Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

// TestLocation: the URL without its query, the name the agents' virtual
// log dir takes.
func TestLocation(t *testing.T) {
	for raw, want := range map[string]string{
		"s3://logs/floe/?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true": "s3://logs/floe/",
		"gs://bkt": "gs://bkt",
		"azblob://container/a/b/?endpoint=https://x": "azblob://container/a/b/",
		"file:///var/lib/floe/bucket":                "file:///var/lib/floe/bucket",
	} {
		spec, err := bucketurl.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := spec.Location(); got != want {
			t.Errorf("%s: location %q, want %q", raw, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		raw     string
		wantErr string // a fragment of the error message
	}{
		{"", "empty"},
		{"/just/a/path", "no scheme"},
		{"ftp://host/x", "unknown scheme"},
		{"file:relative/path", "two slashes"},
		{"s3:bucket", "two slashes"},
		{"file://otherhost/x", "not host"},
		{"file://", "absolute path"},
		{"file:///x?sync=true", "no query"},
		{"file:///x#frag", "fragment"},
		{"s3://b#", "fragment"},
		{"s3://", "no bucket name"},
		{"s3:///prefix", "no bucket name"},
		{"s3://key:secret@bucket", "credentials"},
		{"s3://bucket:9000", "port"},
		{"s3://ab", "3 to 63"},
		{"s3://" + strings.Repeat("a", 64), "3 to 63"},
		{"s3://My-Bucket", "not allowed"},
		{"s3://under_score", "not allowed"},
		{"s3://-leading", "start and end"},
		{"s3://trailing.", "start and end"},
		{"s3://two..dots", "adjacent periods"},
		{"s3://b-1/a//b", "empty path element"},
		{"s3://b-1/a/../b", `".." path element`},
		{"s3://b-1/./b", `"." path element`},
		{"s3://b-1?bucket=x", "unknown parameter"},
		{"s3://b-1?Region=x", "unknown parameter"},
		{"s3://b-1?region=a&region=b", "2 times"},
		{"s3://b-1?region=", "empty"},
		{"s3://b-1?region=EU_West", "region"},
		{"s3://b-1?path_style=yes", "path_style"},
		{"s3://b-1?endpoint=localhost:9000", "http:// or https://"},
		{"s3://b-1?endpoint=ftp://x", "http:// or https://"},
		{"s3://b-1?endpoint=http://", "no host"},
		{"s3://b-1?endpoint=http://u:p@h", "credentials"},
		{"s3://b-1?endpoint=ftp://u:p@h", "credentials"},
		{"s3://b-1?endpoint=%25zz", "not a URL"},
		{"s3://b-1?endpoint=http://h/path", "no path"},
		{"gs://b-1?endpoint=http://h/path", "no path"},
		{"s3://b-1?endpoint=http://h%3Fa=b", "no query"},
		{"s3://b-1?%zz", "query"},
		{"gs://b-1?region=us", "unknown parameter"},
		{"gs://b-1?path_style=true", "unknown parameter"},
		{"gs://googbucket", "goog"},
		{"gs://" + strings.Repeat("a", 64), "1 to 63"},
		{"gs://a..b", "1 to 63"},
		{"azblob://c--c", "adjacent hyphens"},
		{"azblob://c.c", "not allowed"},
		{"azblob://c_c", "not allowed"},
		{"azblob://c-1?region=x", "unknown parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := bucketurl.Parse(tt.raw)
			if err == nil {
				t.Fatalf("Parse = %+v, want an error containing %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), ":p@") {
				t.Errorf("Parse error %q repeats a credential", err)
			}
		})
	}
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bucket")
	b, err := bucketurl.Open(context.Background(), "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	ld, ok := b.(*localdir.Bucket)
	if !ok {
		t.Fatalf("Open returned %T, want *localdir.Bucket", b)
	}
	if ld.Dir() != dir {
		t.Errorf("bucket directory = %q, want %q", ld.Dir(), dir)
	}
	if err := b.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Errorf("Put: %v", err)
	}
}

// TestOpenGCSThroughXMLAPI: gs URLs open the S3 backend (Google Cloud
// Storage's XML API speaks S3's protocol). No GCS emulator speaks that API
// here, so the contract suite runs through the gs path against an
// S3-compatible fake; the real service is untested.
func TestOpenGCSThroughXMLAPI(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("floe-gcs"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	setAWSEnv(t, "GOOG1EXAMPLEHMACKEY", "hmac-secret")
	runS3(t, "gs://floe-gcs?endpoint="+url.QueryEscape(srv.URL))
}

func TestOpenInvalid(t *testing.T) {
	_, err := bucketurl.Open(context.Background(), "s3://Bad_Bucket")
	if err == nil {
		t.Errorf("Open of an invalid s3 URL = %v, want a validation error", err)
	}
}

// setAWSEnv points the standard AWS chain at a key pair, and at nothing
// else the developer's machine may hold.
func setAWSEnv(t *testing.T, key, secret string) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// runS3 opens S3 URLs under fresh prefixes of bucketURL, checks what Open
// built, and runs the contract suite on them.
func runS3(t *testing.T, bucketURL string) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	base, err := url.Parse(bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	base.Path = "/floe-test-" + hex.EncodeToString(b[:])
	n := 0
	objstoretest.Run(t, func(t *testing.T) objstore.Bucket {
		n++
		u := *base
		u.Path += fmt.Sprintf("/%03d", n)
		bucket, err := bucketurl.Open(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		r, ok := bucket.(*objstore.ResilientBucket)
		if !ok {
			t.Fatalf("Open(%s) = %T, want an *objstore.ResilientBucket", u.String(), bucket)
		}
		s3b, ok := r.Unwrap().(*s3.Bucket)
		if !ok {
			t.Fatalf("Open(%s) wraps %T, want an *s3.Bucket", u.String(), r.Unwrap())
		}
		if want := strings.TrimPrefix(u.Path, "/") + "/"; s3b.Prefix() != want {
			t.Errorf("prefix %q, want %q", s3b.Prefix(), want)
		}
		t.Cleanup(func() {
			var keys []string
			_ = bucket.List(context.Background(), "", func(oi objstore.ObjectInfo) error {
				keys = append(keys, oi.Key)
				return nil
			})
			for _, k := range keys {
				_ = bucket.Delete(context.Background(), k)
			}
		})
		return bucket
	})
}

func TestOpenS3Fake(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("floe-test"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	setAWSEnv(t, "fake-key", "fake-secret")
	runS3(t, "s3://floe-test?endpoint="+url.QueryEscape(srv.URL)+"&path_style=true")
}

// TestOpenS3Real runs against the server `scripts/services s3` starts
// (FLOE_TEST_S3_URL, FLOE_TEST_S3_ACCESS_KEY, FLOE_TEST_S3_SECRET_KEY).
func TestOpenS3Real(t *testing.T) {
	raw := testutil.RequireService(t, "FLOE_TEST_S3_URL", "s3")
	if key := os.Getenv("FLOE_TEST_S3_ACCESS_KEY"); key != "" {
		setAWSEnv(t, key, os.Getenv("FLOE_TEST_S3_SECRET_KEY"))
	} // else the standard AWS chain as it is
	runS3(t, raw)
}

// TestOpenAzBlobReal runs against the Azurite `scripts/services azblob`
// starts (FLOE_TEST_AZBLOB_URL, FLOE_TEST_AZBLOB_ACCOUNT and _KEY).
func TestOpenAzBlobReal(t *testing.T) {
	raw := testutil.RequireService(t, "FLOE_TEST_AZBLOB_URL", "azblob")
	if account := os.Getenv("FLOE_TEST_AZBLOB_ACCOUNT"); account != "" {
		t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
		t.Setenv("AZURE_STORAGE_ACCOUNT", account)
		t.Setenv("AZURE_STORAGE_KEY", os.Getenv("FLOE_TEST_AZBLOB_KEY"))
	}
	ctx := context.Background()
	b, err := bucketurl.Open(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := b.(*objstore.ResilientBucket)
	if !ok {
		t.Fatalf("Open = %T, want an *objstore.ResilientBucket", b)
	}
	az, ok := r.Unwrap().(*azblob.Bucket)
	if !ok {
		t.Fatalf("Open wraps %T, want an *azblob.Bucket", r.Unwrap())
	}
	if _, err := az.Client().Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		t.Fatal(err)
	}
	key := "bucketurl-test-" + t.Name()
	if err := b.Put(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	defer b.Delete(ctx, key)
	if got, err := b.GetRange(ctx, key, 0, -1); err != nil || string(got) != "v" {
		t.Errorf("GetRange = %q, %v", got, err)
	}
}
