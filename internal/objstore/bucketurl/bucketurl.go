// Package bucketurl turns the bucket URL an operator writes on the command
// line into an objstore.Bucket:
//
//	file:///abs/path                     a local directory (localdir)
//	s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true
//	gs://BUCKET/PREFIX?endpoint=URL
//	azblob://CONTAINER/PREFIX?endpoint=URL   (URL may have a path: Azurite)
//
// File URLs open a localdir bucket. S3 URLs open the s3 backend (keys
// under PREFIX, credentials from the standard AWS chain) and azblob URLs
// the azblob backend (credentials from AZURE_STORAGE_* variables), both
// wrapped in objstore.Resilient, so requests are retried and slow GETs
// hedged. gs URLs open the s3 backend against Google Cloud Storage's XML
// API (https://storage.googleapis.com unless endpoint says otherwise),
// which speaks S3's protocol, with GCS HMAC keys as the AWS credentials;
// also retried and hedged.
//
// It must never accept credentials in the URL (they would end up in logs
// and process listings; backends take them from the environment), and it
// must never silently ignore a parameter it does not understand.
package bucketurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/azblob"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/objstore/s3"
)

// The URL schemes.
const (
	SchemeFile = "file"
	SchemeS3   = "s3"
	SchemeGCS  = "gs"

	// GCSEndpoint is Google Cloud Storage's XML API.
	GCSEndpoint  = "https://storage.googleapis.com"
	SchemeAzBlob = "azblob"
)

// Spec is a parsed, validated bucket URL.
type Spec struct {
	// Scheme is one of the Scheme constants.
	Scheme string
	// Bucket is the bucket (S3, GCS) or container (Azure) name. For file
	// URLs it is the absolute directory, in the operating system's form.
	Bucket string
	// Prefix comes from the URL path: every key the bucket stores is put
	// under it. It is "" or ends in "/". Always "" for file URLs.
	Prefix string
	// Endpoint overrides the service's URL (MinIO, R2, emulators): an
	// http or https URL. Empty means the service default.
	Endpoint string
	// Region is the S3 region; empty means the SDK's default.
	Region string
	// PathStyle asks for path-style S3 requests (endpoint/bucket/key), as
	// MinIO and most S3-compatible servers need.
	PathStyle bool
}

// queryParams lists the query parameters each scheme accepts.
func queryParams(scheme string) []string {
	switch scheme {
	case SchemeS3:
		return []string{"endpoint", "region", "path_style"}
	case SchemeGCS, SchemeAzBlob:
		return []string{"endpoint"}
	}
	return nil
}

// Parse parses and validates a bucket URL.
func Parse(raw string) (Spec, error) {
	if raw == "" {
		return Spec{}, errors.New("bucket URL: empty")
	}
	if strings.Contains(raw, "#") {
		// Checked on the raw string: url.Parse drops an empty fragment.
		return Spec{}, errors.New("bucket URL: a fragment (#...) has no meaning here; escape '#' as %23")
	}
	// Errors name only the scheme and bucket: the rest of the URL may hold
	// a credential someone pasted by mistake.
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return Spec{}, fmt.Errorf("bucket URL: %w", err)
	}
	spec, err := parse(u)
	if err != nil {
		return Spec{}, fmt.Errorf("bucket URL %s://%s: %w", u.Scheme, u.Host, err)
	}
	return spec, nil
}

func parse(u *url.URL) (Spec, error) {
	switch {
	case u.Scheme == "":
		return Spec{}, errors.New("no scheme; want file://, s3://, gs:// or azblob://")
	case u.Opaque != "":
		return Spec{}, fmt.Errorf("want %s://..., with two slashes", u.Scheme)
	case u.User != nil:
		return Spec{}, errors.New("credentials do not belong in the bucket URL; pass them through the environment")
	}
	switch u.Scheme {
	case SchemeFile:
		return parseFile(u)
	case SchemeS3, SchemeGCS, SchemeAzBlob:
		return parseCloud(u)
	}
	return Spec{}, fmt.Errorf("unknown scheme %q; want file, s3, gs or azblob", u.Scheme)
}

func parseFile(u *url.URL) (Spec, error) {
	if u.Host != "" && u.Host != "localhost" {
		return Spec{}, fmt.Errorf("file URLs name a local directory, not host %q; want file:///abs/path", u.Host)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return Spec{}, errors.New("file URLs take no query parameters")
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		return Spec{}, errors.New("want an absolute path: file:///abs/path")
	}
	// On Windows, file:///C:/dir names a drive.
	if filepath.VolumeName(p[1:]) != "" {
		p = p[1:]
	}
	p = path.Clean(p)
	if strings.ContainsRune(p, 0) {
		return Spec{}, errors.New("path contains NUL")
	}
	return Spec{Scheme: SchemeFile, Bucket: filepath.FromSlash(p)}, nil
}

