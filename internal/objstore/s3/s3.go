// Package s3 is an objstore.Bucket kept in an Amazon S3 bucket or an
// S3-compatible server (MinIO, versitygw, Ceph RGW, Cloudflare R2, ...),
// through the AWS SDK for Go v2.
//
// Every key is stored under an optional key prefix, so several clusters
// can share one bucket; List strips the prefix again. Credentials come
// from the standard AWS chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, web
// identity, container and instance roles) unless Options.Credentials
// overrides it.
//
// The backend makes exactly one attempt per request: the SDK's own retries
// are turned off so that objstore.Resilient alone decides about retries
// and hedging. Errors the SDK classifies as retriable (5xx, throttling,
// connection errors, timeouts) wrap objstore.ErrTransient.
//
// It must never return a partial read: GetRange checks that the server
// answered with exactly the requested bytes.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/floe-io/floe/internal/objstore"
)

// DefaultRegion is the region used when neither Options.Region nor the
// AWS configuration names one. S3-compatible servers generally accept it.
const DefaultRegion = "us-east-1"

// Options says which bucket to open and how to reach it.
type Options struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Prefix is put in front of every key; "" or a string ending in "/".
	Prefix string
	// Endpoint overrides the service URL (http or https), for
	// S3-compatible servers. Empty means AWS S3.
	Endpoint string
	// Region is the signing region. Empty means the AWS configuration's
	// region (AWS_REGION, shared config), else DefaultRegion.
	Region string
	// PathStyle sends requests as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY (virtual-hosted style); most S3-compatible
	// servers need it.
	PathStyle bool
	// Credentials overrides the standard AWS credential chain.
	Credentials aws.CredentialsProvider
	// HTTPClient overrides the SDK's HTTP client (custom transports,
	// tests).
	HTTPClient awss3.HTTPClient
	// ListPageSize is the number of keys asked per ListObjectsV2 page;
	// 0 means the server default (1,000 on S3).
	ListPageSize int32
	// ChecksumsWhenRequired sends and checks the SDK's flexible checksums
	// only where the API requires them: servers that speak S3's protocol
	// without them (Google Cloud Storage's XML API) reject the headers.
	ChecksumsWhenRequired bool
}

// Bucket is a bucket in S3 or an S3-compatible server. It is safe for
// concurrent use.
type Bucket struct {
	client   *awss3.Client
	bucket   string
	prefix   string
	pageSize int32
}

var _ objstore.Bucket = (*Bucket)(nil)

// Open returns the bucket o describes. It loads the AWS configuration
// (region, credentials) but makes no request: a missing bucket or bad
// credentials show up on the first operation.
func Open(ctx context.Context, o Options) (*Bucket, error) {
	if o.Bucket == "" {
		return nil, errors.New("open s3 bucket: no bucket name")
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("open s3 bucket %s: prefix %q must end in /", o.Bucket, o.Prefix)
	}
	loadOpts := []func(*config.LoadOptions) error{
		// One attempt per request: objstore.Resilient retries.
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(o.Credentials))
	}
	if o.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(o.HTTPClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("open s3 bucket %s: load AWS configuration: %w", o.Bucket, err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	client := awss3.NewFromConfig(cfg, func(so *awss3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		// Ranged reads cannot be checked against a whole-object checksum;
		// the SDK would log a warning for each of them.
		so.DisableLogOutputChecksumValidationSkipped = true
		if o.ChecksumsWhenRequired {
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return &Bucket{client: client, bucket: o.Bucket, prefix: o.Prefix, pageSize: o.ListPageSize}, nil
}

// Client returns the SDK client, for tests and tools (creating buckets).
func (b *Bucket) Client() *awss3.Client { return b.client }

// Name returns the bucket name.
func (b *Bucket) Name() string { return b.bucket }

// Prefix returns the key prefix.
func (b *Bucket) Prefix() string { return b.prefix }

func (b *Bucket) fullKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("empty key")
	}
	return b.prefix + key, nil
}

// Put stores data under key with one PutObject, which S3 makes atomic.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	full, err := b.fullKey(key)
	if err != nil {
		return fmt.Errorf("s3 put %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 put %s: %w", key, err)
	}
	_, err = b.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(full),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", key, classify(ctx, err))
	}
	return nil
}

