// Package objstore is Floe's view of a bucket: a small interface over
// object storage where every byte of record data lives. Objects are
// immutable once written; keys are never reused.
//
// Backends live in sub-packages (localdir, s3, azblob; Google Cloud
// Storage goes through s3, see bucketurl) and must all pass the contract
// suite in objstoretest.
package objstore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("object not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Bucket is an object store. All methods are safe for concurrent use.
//
// Reads never return partial results: GetRange returns exactly the bytes
// asked for, or an error. A Put is atomic: readers see the whole object or
// nothing.
type Bucket interface {
	// Put stores data under key.
	Put(ctx context.Context, key string, data []byte) error
	// GetRange returns length bytes starting at offset. length < 0 reads to
	// the end of the object. Reading past the end is an error.
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Delete removes key. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order, stopping at the first error fn returns.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
}