func parseCloud(u *url.URL) (Spec, error) {
	spec := Spec{Scheme: u.Scheme, Bucket: u.Host}
	if u.Port() != "" {
		return Spec{}, fmt.Errorf("%q: a bucket name has no port; set the endpoint parameter instead", u.Host)
	}
	if err := validateBucket(u.Scheme, u.Host); err != nil {
		return Spec{}, err
	}
	prefix, err := parsePrefix(u.Path)
	if err != nil {
		return Spec{}, err
	}
	spec.Prefix = prefix

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Spec{}, fmt.Errorf("query: %w", err)
	}
	allowed := queryParams(u.Scheme)
	for name, values := range q {
		if !slices.Contains(allowed, name) {
			return Spec{}, fmt.Errorf("unknown parameter %q for %s; accepted: %s",
				name, u.Scheme, strings.Join(allowed, ", "))
		}
		if len(values) != 1 {
			return Spec{}, fmt.Errorf("parameter %q given %d times", name, len(values))
		}
		v := values[0]
		if v == "" {
			return Spec{}, fmt.Errorf("parameter %q is empty", name)
		}
		switch name {
		case "endpoint":
			if err := validateEndpoint(u.Scheme, v); err != nil {
				return Spec{}, err
			}
			spec.Endpoint = v
		case "region":
			if err := validateRegion(v); err != nil {
				return Spec{}, err
			}
			spec.Region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Spec{}, fmt.Errorf("path_style=%q: want true or false", v)
			}
			spec.PathStyle = b
		}
	}
	return spec, nil
}

// parsePrefix turns the URL path into a key prefix: "" or "a/b/".
func parsePrefix(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "", nil
	}
	p = strings.TrimSuffix(p, "/")
	for _, elem := range strings.Split(p, "/") {
		switch {
		case elem == "":
			return "", fmt.Errorf("prefix %q has an empty path element", p)
		case elem == "." || elem == "..":
			return "", fmt.Errorf("prefix %q has a %q path element", p, elem)
		case strings.ContainsRune(elem, 0):
			return "", fmt.Errorf("prefix %q contains NUL", p)
		}
	}
	return p + "/", nil
}

// validateEndpoint checks an endpoint URL. Only azblob endpoints may have
// a path: emulators such as Azurite put the account name there.
func validateEndpoint(scheme, raw string) error {
	e, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("endpoint: not a URL")
	case e.User != nil:
		return errors.New("endpoint: credentials do not belong in the bucket URL; pass them through the environment")
	case e.Scheme != "http" && e.Scheme != "https":
		return fmt.Errorf("endpoint %q: want an http:// or https:// URL", raw)
	case e.Host == "":
		return fmt.Errorf("endpoint %q: no host", raw)
	case e.RawQuery != "" || e.Fragment != "":
		return fmt.Errorf("endpoint %q: no query or fragment allowed", raw)
	case e.Path != "" && e.Path != "/" && scheme != SchemeAzBlob:
		return fmt.Errorf("endpoint %q: no path allowed; put the prefix in the bucket URL's path", raw)
	}
	return nil
}

func validateRegion(r string) error {
	for i := 0; i < len(r); i++ {
		if c := r[i]; !isLower(c) && !isDigit(c) && c != '-' {
			return fmt.Errorf("region %q: want lowercase letters, digits and '-'", r)
		}
	}
	return nil
}

func validateBucket(scheme, name string) error {
	if name == "" {
		return fmt.Errorf("no bucket name; want %s://NAME", scheme)
	}
	var err error
	switch scheme {
	case SchemeS3:
		err = validateS3Bucket(name)
	case SchemeGCS:
		err = validateGCSBucket(name)
	case SchemeAzBlob:
		err = validateAzureContainer(name)
	}
	if err != nil {
		return fmt.Errorf("%s bucket name %q: %w", scheme, name, err)
	}
	return nil
}

// validateS3Bucket applies the S3 naming rules, which S3-compatible servers
// share: 3–63 lowercase letters, digits, '.' and '-', starting and ending
// with a letter or digit, no "..".
func validateS3Bucket(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return errors.New("want 3 to 63 characters")
	}
	if err := checkChars(name, ".-"); err != nil {
		return err
	}
	if strings.Contains(name, "..") {
		return errors.New("two adjacent periods")
	}
	return nil
}

// validateGCSBucket applies the GCS naming rules: 3–63 characters (up to
// 222 if dotted, 63 per dot-separated part) of lowercase letters, digits,
// '-', '_' and '.', starting and ending with a letter or digit.
func validateGCSBucket(name string) error {
	if len(name) < 3 || len(name) > 222 {
		return errors.New("want 3 to 222 characters")
	}
	if err := checkChars(name, "-_."); err != nil {
		return err
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" || len(part) > 63 {
			return errors.New("want dot-separated parts of 1 to 63 characters")
		}
	}
	if strings.HasPrefix(name, "goog") {
		return errors.New(`names cannot start with "goog"`)
	}
	return nil
}

