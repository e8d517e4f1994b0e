// Package azblob is an objstore.Bucket kept in an Azure Blob Storage
// container (or the Azurite emulator), through the Azure SDK for Go.
// Objects are block blobs, each written by one Put Blob request, which
// Azure makes atomic; keys go under an optional prefix.
//
// Credentials are an account name and shared key, from Options or the
// environment: AZURE_STORAGE_CONNECTION_STRING (its AccountName,
// AccountKey and BlobEndpoint), or AZURE_STORAGE_ACCOUNT and
// AZURE_STORAGE_KEY. Microsoft Entra ID (managed identities, workload
// identity) and SAS tokens are not supported yet.
//
// Like the s3 backend it makes one attempt per request (the SDK's retries
// are off; objstore.Resilient retries), marks retriable failures with
// objstore.ErrTransient, and never returns a partial read.
package azblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/floe-io/floe/internal/objstore"
)

// Options says which container to open and how.
type Options struct {
	// Container is the container name. Required.
	Container string
	// Prefix is put in front of every key; "" or a string ending in "/".
	Prefix string
	// Endpoint is the blob service URL: https://ACCOUNT.blob.core.windows.net
	// by default; Azurite's is http://127.0.0.1:10000/ACCOUNT.
	Endpoint string
	// Account and Key are the shared-key credentials. Empty: from the
	// environment (see the package comment).
	Account, Key string
	// ListPageSize is the number of blobs asked per listing page; 0 means
	// the service default (5,000).
	ListPageSize int32
}

// Bucket is an Azure Blob Storage container. It is safe for concurrent
// use.
type Bucket struct {
	client   *container.Client
	prefix   string
	pageSize int32
}

var _ objstore.Bucket = (*Bucket)(nil)

// Open returns the container o describes. It makes no request.
func Open(o Options) (*Bucket, error) {
	if o.Container == "" {
		return nil, errors.New("open azure container: no container name")
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("open azure container %s: prefix %q must end in /", o.Container, o.Prefix)
	}
	account, key, endpoint := o.Account, o.Key, o.Endpoint
	if account == "" || key == "" {
		envAccount, envKey, envEndpoint, err := credentialsFromEnv()
		if err != nil {
			return nil, fmt.Errorf("open azure container %s: %w", o.Container, err)
		}
		account, key = envAccount, envKey
		if endpoint == "" {
			endpoint = envEndpoint
		}
	}
	if endpoint == "" {
		endpoint = "https://" + account + ".blob.core.windows.net"
	}
	cred, err := container.NewSharedKeyCredential(account, key)
	if err != nil {
		return nil, fmt.Errorf("open azure container %s: %w", o.Container, err)
	}
	opts := &container.ClientOptions{}
	// One attempt per request: objstore.Resilient retries.
	opts.Retry = policy.RetryOptions{MaxRetries: -1}
	client, err := container.NewClientWithSharedKeyCredential(
		strings.TrimSuffix(endpoint, "/")+"/"+o.Container, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("open azure container %s: %w", o.Container, err)
	}
	return &Bucket{client: client, prefix: o.Prefix, pageSize: o.ListPageSize}, nil
}

// credentialsFromEnv reads AZURE_STORAGE_CONNECTION_STRING, else
// AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
func credentialsFromEnv() (account, key, endpoint string, err error) {
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		for _, part := range strings.Split(cs, ";") {
			name, value, _ := strings.Cut(part, "=")
			switch strings.TrimSpace(name) {
			case "AccountName":
				account = value
			case "AccountKey":
				key = value
			case "BlobEndpoint":
				endpoint = value
			}
		}
		if account == "" || key == "" {
			return "", "", "", errors.New("AZURE_STORAGE_CONNECTION_STRING has no AccountName and AccountKey (SAS connection strings are not supported)")
		}
		return account, key, endpoint, nil
	}
	account, key = os.Getenv("AZURE_STORAGE_ACCOUNT"), os.Getenv("AZURE_STORAGE_KEY")
	if account == "" || key == "" {
		return "", "", "", errors.New("no credentials: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY")
	}
	return account, key, "", nil
}

// Client returns the SDK container client, for tests and tools.
func (b *Bucket) Client() *container.Client { return b.client }

// Prefix returns the key prefix.
func (b *Bucket) Prefix() string { return b.prefix }