// GetRange reads length bytes at offset with one ranged GetObject.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	full, err := b.fullKey(key)
	if err != nil {
		return nil, fmt.Errorf("s3 get %q: %w", key, err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3 get %s: negative offset %d", key, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 get %s: %w", key, err)
	}
	if length == 0 {
		return b.getEmpty(ctx, key, full, offset)
	}
	in := &awss3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(full)}
	// A whole-object read sends no Range: "bytes=0-" is unsatisfiable for
	// an empty object, which must read as zero bytes.
	ranged := offset > 0 || length > 0
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("s3 get %s [%d, +%d): %w", key, offset, length, classify(ctx, err))
	}
	defer out.Body.Close()

	// Work out how many bytes must come, and check that the server served
	// the range asked for rather than, say, ignoring the Range header.
	want := int64(-1)
	if ranged {
		start, end, _, err := parseContentRange(aws.ToString(out.ContentRange))
		if err != nil {
			return nil, fmt.Errorf("s3 get %s [%d, +%d): %w", key, offset, length, err)
		}
		if start != offset || length > 0 && end != offset+length-1 {
			// S3 shortens a range that runs past the end of the object.
			return nil, fmt.Errorf("s3 get %s: asked for [%d, +%d), server sent bytes %d-%d: %w",
				key, offset, length, start, end, errShortObject)
		}
		want = end - start + 1
	} else if out.ContentLength != nil {
		want = *out.ContentLength
	}
	if out.ContentLength != nil && want >= 0 && *out.ContentLength != want {
		return nil, fmt.Errorf("s3 get %s: Content-Length %d, Content-Range says %d", key, *out.ContentLength, want)
	}
	data, err := readBody(out.Body, want)
	if err != nil {
		return nil, fmt.Errorf("s3 get %s [%d, +%d): %w", key, offset, length, classify(ctx, err))
	}
	return data, nil
}

// errShortObject marks reads that run past the end of an object.
var errShortObject = errors.New("range runs past the end of the object")

// getEmpty answers a zero-length read: the object must exist and offset
// must not lie past its end.
func (b *Bucket) getEmpty(ctx context.Context, key, full string, offset int64) ([]byte, error) {
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(full)})
	if err != nil {
		return nil, fmt.Errorf("s3 head %s: %w", key, classify(ctx, err))
	}
	if size := aws.ToInt64(out.ContentLength); offset > size {
		return nil, fmt.Errorf("s3 get %s: offset %d past the end (%d bytes): %w", key, offset, size, errShortObject)
	}
	return []byte{}, nil
}

// readBody reads exactly want bytes (all of it if want < 0) and makes sure
// nothing follows them.
func readBody(r io.Reader, want int64) ([]byte, error) {
	if want < 0 {
		return io.ReadAll(r)
	}
	data := make([]byte, want)
	if n, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("read body: got %d of %d bytes: %w", n, want, err)
	}
	var extra [1]byte
	if n, _ := r.Read(extra[:]); n > 0 {
		return nil, fmt.Errorf("read body: more than the %d bytes announced", want)
	}
	return data, nil
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*").
func parseContentRange(s string) (start, end, total int64, err error) {
	bad := func() (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("bad or missing Content-Range %q in the answer to a ranged GET", s)
	}
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return bad()
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad()
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return bad()
	}
	if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
		return bad()
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return bad()
		}
	}
	return start, end, total, nil
}

// Delete removes key. S3 answers a delete of a missing key with success.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	full, err := b.fullKey(key)
	if err != nil {
		return fmt.Errorf("s3 delete %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 delete %s: %w", key, err)
	}
	_, err = b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(full)})
	if err != nil {
		err = classify(ctx, err)
		if errors.Is(err, objstore.ErrNotFound) { // some servers say NoSuchKey
			return nil
		}
		return fmt.Errorf("s3 delete %s: %w", key, err)
	}
	return nil
}

// List walks the keys under prefix page by page with ListObjectsV2. S3
// returns keys in UTF-8 byte order, which is Go's string order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 list %q: %w", prefix, err)
	}
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(b.prefix + prefix)}
	if b.pageSize > 0 {
		in.MaxKeys = aws.Int32(b.pageSize)
	}
	pages := awss3.NewListObjectsV2Paginator(b.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 list %q: %w", prefix, classify(ctx, err))
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), b.prefix)
			if !ok || key == "" {
				continue // not ours; cannot happen with a prefix query
			}
			err := fn(objstore.ObjectInfo{Key: key, Size: aws.ToInt64(obj.Size), Modified: aws.ToTime(obj.LastModified)})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// retriable is the SDK's own judgement of which errors are worth another
// attempt: 5xx, throttling codes, connection errors, timeouts.
var retriable = retry.IsErrorRetryables(retry.DefaultRetryables)

// classify adds meaning to an SDK error: a missing object wraps
// objstore.ErrNotFound, a retriable failure wraps objstore.ErrTransient,
// and a canceled or expired ctx shows as ctx's own error.
func classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &noKey), errors.As(err, &notFound):
		return fmt.Errorf("%w: %v", objstore.ErrNotFound, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchKey":
		return fmt.Errorf("%w: %v", objstore.ErrNotFound, err)
	case errors.Is(err, context.Canceled):
		return err
	case retriable.IsErrorRetryable(err) == aws.TrueTernary:
		return fmt.Errorf("%w: %w", objstore.ErrTransient, err)
	}
	return err
}