// validateAzureContainer applies the Azure container naming rules: 3–63
// lowercase letters, digits and '-', starting and ending with a letter or
// digit, no two adjacent '-'.
func validateAzureContainer(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return errors.New("want 3 to 63 characters")
	}
	if err := checkChars(name, "-"); err != nil {
		return err
	}
	if strings.Contains(name, "--") {
		return errors.New("two adjacent hyphens")
	}
	return nil
}

// checkChars reports whether name holds only lowercase letters, digits
// and the given punctuation, and starts and ends with a letter or digit.
func checkChars(name, punct string) error {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLower(c) && !isDigit(c) && !strings.ContainsRune(punct, rune(c)) {
			return fmt.Errorf("character %q not allowed; want lowercase letters, digits and %q", c, punct)
		}
	}
	if first, last := name[0], name[len(name)-1]; !isLower(first) && !isDigit(first) || !isLower(last) && !isDigit(last) {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// String returns the spec as a canonical bucket URL, which Parse turns
// back into the same Spec.
func (s Spec) String() string {
	if s.Scheme == SchemeFile {
		p := filepath.ToSlash(s.Bucket)
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // a Windows drive: file:///C:/dir
		}
		return (&url.URL{Scheme: SchemeFile, Path: p}).String()
	}
	q := url.Values{}
	if s.Endpoint != "" {
		q.Set("endpoint", s.Endpoint)
	}
	if s.Region != "" {
		q.Set("region", s.Region)
	}
	if s.PathStyle {
		q.Set("path_style", "true")
	}
	u := url.URL{Scheme: s.Scheme, Host: s.Bucket, RawQuery: q.Encode()}
	if s.Prefix != "" {
		u.Path = "/" + s.Prefix
	}
	return u.String()
}

// Location returns the bucket URL without its query (endpoint, region,
// path style): which bucket and prefix, for display, such as the
// agents' virtual log dir.
func (s Spec) Location() string {
	s.Endpoint, s.Region, s.PathStyle = "", "", false
	return s.String()
}

// Options tunes what Open builds around a backend.
type Options struct {
	// Resilience configures the retries and hedged GETs wrapped around
	// network backends (s3, gs, azblob); set its Metrics to count them. The zero value
	// gives objstore's defaults.
	Resilience objstore.ResilientOptions
}

// Open opens the bucket named by a bucket URL with default Options. ctx
// bounds any setup a backend needs.
func Open(ctx context.Context, raw string) (objstore.Bucket, error) {
	return OpenWith(ctx, raw, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, raw string, o Options) (objstore.Bucket, error) {
	spec, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return OpenSpecWith(ctx, spec, o)
}

// OpenSpec opens the bucket a parsed Spec describes, with default Options.
func OpenSpec(ctx context.Context, spec Spec) (objstore.Bucket, error) {
	return OpenSpecWith(ctx, spec, Options{})
}

// OpenSpecWith opens the bucket a parsed Spec describes.
func OpenSpecWith(ctx context.Context, spec Spec, o Options) (objstore.Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", spec, err)
	}
	switch spec.Scheme {
	case SchemeFile:
		b, err := localdir.Open(spec.Bucket)
		if err != nil {
			return nil, err
		}
		return b, nil
	case SchemeS3:
		b, err := s3.Open(ctx, s3.Options{
			Bucket:    spec.Bucket,
			Prefix:    spec.Prefix,
			Endpoint:  spec.Endpoint,
			Region:    spec.Region,
			PathStyle: spec.PathStyle,
		})
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", spec, err)
		}
		return objstore.Resilient(b, o.Resilience), nil
	case SchemeAzBlob:
		b, err := azblob.Open(azblob.Options{Container: spec.Bucket, Prefix: spec.Prefix, Endpoint: spec.Endpoint})
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", spec, err)
		}
		return objstore.Resilient(b, o.Resilience), nil
	case SchemeGCS:
		// Google Cloud Storage through its XML API, which speaks S3's
		// protocol (HMAC keys as the AWS credentials, any signing region,
		// no flexible checksums), so the S3 backend serves it.
		endpoint := spec.Endpoint
		if endpoint == "" {
			endpoint = GCSEndpoint
		}
		b, err := s3.Open(ctx, s3.Options{
			Bucket: spec.Bucket, Prefix: spec.Prefix, Endpoint: endpoint,
			Region: "auto", PathStyle: true, ChecksumsWhenRequired: true,
		})
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", spec, err)
		}
		return objstore.Resilient(b, o.Resilience), nil
	}
	return nil, fmt.Errorf("open bucket: unknown scheme %q", spec.Scheme)
}