func (b *Bucket) blob(key string) (*blob.Client, error) {
	if key == "" {
		return nil, errors.New("empty key")
	}
	return b.client.NewBlobClient(b.prefix + key), nil
}

// Put stores data under key with one Put Blob request.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azblob put %s: %w", key, err)
	}
	if key == "" {
		return errors.New("azblob put: empty key")
	}
	bb := b.client.NewBlockBlobClient(b.prefix + key)
	if _, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), nil); err != nil {
		return fmt.Errorf("azblob put %s: %w", key, classify(ctx, err))
	}
	return nil
}

// GetRange reads length bytes at offset with one ranged Get Blob.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	bc, err := b.blob(key)
	if err != nil {
		return nil, fmt.Errorf("azblob get %q: %w", key, err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("azblob get %s: negative offset %d", key, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azblob get %s: %w", key, err)
	}
	if length == 0 {
		props, err := bc.GetProperties(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("azblob get %s: %w", key, classify(ctx, err))
		}
		if size := deref(props.ContentLength, 0); offset > size {
			return nil, fmt.Errorf("azblob get %s: offset %d past the end (%d bytes)", key, offset, size)
		}
		return []byte{}, nil
	}
	// Offset 0 and Count 0 send no Range header: an empty blob has no
	// satisfiable range but must read as zero bytes.
	rng := blob.HTTPRange{Offset: offset, Count: max(length, 0)}
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng})
	if err != nil {
		return nil, fmt.Errorf("azblob get %s [%d, +%d): %w", key, offset, length, classify(ctx, err))
	}
	defer resp.Body.Close()
	want := deref(resp.ContentLength, -1)
	if offset > 0 || length > 0 {
		start, end, err := parseContentRange(deref(resp.ContentRange, ""))
		if err != nil {
			return nil, fmt.Errorf("azblob get %s: %w", key, err)
		}
		if start != offset || length > 0 && end != offset+length-1 {
			return nil, fmt.Errorf("azblob get %s: asked for [%d, +%d), server sent bytes %d-%d: range runs past the end",
				key, offset, length, start, end)
		}
		if want >= 0 && want != end-start+1 {
			return nil, fmt.Errorf("azblob get %s: Content-Length %d, Content-Range says %d", key, want, end-start+1)
		}
		want = end - start + 1
	}
	data, err := readBody(resp.Body, want)
	if err != nil {
		return nil, fmt.Errorf("azblob get %s: %w", key, classify(ctx, err))
	}
	return data, nil
}

// readBody reads exactly want bytes (all if want < 0), and no more.
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

// parseContentRange parses "bytes START-END/TOTAL".
func parseContentRange(s string) (start, end int64, err error) {
	bad := fmt.Errorf("bad or missing Content-Range %q in the answer to a ranged GET", s)
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, _, _ := strings.Cut(rest, "/")
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return 0, 0, bad
	}
	if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
		return 0, 0, bad
	}
	return start, end, nil
}

// Delete removes key and its snapshots; a missing blob is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	bc, err := b.blob(key)
	if err != nil {
		return fmt.Errorf("azblob delete %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azblob delete %s: %w", key, err)
	}
	_, err = bc.Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil {
		if err = classify(ctx, err); errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("azblob delete %s: %w", key, err)
	}
	return nil
}

// List walks the blobs under prefix page by page, in the service's
// lexical order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azblob list %q: %w", prefix, err)
	}
	opts := &container.ListBlobsFlatOptions{Prefix: to.Ptr(b.prefix + prefix)}
	if b.pageSize > 0 {
		opts.MaxResults = to.Ptr(b.pageSize)
	}
	pages := b.client.NewListBlobsFlatPager(opts)
	for pages.More() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("azblob list %q: %w", prefix, classify(ctx, err))
		}
		for _, item := range page.Segment.BlobItems {
			key, ok := strings.CutPrefix(deref(item.Name, ""), b.prefix)
			if !ok || key == "" || item.Properties == nil {
				continue
			}
			err := fn(objstore.ObjectInfo{
				Key:      key,
				Size:     deref(item.Properties.ContentLength, 0),
				Modified: deref(item.Properties.LastModified, time.Time{}),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// classify adds meaning to an SDK error, as the s3 backend does.
func classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return fmt.Errorf("%w: %v", objstore.ErrNotFound, err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if code := re.StatusCode; code == 408 || code == 429 || code >= 500 {
			return fmt.Errorf("%w: %w", objstore.ErrTransient, err)
		}
	}
	return err
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
